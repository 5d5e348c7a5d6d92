"""The experiment contract: a Result of arrays, Claims decided over seeds, Figures.

An experiment is two modules (``Experiment`` and ``Drawing`` below): NAME, a frozen
``Config`` dataclass whose defaults are the post's section 7 row (with ``seeds``, its
rules declared as data and ``quick()`` for a smoke run: ``Rules``), SEED_AXIS (the
Result's arrays with a seed axis), ``run`` and ``claims``; and beside it NAME_figures
with ``figures`` and, optionally, ``sliders`` — the only module that imports
matplotlib:

    run(cfg, *, progress=None) -> Result      trains; never plots
    claims(result) -> list[Claim]             the post's statements, measured
    figures(result) -> list[Figure]           plots; never trains
    sliders(result) -> list[Slider]           optional: one panel per sweep value

A Result saves to and loads from a directory (``result.npz`` + ``result.json``), so
figures and claims re-render without training. ``tests/experiments/test_contract.py``
holds every registered experiment to this.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

Progress = Callable[[int, int], None]


class Experiment(Protocol):
    """What ``reglab.experiments.get(name)`` returns: config, training and claims."""

    NAME: str
    Config: type  # frozen dataclass (Rules): seeds, quick(), the post's defaults
    SEED_AXIS: tuple[str, ...]  # the Result's arrays with a seed axis (patterns)

    def run(self, cfg: Any, *, progress: Progress | None = None) -> Result: ...

    def claims(self, result: Result) -> list[Claim]: ...


class Drawing(Protocol):
    """What ``reglab.experiments.figures_of(name)`` returns (sliders optional)."""

    def figures(self, result: Result) -> list[Figure]: ...


@dataclass
class Result:
    """An experiment's measurements: named arrays plus its config and timings.

    ``seed_axis`` declares which arrays have a leading seed axis (one row per seed
    of config["seeds"]); every other array is shared by the seeds (data, grids,
    the swept values). It is given as names or ``fnmatch`` patterns (``"*_W2"``)
    and kept as the names it matches; storing, merging and extending runs read it.
    """

    name: str
    config: dict[str, Any]
    arrays: dict[str, np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. members that diverged
    devices: str = ""  # where it trained, e.g. "2 CPU devices"
    seed_axis: tuple[str, ...] = ()  # arrays whose leading axis is the seed

    def __post_init__(self) -> None:
        patterns = tuple(self.seed_axis)
        self.seed_axis = tuple(
            k for k in self.arrays if any(fnmatch.fnmatchcase(k, p) for p in patterns)
        )
        n = len(self.config.get("seeds", ()))
        for k in self.seed_axis if n else ():
            shape = np.shape(self.arrays[k])
            if not shape or shape[0] != n:
                raise ValueError(
                    f"{self.name}: array {k!r} is declared with a seed axis but has"
                    f" shape {shape} for {n} seeds — declare only arrays whose"
                    " leading axis is the seed"
                )

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def save(self, directory: Path) -> None:
        """Write result.npz and result.json into directory (created if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "result.tmp.npz"
        np.savez_compressed(tmp, **self.arrays)
        tmp.replace(directory / "result.npz")
        meta = {
            "name": self.name,
            "config": self.config,
            "timings": self.timings,
            "notes": self.notes,
            "devices": self.devices,
            "seed_axis": list(self.seed_axis),
        }
        (directory / "result.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Result:
        """Read a Result written by save."""
        meta = json.loads((directory / "result.json").read_text())
        with np.load(directory / "result.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        return cls(
            meta["name"], meta["config"], arrays, meta["timings"], meta["notes"],
            meta.get("devices", ""), tuple(meta.get("seed_axis", ())),
        )  # fmt: skip


# Two-sided 95% Student-t quantiles by degrees of freedom (n_seeds - 1); the normal
# 1.96 beyond 30. Seeds are few, so the t interval's width is honest about them.
# fmt: off
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
# fmt: on
_COMPARE = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
}


def mean_interval(values) -> tuple[float, float, float]:
    """Return (mean, lo, hi): the seed mean and its 95% Student-t interval.

    One value has no spread: its interval is the value itself.
    """
    v = np.asarray(values, np.float64).ravel()
    m = float(v.mean())
    if v.size < 2:
        return m, m, m
    t = _T95[v.size - 2] if v.size - 2 < len(_T95) else 1.96
    half = t * float(v.std(ddof=1)) / np.sqrt(v.size)
    return m, m - half, m + half


@dataclass(frozen=True)
class Claim:
    """One statement of the post, checked against a measured number.

    Built with ``Claim.over_seeds``, it is decided on the seed mean, carries the 95%
    interval of that mean and says in how many seeds it holds.
    """

    name: str  # short id, e.g. "l1_sparser_than_l2"
    statement: str  # the post's statement in our words
    measured: float
    threshold: float
    comparison: str  # ">", ">=", "<" or "<=": measured <comparison> threshold
    detail: str = ""  # what was compared (strengths, seeds, sets)
    per_seed: tuple[float, ...] = ()  # the measured value in each seed
    interval: tuple[float, float] | None = None  # 95% t interval of the seed mean
    why: str = ""  # why it may fail: the post overstates, a seed-sensitive effect, ...

    def __post_init__(self) -> None:
        if self.comparison not in _COMPARE:
            raise ValueError(
                f"comparison must be one of {tuple(_COMPARE)}, got {self.comparison!r}"
            )

    @classmethod
    def over_seeds(
        cls,
        name: str,
        statement: str,
        per_seed,
        threshold: float,
        comparison: str,
        detail: str = "",
        why: str = "",
    ) -> Claim:
        """Return the claim decided on the mean of per_seed, with its interval."""
        values = tuple(float(v) for v in np.asarray(per_seed, np.float64).ravel())
        if not values:
            raise ValueError(f"claim {name!r} needs at least one seed's value, got ()")
        mean, lo, hi = mean_interval(values)
        return cls(
            name, statement, mean, float(threshold), comparison, detail,
            values, (lo, hi), why,
        )  # fmt: skip

    @property
    def passed(self) -> bool:
        """Whether measured satisfies the comparison with threshold."""
        return bool(_COMPARE[self.comparison](self.measured, self.threshold))

    @property
    def holds_in(self) -> int:
        """Return in how many seeds the comparison holds (0 without per-seed values)."""
        v = np.asarray(self.per_seed, np.float64)
        return int(_COMPARE[self.comparison](v, self.threshold).sum())

    @property
    def agreement(self) -> str:
        """Return 'holds in k of n seeds', or what a single seed cannot say."""
        n = len(self.per_seed)
        if n == 0:
            return ""
        if n == 1:
            return "one seed: no interval or agreement (run --seeds 3 for them)"
        return f"holds in {self.holds_in} of {n} seeds"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, with passed and agreement included."""
        out = dataclasses.asdict(self)
        out["per_seed"] = list(self.per_seed)
        out["interval"] = list(self.interval) if self.interval else None
        return {**out, "passed": self.passed, "agreement": self.agreement}


@dataclass
class Figure:
    """A matplotlib figure with the key it is saved under and its caption."""

    key: str  # file stem, e.g. "fig2_l2_boundaries"
    figure: Any  # matplotlib.figure.Figure
    caption: str


@dataclass
class Slider:
    """A sweep shown one panel at a time: the report swaps panels with a slider."""

    key: str  # file stem prefix, e.g. "slider_l2"
    label: str  # what the slider moves through, e.g. "L2 strength λ₂"
    values: list[str]  # one label per panel, e.g. ["0", "0.0025", ...]
    figures: list[Any]  # one matplotlib figure per value
    caption: str
    start: int = 0  # the panel shown first

    def __post_init__(self) -> None:
        if len(self.values) != len(self.figures) or not self.values:
            raise ValueError(
                f"a slider needs one figure per value, got {len(self.values)} values"
                f" and {len(self.figures)} figures"
            )


class Tally:
    """Timings and failures summed over an experiment's train() calls; their progress.

    ``progress(i)`` maps call i's (done, total) epochs onto one bar for the whole
    experiment, so n calls of equal length fill it once.
    """

    def __init__(self, progress: Progress | None, n_calls: int) -> None:
        self._progress, self._n = progress, n_calls
        self.timings = {"compile_s": 0.0, "run_s": 0.0}
        self.notes: list[str] = []

    def progress(self, i: int) -> Progress:
        """Return the progress callback for call i."""

        def report(done: int, total: int) -> None:
            if self._progress is not None:
                self._progress(i * total + done, self._n * total)

        return report

    def add(self, trained: Any) -> Any:
        """Count a TrainResult's compile/run seconds and failures; return it."""
        self.timings["compile_s"] += trained.compile_seconds
        self.timings["run_s"] += trained.run_seconds
        self.notes += trained.failures
        return trained


def config_dict(cfg: Any) -> dict[str, Any]:
    """Return a frozen config dataclass as a JSON-ready dict."""
    out = {}
    for k, v in dataclasses.asdict(cfg).items():
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


# --- declared constraints: a Config states its rules as data -------------------------


def rule_message(name: str, rule: str, value: Any, fix: str = "") -> str:
    """Return a broken rule in one sentence: field, rule, value and fix.

    rule is what the field must do: 'be an integer >= 1', 'hold at least one seed'.
    """
    return f"{name} must {rule}, got {value!r}" + (f" — {fix}" if fix else "")


@dataclass(frozen=True)
class Interval:
    """A number in a range, e.g. Interval(int, 1, None): an integer >= 1.

    ``closed`` names the ends that belong to it ("both", "left", "right" or
    "neither"), as scikit-learn's ``Interval`` does; ``fix`` ends the message.
    """

    kind: type  # int (bools are not counts) or float (ints accepted)
    low: float | None
    high: float | None
    closed: str = "both"
    fix: str = ""

    def __post_init__(self) -> None:
        check_choice("closed", self.closed, ("both", "left", "right", "neither"))

    def describe(self) -> str:
        """Return the rule in words, e.g. 'an integer >= 1' or 'in (0, 1)'."""
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            rule = f"in {'[('[not left]}{self.low:g}, {self.high:g}{'])'[not right]}"
        elif self.low is not None:
            rule = f"{'>=' if left else '>'} {self.low:g}"
        elif self.high is not None:
            rule = f"{'<=' if right else '<'} {self.high:g}"
        else:
            rule = "any value"
        return f"an integer {rule}" if self.kind is int else rule

    def holds(self, value: Any) -> bool:
        """Whether value is of the kind and inside the interval."""
        kinds = int if self.kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        low, high = self.low, self.high
        if low is not None and not (value >= low if left else value > low):
            return False
        return high is None or (value <= high if right else value < high)

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError naming name, the interval and the fix unless value holds."""
        if not self.holds(value):
            words = f"be {self.describe()}"
            raise ValueError(rule_message(name, words, value, self.fix))


@dataclass(frozen=True)
class Each:
    """Every value of a tuple field satisfies an Interval (an empty tuple does)."""

    rule: Interval
    fix: str = ""

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError naming the field and the rule if any value breaks it."""
        if not all(self.rule.holds(v) for v in value):
            words = f"hold only values {self.rule.describe()}"
            fix = self.fix or self.rule.fix
            raise ValueError(rule_message(name, words, value, fix))


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (StrOptions in scikit-learn)."""

    allowed: tuple
    fix: str = ""

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError naming the allowed values unless value is one of them."""
        if value not in self.allowed:
            words = f"be one of {self.allowed}"
            raise ValueError(rule_message(name, words, value, self.fix))


@dataclass(frozen=True)
class NonEmpty:
    """A tuple with at least one value: a grid axis, or the seeds."""

    what: str  # "seed", "rate", "value": the thing it must hold
    fix: str = ""

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError if value is empty."""
        if len(value) == 0:
            words = f"hold at least one {self.what}"
            raise ValueError(rule_message(name, words, value, self.fix))


SEEDS = NonEmpty("seed", "e.g. (0,)")


class Constraint(Protocol):
    """A rule for one Config field: check(name, value) raises ValueError if broken."""

    def check(self, name: str, value: Any) -> None: ...


def shrink(by: int, floor: int = 1) -> Callable[[int], int]:
    """Return the smoke-run rule 'value // by, at least floor' for a QUICK entry."""
    return lambda value: max(floor, value // by)


class Rules:
    """What every experiment's frozen Config shares: checks and a smoke-run version.

    A Config states its rules as data: ``constraints`` maps a field to its rule
    (``Interval``, ``Options``, ``Each``, ``NonEmpty``), checked in order by
    ``__post_init__`` before anything is traced, after ``seeds`` (every Config has
    them: ``SEEDS``); ``validate`` adds the rules that join several fields. ``QUICK``
    maps a field to its smoke-run value, or to a function of its value
    (``shrink(20)``), for ``quick()``. Lists given for fields become tuples, so a
    Config built from TOML is frozen and hashable.
    """

    constraints: ClassVar[Mapping[str, Constraint]] = {}
    QUICK: ClassVar[Mapping[str, Any]] = {}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        SEEDS.check("seeds", self.seeds)  # type: ignore[attr-defined]
        for name, rule in self.constraints.items():
            rule.check(name, getattr(self, name))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError for a rule joining several fields (none by default)."""

    def quick(self) -> Any:
        """Return a smoke-run version: QUICK's fields cut, every shape kept."""
        cut = {
            k: v(getattr(self, k)) if callable(v) else v for k, v in self.QUICK.items()
        }
        return dataclasses.replace(self, **cut)  # type: ignore[type-var]


def check_choice(name: str, value: Any, allowed: Mapping | tuple) -> None:
    """Raise ValueError if value is not among allowed."""
    Options(tuple(allowed)).check(name, value)
