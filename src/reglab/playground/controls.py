"""The playground's controls as data: name, default, range, meaning.

Like tensorflow/playground's ``state.ts``, every control is one typed entry with a
name and a default, and the page's URL hash holds one ``name=value`` per control, so
any view is a link. The server parses and checks every value (``parse``): the
library's own constructors speak first (so a width of 0 gets ``MLPSpec``'s message),
then the playground's ranges, and last the cost of the whole request (``cost``).

Two scopes. "page" controls fix the data and the compiled program's shapes (shared
by every member); "setting" controls are traced per-member values, so moving them
never recompiles and up to ``MAX_MEMBERS`` settings (the live one and its pins)
train side by side as one ensemble. The setting controls are derived from the one
table of settings (``reglab.settings.table()``): its meaning, fix text and allowed
range, the default of the playground experiment's Config (the post's weight-decay
row) where it has the setting, else the table's. A row added to the table appears
here with no other edit; ``NICE`` only narrows a known row to the post's range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from reglab import nn, settings
from reglab.data.moons import MoonsPreset
from reglab.experiments.playground import (
    BATCH_SIZE,
    MASKS,
    MAX_MEMBERS,
    MEMBER_FIELDS,
    Config,
    padded_width,
)
from reglab.optim import OPTIMIZERS, PENALTIES
from reglab.train import TrainSpec

EPOCH_CHOICES = (100, 300, 1000, 3000, 10_000)  # each is one compiled program
# the page's panels of controls, in this order: what a student moves most first
GROUPS = ("regularizers", "optimizer", "data", "network", "training")


@dataclass(frozen=True)
class Control:
    """One control: its URL name, default, allowed values and what it means."""

    name: str
    default: Any
    kind: str  # "int", "float", "choice" or "widths" (comma-separated hidden widths)
    scope: str  # "page" (shapes and data) or "setting" (per member, pinnable)
    group: str  # the panel it sits in
    meaning: str
    low: float | None = None  # accepted here (None: no bound)
    high: float | None = None
    scale: str = "linear"  # the slider's scale: "linear" or "log"
    step: float | None = None
    choices: tuple = ()
    fix: str = ""  # the hint after a refused value
    low_open: bool = False  # (low, ... instead of [low, ...
    high_open: bool = False
    slider: tuple[float, float] | None = None  # the slider's ends, where they differ
    off: Any = None  # a setting's value that does nothing (the table's default)

    def describe(self) -> dict[str, Any]:
        """Return the control as JSON for the page, which builds its widgets."""
        ends = self.slider or (self.low, self.high)
        return {
            "name": self.name,
            "default": self.default,
            "kind": self.kind,
            "scope": self.scope,
            "group": self.group,
            "meaning": self.meaning,
            "low": self.low,
            "high": self.high,
            "low_open": self.low_open,
            "slider_low": ends[0],
            "slider_high": ends[1],
            "scale": self.scale,
            "step": self.step,
            "choices": list(self.choices),
            "off": self.off,
        }


PAGE_CONTROLS: tuple[Control, ...] = (
    # data: WEIGHT_DECAY_MOONS, the post's section 2.1
    Control("n_train", 250, "int", "page", "data",
            "training points (the two half-moons)",
            32, 2000, step=10, fix="the post uses 250; at least one batch of 32"),
    Control("noise", 0.1, "float", "page", "data",
            "how far points scatter off the moons (std)",
            0.0, 0.5, step=0.01, fix="the post's weight-decay row uses 0.1"),
    Control("flip_fraction", 0.1, "float", "page", "data",
            "chance that a training label is flipped (test labels never are)",
            0.0, 0.5, step=0.01,
            fix="above 0.5 the classes swap; the post uses 0.1"),
    Control("data_seed", 0, "int", "page", "data", "which random draw of the points",
            0, 9999, step=1, fix="any integer in range"),
    # network
    Control("hidden", "64,64", "widths", "page", "network",
            "units per hidden layer, comma-separated (2 in, 2 out)", 1, 256,
            fix="e.g. 64,64 as in the post; 1 to 4 layers"),
    Control("activation", "tanh", "choice", "page", "network",
            "the hidden units' nonlinearity", choices=nn.ACTIVATIONS),
    # optimizer: SGD with the schedule lr0 / (1 + t/tau)^alpha, (0.15, 1, 5e4)
    Control("optimizer", "sgd", "choice", "page", "optimizer",
            "the update rule: plain SGD or Adam",
            choices=OPTIMIZERS),
    # training
    Control("epochs", 10_000, "int", "page", "training",
            "passes over the training points (batches of 32)",
            choices=EPOCH_CHOICES, fix="each choice is one compiled program"),
    Control("seeds", 1, "int", "page", "training",
            "repeats with seeds 0..k-1 (start weights, batch order, dropout): a"
            " band on the curves",
            1, 4, step=1, fix="1 is the post's single run"),
)  # fmt: skip


@dataclass(frozen=True)
class Nice:
    """A known row's range on this page (the post's), narrower than the table's."""

    low: float | None = None
    high: float | None = None
    scale: str | None = None
    step: float | None = None
    group: str = "regularizers"


