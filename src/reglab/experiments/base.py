"""The experiment contract: a Result of arrays, Claims decided over seeds, Figures.

An experiment is two modules (``Experiment`` and ``Drawing`` below): NAME, a frozen
``Config`` dataclass whose defaults are the post's section 7 row (with ``seeds``, its
rules declared as data and ``quick()`` for a smoke run: ``rules.Rules``), SEED_AXIS (the
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
class Table:
    """Rows of numbers the report shows as a sortable table (and saves as CSV).

    A cell is a number (sorted as one), a string, or (value, text): sorted by value,
    shown as text (e.g. a mean with its interval).
    """

    key: str  # file stem, e.g. "zoo_summary"
    columns: list[str]
    rows: list[list[Any]]
    caption: str

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.key!r}: a row has {len(row)} cells for"
                    f" {len(self.columns)} columns"
                )


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
