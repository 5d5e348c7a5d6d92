"""The one table of per-member settings: what may differ between ensemble members.

Each row is a setting's name, default, allowed range, one-line meaning and the fix a
bad value gets. The ensemble's defaults and validation, the compiled program's typed
inputs (``Member``), ``reglab list`` and the playground's controls all derive from it:
adding a per-member regularizer is one row here plus the code that uses it.

Values are traced arrays in the program (one per member), so changing a strength, a
rate or a flag never recompiles. Flags are booleans at the API.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


@dataclass(frozen=True)
class Setting:
    """One row of the table."""

    name: str
    default: float | bool | None  # None: required, no sensible default
    meaning: str
    fix: str  # what to do about a bad value
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False  # (low, ... instead of [low, ...
    high_open: bool = False  # ..., high) instead of ..., high]
    flag: bool = False  # a boolean: on or off per member

    @property
    def allowed(self) -> str:
        """Return the allowed values in words: '[0, 1)', '> 0', 'True or False'."""
        if self.flag:
            return "True or False"
        if math.isinf(self.high):
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{lo}{self.low:g}, {self.high:g}{hi}"

    def check(self, values: Any) -> np.ndarray:
        """Return values as bools or JAX's default float; ValueError if one is bad."""
        arr = np.asarray(values)
        if self.flag:
            ok = np.isin(arr, (0, 1)) if arr.dtype != bool else np.ones(arr.shape, bool)
            if not ok.all():
                bad = arr[~ok].flat[0]
                raise ValueError(
                    f"{self.name} must be True or False (on/off per member), got"
                    f" {bad!r} — {self.fix}"
                )
            return arr.astype(bool)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(
                f"{self.name} must be a number (or one per member), got"
                f" {arr.flat[0]!r} — {self.fix}"
            )
        x = arr.astype(np.float64)
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        ok = np.isfinite(x) & above & below
        if not ok.all():
            raise ValueError(
                f"{self.name} must be finite and {self.allowed}, got"
                f" {float(x[~ok].flat[0])} — {self.fix}"
            )
        # The caller's precision: float32, float64 when JAX runs with jax_enable_x64
        # (JAX is not imported here: a replay from the store runs without it).
        jax = sys.modules.get("jax")
        x64 = jax is not None and bool(jax.config.read("jax_enable_x64"))
        return x.astype(np.float64 if x64 else np.float32)


SETTINGS: tuple[Setting, ...] = (
    Setting("learning_rate", None, "lr0 of the schedule lr0 / (1 + t/tau)^alpha",
            "e.g. 0.15 as in the post", low=0.0, low_open=True),
    Setting("alpha", 0.0, "power of the learning-rate decay; 0 keeps it constant",
            "use 0 for a constant learning rate", low=0.0),
    Setting("tau", 1.0, "time scale of the learning-rate decay, in steps",
            "e.g. 5e4 as in the post", low=0.0, low_open=True),
    Setting("l2_strength", 0.0, "L2 weight decay lambda_2 (the post's lambda theta)",
            "use 0.0 to turn L2 off", low=0.0),
    Setting("l1_strength", 0.0, "L1 weight decay lambda_1 (lambda sign(theta))",
            "use 0.0 to turn L1 off", low=0.0),
    Setting("max_norm", 0.0, "cap on each unit's incoming-weight norm after a step",
            "use 0.0 to turn max-norm off", low=0.0),
    Setting("p_drop", 0.0, "dropout rate at the network's dropout layers",
            "use 0.0 to turn dropout off", low=0.0, high=1.0, high_open=True),
    Setting("smoothing", 0.0, "label smoothing epsilon of the training targets",
            "use 0.0 to train on one-hot targets", low=0.0, high=1.0, high_open=True),
    Setting("augment", False, "apply the trainer's augmentation to this member",
            "use False for plain inputs", flag=True),
    Setting("dropout_per_batch", False,
            "one dropout mask per batch (the post's) in a per-example program",
            "use False for per-example masks", flag=True),
    Setting("decoupled", False, "decay outside the adaptive scaling (AdamW)",
            "use False for the coupled penalty", flag=True),
    Setting("proximal", False, "L1 by soft-thresholding (exact zeros)",
            "use False for the subgradient L1", flag=True),
)  # fmt: skip
BY_NAME = {s.name: s for s in SETTINGS}


def table() -> tuple[Setting, ...]:
    """Return every row of the table now: the built-ins' and registered plug-ins'.

    Consumers (``reglab list``, the command line's checks, the playground's controls)
    read this, never a list of names, so a registered regularizer's rows reach them.
    """
    return SETTINGS


# The program's typed inputs: one traced array per setting, in the table's order.
Member = NamedTuple("Member", [(s.name, Any) for s in SETTINGS])
Member.__doc__ = "Per-member settings as the compiled program receives them."


def member(**values: Any) -> Member:
    """Return a Member of scalars (defaults filled in), e.g. for one optimizer."""
    unknown = set(values) - set(BY_NAME)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {sorted(unknown)}; {closest_hint(unknown)}"
        )
    filled = {}
    for s in SETTINGS:
        if s.name in values:
            filled[s.name] = values[s.name]
        elif s.default is None:
            raise ValueError(f"{s.name} is required — {s.fix}")
        else:
            filled[s.name] = s.default
    return Member(**filled)


def in_use(values: Mapping[str, Any]) -> frozenset[str]:
    """Return the settings some member moves off its default.

    Every default does nothing (a strength of 0, a flag off), so a compiled program
    leaves out the work of the settings no member uses: its numbers are bit for bit
    those of the program with that work in (x + 0 * y is x), at less cost per step.
    """
    return frozenset(
        s.name
        for s in SETTINGS
        if s.default is not None and np.any(np.asarray(values[s.name]) != s.default)
    )


def check_names(names, what: str) -> frozenset[str]:
    """Return names as a set; ValueError naming an unknown one and the closest."""
    unknown = set(names) - set(BY_NAME)
    if unknown:
        raise ValueError(
            f"{what}: unknown setting(s) {sorted(unknown)}; {closest_hint(unknown)}"
        )
    return frozenset(names)


def closest_hint(names) -> str:
    """Return 'did you mean ...?' for the first unknown name, or the allowed names."""
    import difflib

    name = sorted(names)[0]
    match = difflib.get_close_matches(name, list(BY_NAME), n=1)
    if match:
        return f"did you mean {match[0]}?"
    return f"allowed: {', '.join(BY_NAME)}"


def describe() -> list[tuple[str, str, str, str]]:
    """Return (name, default, allowed, meaning) rows for ``reglab list``."""
    return [
        (s.name, "required" if s.default is None else str(s.default), s.allowed,
         s.meaning)
        for s in SETTINGS
    ]  # fmt: skip