# Optional, by name: the post's ranges for the rows it sweeps. A row not named here
# gets a range from the table alone (``_derived``), so none is required.
NICE = {
    "learning_rate": Nice(1e-4, 1.0, "log", group="optimizer"),
    "alpha": Nice(0.0, 2.0, step=0.05, group="optimizer"),
    "tau": Nice(1.0, 1e6, "log", group="optimizer"),
    "l2_strength": Nice(0.0, 0.05, "linear", 0.00025),
    "l1_strength": Nice(0.0, 0.01, "linear", 0.0001),
    "max_norm": Nice(0.0, 10.0, "linear", 0.1),
    "p_drop": Nice(0.0, 0.9, step=0.05),
    "smoothing": Nice(0.0, 0.45, step=0.01),
}
# Flags the playground shows as one choice of words instead: name -> (control, value
# that turns the flag on). ``augment`` has no augmentation to apply to the moons.
FOLDED = {
    "decoupled": ("penalty", "decoupled"),
    "proximal": ("penalty", "proximal"),
    "dropout_per_batch": ("mask", "per_batch"),
}
NOT_HERE = ("augment",)  # rows that do nothing in this experiment
CHOICES = {  # the folded flags' controls, placed where their first flag sits
    "penalty": ("how L2/L1 enter: coupled gradient, decoupled (AdamW), proximal L1",
                PENALTIES),
    "mask": ("dropout mask: one per batch (the post's) or one per example", MASKS),
}  # fmt: skip
FLAG_CHOICES = ("false", "true")


def _config_default(name: str) -> Any:
    """Return the playground Config's default of a setting, or None if it has none."""
    by_setting = {k: f for f, k in MEMBER_FIELDS.items()}
    if name not in by_setting:
        return None
    (value,) = {f.name: f.default for f in fields(Config)}[by_setting[name]]
    return value


def _display_high(row: settings.Setting, default: float) -> float:
    """Return a slider's top for a row with no upper bound: a decade above default."""
    if default > 0:
        return float(f"{10 * default:.1g}")
    return 1.0


def _derived(row: settings.Setting) -> Control:
    """Return the control of one table row: its range, NICE's where it has one."""
    default = _config_default(row.name)
    if row.flag:
        on = bool(row.default if default is None else default)
        return Control(row.name, FLAG_CHOICES[on], "choice", "setting",
                       "regularizers", row.meaning, choices=FLAG_CHOICES,
                       fix=row.fix, off=FLAG_CHOICES[bool(row.default)])  # fmt: skip
    default = row.default if default is None else default
    nice = NICE.get(row.name, Nice())
    low = row.low if nice.low is None else max(nice.low, row.low)
    high = row.high if nice.high is None else min(nice.high, row.high)
    top = high if math.isfinite(high) else _display_high(row, default or 0.0)
    # an unbounded strength spans decades: a log slider, its left end exactly low
    scale = nice.scale or ("log" if not math.isfinite(high) else "linear")
    bottom = low if scale == "linear" or low > 0 else min(1e-4, top / 1e4)
    step = nice.step if nice.step is not None or scale == "log" else (top - low) / 100
    return Control(
        row.name, default, "float", "setting", nice.group, row.meaning,
        low if math.isfinite(low) else None, high if math.isfinite(high) else None,
        scale, step, fix=row.fix,
        low_open=row.low_open and low == row.low,
        high_open=row.high_open and high == row.high,
        slider=(bottom, top), off=row.default,
    )  # fmt: skip


def setting_controls(rows: tuple[settings.Setting, ...]) -> tuple[Control, ...]:
    """Return the per-member controls of the table's rows, in the table's order."""
    out: list[Control] = []
    for row in rows:
        if row.name in NOT_HERE:
            continue
        if row.name in FOLDED:
            name = FOLDED[row.name][0]
            if all(c.name != name for c in out):
                meaning, choices = CHOICES[name]
                default = _config_default(name)
                out.append(Control(name, default, "choice", "setting", "regularizers",
                                   meaning, choices=choices))  # fmt: skip
            continue
        out.append(_derived(row))
    return tuple(out)


def controls() -> tuple[Control, ...]:
    """Return every control now: the page's, then one per row of the table."""
    return PAGE_CONTROLS + setting_controls(settings.table())


def by_name() -> dict[str, Control]:
    """Return the controls now, by name."""
    return {c.name: c for c in controls()}


