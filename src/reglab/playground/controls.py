"""The playground's controls as data: name, default, range, meaning.

Like tensorflow/playground's ``state.ts``, every control is one typed entry with a
name and a default, and the page's URL hash holds one ``name=value`` per control, so
any view is a link. The server parses and checks every value (``parse``): the
library's own constructors speak first (so a width of 0 gets ``MLPSpec``'s message),
then the playground's ranges, which keep one request to about a second of CPU.

Two scopes. "page" controls fix the data and the compiled program's shapes (shared
by every member); "setting" controls are traced per-member values, so moving them
never recompiles and up to ``MAX_MEMBERS`` settings (the live one and its pins)
train side by side as one ensemble. Defaults are the post's weight-decay row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reglab import nn
from reglab.data.moons import MoonsPreset
from reglab.ensemble import Ensemble
from reglab.experiments.playground import MASKS, MAX_MEMBERS, MEMBER_FIELDS, Config
from reglab.optim import OPTIMIZERS, PENALTIES
from reglab.train import TrainSpec

EPOCH_CHOICES = (100, 300, 1000, 3000, 10_000)  # each is one compiled program


@dataclass(frozen=True)
class Control:
    """One control: its URL name, default, allowed values and what it means."""

    name: str
    default: Any
    kind: str  # "int", "float", "choice" or "widths" (comma-separated hidden widths)
    scope: str  # "page" (shapes and data) or "setting" (per member, pinnable)
    group: str  # the panel it sits in
    meaning: str
    low: float | None = None
    high: float | None = None
    scale: str = "linear"  # the slider's scale: "linear" or "log"
    step: float | None = None
    choices: tuple = ()
    fix: str = ""  # the hint after a refused value

    def describe(self) -> dict[str, Any]:
        """Return the control as JSON for the page, which builds its widgets."""
        return {
            "name": self.name,
            "default": self.default,
            "kind": self.kind,
            "scope": self.scope,
            "group": self.group,
            "meaning": self.meaning,
            "low": self.low,
            "high": self.high,
            "scale": self.scale,
            "step": self.step,
            "choices": list(self.choices),
        }


CONTROLS: tuple[Control, ...] = (
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
    Control("learning_rate", 0.15, "float", "setting", "optimizer",
            "step size lr₀ at the start; lr_t = lr₀ / (1 + t/τ)^α", 1e-4, 1.0,
            "log",
            fix="the post's SGD uses 0.15, its Adam 0.05 or less"),
    Control("alpha", 1.0, "float", "setting", "optimizer",
            "α: how fast the step size decays",
            0.0, 2.0, step=0.05, fix="0 keeps the rate constant"),
    Control("tau", 5e4, "float", "setting", "optimizer",
            "τ: updates until the step size has halved (α = 1)", 1.0, 1e6, "log",
            fix="the post uses 5e4"),
    # regularizers (per member)
    Control("l2_strength", 0.0025, "float", "setting", "regularizers",
            "L2 strength λ₂: pulls every weight toward 0 (weight decay)", 0.0,
            0.05, step=0.00025,
            fix="0 turns L2 off; the post sweeps 0 to 0.02"),
    Control("l1_strength", 0.0, "float", "setting", "regularizers",
            "L1 strength λ₁: pushes small weights to exactly 0", 0.0, 0.01,
            step=0.0001,
            fix="0 turns L1 off; the post sweeps 0 to 0.004"),
    Control("penalty", "coupled", "choice", "setting", "regularizers",
            "how L2/L1 enter: coupled gradient, decoupled (AdamW), proximal L1",
            choices=PENALTIES),
    Control("max_norm", 0.0, "float", "setting", "regularizers",
            "max-norm: cap on the length of each unit's incoming weights (0: off)",
            0.0, 10.0,
            step=0.1, fix="use 0.0 to turn max-norm off"),
    Control("p_drop", 0.0, "float", "setting", "regularizers",
            "dropout: chance that a hidden unit is switched off in a training step",
            0.0, 0.9, step=0.05,
            fix="use 0.0 to turn dropout off"),
    Control("mask", "per_batch", "choice", "setting", "regularizers",
            "dropout mask: one per batch (the post's) or one per example",
            choices=MASKS),
    Control("smoothing", 0.0, "float", "setting", "regularizers",
            "label smoothing ε: softer training targets (0: hard labels)",
            0.0, 0.45, step=0.01,
            fix="use 0.0 to turn it off; at 0.5 two classes look alike"),
    # training
    Control("epochs", 10_000, "int", "page", "training",
            "passes over the training points (batches of 32)",
            choices=EPOCH_CHOICES, fix="each choice is one compiled program"),
    Control("seeds", 1, "int", "page", "training",
            "repeats with seeds 0..k-1 (start weights, batch order, dropout): a"
            " band on the curves",
            1, 4, step=1, fix="1 is the post's single run"),
)  # fmt: skip
BY_NAME = {c.name: c for c in CONTROLS}
PAGE = tuple(c.name for c in CONTROLS if c.scope == "page")
SETTING = tuple(c.name for c in CONTROLS if c.scope == "setting")


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


class ControlError(ValueError):
    """Refused input: (control, message) pairs and the HTTP status that fits."""

    def __init__(self, problems: list[tuple[str, str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{c}: {m}" for c, m in problems))
        self.problems, self.status = problems, status


def _number(c: Control, raw: Any) -> float | int:
    """Return raw as c's number type, or raise ValueError naming the control."""
    text = str(raw).strip()
    try:
        value = int(text) if c.kind == "int" else float(text)
    except ValueError:
        kind = "an integer" if c.kind == "int" else "a number"
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
    elif name in SETTING and BY_NAME[name].kind == "float":
        # reglab.settings' table speaks through the Ensemble that checks it
        Ensemble((0,), {"learning_rate": 0.1, name: value})