@dataclass(frozen=True)
class Settings:
    """A checked request: page values and one dict per member (live one first)."""

    page: dict[str, Any]
    members: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def widths(self) -> tuple[int, ...]:
        """The MLP's widths: 2 inputs, the hidden widths, 2 classes."""
        return (2, *self.page["hidden"], 2)

    def config(self) -> Config:
        """Return the settings as the playground experiment's Config."""
        page = {k: v for k, v in self.page.items() if k != "seeds"}
        per_member = {
            f: tuple(m[k] for m in self.members) for f, k in MEMBER_FIELDS.items()
        }
        return Config(**page, **per_member, seeds=tuple(range(self.page["seeds"])))

    def extra(self) -> dict[str, tuple]:
        """Return the members' values of table rows the Config has no field for.

        Only rows some member moves off their default: a default does nothing, so
        the others need not reach the program (``reglab.settings.in_use``).
        """
        known = set(MEMBER_FIELDS.values())
        out = {}
        for name in self.members[0]:
            values = tuple(m[name] for m in self.members)
            if name not in known and any(v != _row(name).default for v in values):
                out[name] = values
        return out


def _row(name: str) -> settings.Setting:
    """Return the table row of a setting, as the table stands now."""
    return next(r for r in settings.table() if r.name == name)