def _widths(c: Control, raw: Any) -> tuple[int, ...]:
    parts = [p.strip() for p in str(raw).split(",")]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"{c.name} must be comma-separated integers, got {str(raw)!r} — {c.fix}"
        ) from None
    return widths


def parse_value(name: str, raw: Any) -> Any:
    """Return one control's checked value from its raw (URL) form."""
    c = BY_NAME[name]
    if c.kind == "choice":
        if str(raw) not in c.choices:
            raise ValueError(f"{name} must be one of {c.choices}, got {str(raw)!r}")
        return str(raw)
    value = _widths(c, raw) if c.kind == "widths" else _number(c, raw)
    _library_check(name, value)  # the library's message first
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
    elif not c.low <= value <= c.high:
        raise ValueError(
            f"{name} must be in [{c.low:g}, {c.high:g}] here, got {value:g} — {c.fix}"
        )
    return value


def parse_pins(raw: str) -> list[dict[str, str]]:
    """Return the raw pins of 'name:value,name:value;...' (one group per pin)."""
    pins = []
    for i, group in enumerate(g for g in str(raw).split(";") if g.strip()):
        pin = {}
        for item in group.split(","):
            name, sep, value = item.partition(":")
            if not sep or name.strip() not in SETTING:
                raise ControlError(
                    [(f"pin {i + 1}", f"pin items must be name:value with a name in"
                      f" {SETTING}, got {item.strip()!r} — unpin it or fix the link")],
                    400,
                )  # fmt: skip
            pin[name.strip()] = value.strip()
        pins.append(pin)
    return pins


def parse(params: Mapping[str, Any]) -> Settings:
    """Return the checked Settings of a URL's parameters; raise ControlError.

    Missing controls take their defaults; ``pins`` holds the pinned settings. Every
    refused value is reported (the page shows each beside its control).
    """
    unknown = sorted(set(params) - set(BY_NAME) - {"pins"})
    if unknown:
        raise ControlError(
            [(unknown[0], f"unknown setting(s) {unknown}; known: {list(BY_NAME)} —"
              " remove it from the link")],
            400,
        )  # fmt: skip
    pins = parse_pins(params.get("pins", ""))
    if len(pins) > MAX_MEMBERS - 1:
        raise ControlError(
            [("pins", f"at most {MAX_MEMBERS - 1} pins beside the live setting"
              f" ({MAX_MEMBERS} members train as one program), got {len(pins)} —"
              " unpin some")],
            400,
        )  # fmt: skip
    problems: list[tuple[str, str]] = []

    def checked(name: str, raw: Any, where: str) -> Any:
        try:
            return parse_value(name, raw)
        except ValueError as e:
            problems.append((where, str(e)))
            return BY_NAME[name].default

    page = {n: checked(n, params.get(n, BY_NAME[n].default), n) for n in PAGE}
    live = {n: checked(n, params.get(n, BY_NAME[n].default), n) for n in SETTING}
    members = [live]
    for i, pin in enumerate(pins):
        members.append(
            {
                n: checked(n, pin.get(n, BY_NAME[n].default), f"pin {i + 1}")
                for n in SETTING
            }
        )
    if problems:
        raise ControlError(problems)
    settings = Settings(page, tuple(members))
    try:
        settings.config()  # the experiment's own checks, across controls
    except ValueError as e:
        raise ControlError([("request", str(e))]) from None
    return settings