class ControlError(ValueError):
    """Refused input: (control, message) pairs and the HTTP status that fits."""

    def __init__(self, problems: list[tuple[str, str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{c}: {m}" for c, m in problems))
        self.problems, self.status = problems, status


MAX_TEXT = 200  # characters of one raw value: longer is no number, width list or name


def _number(c: Control, raw: Any) -> float | int:
    """Return raw as c's number type, or raise ValueError naming the control."""
    text = str(raw).strip()
    kind = "an integer" if c.kind == "int" else "a number"
    if len(text) > 32:  # int("9" * 5000) is slow and no control needs 33 digits
        raise ValueError(
            f"{c.name} must be {kind} of at most 32 characters, got"
            f" {len(text)} — e.g. {c.default}"
        )
    try:
        value = int(text) if c.kind == "int" else float(text)
    except ValueError:
        raise ValueError(
            f"{c.name} must be {kind}, got {text!r} — e.g. {c.default}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{c.name} must be finite, got {text!r} — e.g. {c.default}")
    return value


def _library_check(name: str, value: Any) -> None:
    """Raise the library's own ValueError for a value it refuses."""
    if name == "n_train":
        MoonsPreset(n=value, noise=0.1, flip_fraction=0.1)
    elif name in ("noise", "flip_fraction"):
        MoonsPreset(n=250, **{"noise": 0.1, "flip_fraction": 0.1, name: value})
    elif name == "hidden":
        nn.MLPSpec((2, *value, 2))
    elif name == "epochs":
        TrainSpec(nn.MLPSpec((2, 2)), epochs=value)


def _widths(c: Control, raw: Any) -> tuple[int, ...]:
    parts = [p.strip() for p in str(raw).split(",")]
    try:
        widths = tuple(int(p) for p in parts if len(p) <= 8)
    except ValueError:
        widths = ()
    if len(widths) != len(parts):
        raise ValueError(
            f"{c.name} must be comma-separated integers, got {str(raw)[:40]!r} —"
            f" {c.fix}"
        )
    return widths


def _in_range(c: Control, value: float) -> bool:
    above = c.low is None or (value > c.low if c.low_open else value >= c.low)
    below = c.high is None or (value < c.high if c.high_open else value <= c.high)
    return above and below


def _range_words(c: Control) -> str:
    if c.high is None:
        return f"{'>' if c.low_open else '>='} {c.low:g}"
    lo, hi = "(" if c.low_open else "[", ")" if c.high_open else "]"
    return f"{lo}{c.low:g}, {c.high:g}{hi}"


def parse_value(name: str, raw: Any, table: Mapping[str, Control] | None = None) -> Any:
    """Return one control's checked value from its raw (URL) form."""
    c = (table or by_name())[name]
    if len(str(raw)) > MAX_TEXT:
        raise ValueError(
            f"{name} must be at most {MAX_TEXT} characters, got {len(str(raw))} —"
            f" e.g. {c.default}"
        )
    if c.kind == "choice":
        if str(raw) not in c.choices:
            raise ValueError(f"{name} must be one of {c.choices}, got {str(raw)!r}")
        return str(raw) == "true" if c.choices == FLAG_CHOICES else str(raw)
    value = _widths(c, raw) if c.kind == "widths" else _number(c, raw)
    _library_check(name, value)  # the library's message first
    if c.scope == "setting":
        _row(name).check(value)  # and the table's
    if c.kind == "widths":
        if not 1 <= len(value) <= 4 or max(value) > c.high:
            raise ValueError(
                f"{name} must be 1 to 4 widths in [1, {c.high:g}] here, got"
                f" {','.join(map(str, value))} — {c.fix}"
            )
    elif c.choices:
        if value not in c.choices:
            raise ValueError(
                f"{name} must be one of {c.choices}, got {value} — {c.fix}"
            )
    elif not _in_range(c, value):
        raise ValueError(
            f"{name} must be in {_range_words(c)} here, got {value:g} — {c.fix}"
        )
    return value


def parse_pins(raw: str, setting_names: tuple[str, ...]) -> list[dict[str, str]]:
    """Return the raw pins of 'name:value,name:value;...' (one group per pin)."""
    pins = []
    for i, group in enumerate(g for g in str(raw).split(";") if g.strip()):
        pin = {}
        for item in group.split(","):
            name, sep, value = item.partition(":")
            if not sep or name.strip() not in setting_names:
                raise ControlError(
                    [(f"pin {i + 1}", f"pin items must be name:value with a name in"
                      f" {setting_names}, got {item.strip()[:40]!r} — unpin it or fix"
                      " the link")],
                    400,
                )  # fmt: skip
            pin[name.strip()] = value.strip()
        pins.append(pin)
        if len(pins) > MAX_MEMBERS - 1:
            raise ControlError(
                [("pins", f"at most {MAX_MEMBERS - 1} pins beside the live setting"
                  f" ({MAX_MEMBERS} members train as one program), got more —"
                  " unpin some")],
                400,
            )  # fmt: skip
    return pins


def parse(params: Mapping[str, Any]) -> Settings:
    """Return the checked Settings of a URL's parameters; raise ControlError.

    Missing controls take their defaults; ``pins`` holds the pinned settings. Every
    refused value is reported (the page shows each beside its control).
    """
    table = by_name()
    page_names = tuple(n for n, c in table.items() if c.scope == "page")
    setting_names = tuple(n for n, c in table.items() if c.scope == "setting")
    unknown = sorted(set(params) - set(table) - {"pins"})
    if unknown:
        shown = [u[:40] for u in unknown[:5]]
        raise ControlError(
            [(shown[0], f"unknown setting(s) {shown}; known: {list(table)} —"
              " remove it from the link")],
            400,
        )  # fmt: skip
    pins = parse_pins(params.get("pins", ""), setting_names)
    problems: list[tuple[str, str]] = []

    def checked(name: str, raw: Any, where: str) -> Any:
        try:
            return parse_value(name, raw, table)
        except (ValueError, TypeError) as e:
            problems.append((where, str(e)))
            return table[name].default

    def default(name: str) -> Any:
        return table[name].default

    page = {n: checked(n, params.get(n, default(n)), n) for n in page_names}
    live = {n: checked(n, params.get(n, default(n)), n) for n in setting_names}
    members = [live]
    for i, pin in enumerate(pins):
        members.append(
            {
                n: checked(n, pin.get(n, default(n)), f"pin {i + 1}")
                for n in setting_names
            }
        )
    if problems:
        raise ControlError(problems)
    checked_settings = Settings(page, tuple(members))
    try:
        checked_settings.config()  # the experiment's own checks, across controls
    except ValueError as e:
        raise ControlError([("request", str(e))]) from None
    check_cost(checked_settings)
    return checked_settings


# The cost model: a member-step of an MLP costs about 6 x params x batch floating-
# point operations (forward, backward, update) plus a fixed overhead per step of the
# compiled loop; measured on the 2-core machine (benchmarks/playground.py) the moons
# programs run at about RATE. Padding members (2, 4, 8) cost like real ones.
RATE = 40e9  # floating-point operations per second, training, one CPU process
STEP_OVERHEAD_S = 4e-6  # per step of the scan, whatever the width
BUDGET_S = 60.0  # the most one request may cost: about a minute of CPU


def cost(s: Settings) -> float:
    """Return the estimated CPU seconds of training s (see RATE)."""
    widths = s.widths
    params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    copies = padded_width(len(s.members)) * s.page["seeds"]
    steps = s.page["epochs"] * math.ceil(s.page["n_train"] / BATCH_SIZE)
    return steps * (STEP_OVERHEAD_S + copies * 6 * params * BATCH_SIZE / RATE)


def check_cost(s: Settings) -> None:
    """Raise ControlError (422) for a request estimated above BUDGET_S."""
    estimate = cost(s)
    if estimate > BUDGET_S:
        raise ControlError(
            [("request", f"this request would take about {estimate:,.0f} s of CPU"
              f" (estimated), over the budget of {BUDGET_S:.0f} s per request —"
              " fewer epochs, seeds, pins or training points, or narrower layers")],
        )  # fmt: skip
