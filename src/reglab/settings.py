"""The one table of per-member settings: what may differ between ensemble members.

Each row is a setting's name, default, allowed range, one-line meaning and the fix a
bad value gets. The table is the optimizer's rows here (``BASE``: learning_rate,
alpha, tau) followed by the rows of every registered regularizer, built-in or plug-in
(``reglab.regularizers.register`` adds them through ``add_rows``), in registration
order. The ensemble's defaults and validation, the compiled program's inputs
(``Member``), ``reglab list``, the command line's checks and the playground's controls
all read ``table()``: a regularizer's rows reach every one of them.

Values are traced arrays in the program (one per member), so changing a strength, a
rate or a flag never recompiles. Flags are booleans at the API.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
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


BASE: tuple[Setting, ...] = (
    Setting("learning_rate", None, "lr0 of the schedule lr0 / (1 + t/tau)^alpha",
            "e.g. 0.15 as in the post", low=0.0, low_open=True),
    Setting("alpha", 0.0, "power of the learning-rate decay; 0 keeps it constant",
            "use 0 for a constant learning rate", low=0.0),
    Setting("tau", 1.0, "time scale of the learning-rate decay, in steps",
            "e.g. 5e4 as in the post", low=0.0, low_open=True),
)  # fmt: skip
# Every row by name, the registered ones included: kept up to date by add_rows.
BY_NAME: dict[str, Setting] = {s.name: s for s in BASE}
_OWNERS: dict[str, tuple[str, ...]] = {}  # regularizer name -> its setting names


def no_op_problem(row: Setting) -> str | None:
    """Return why a registered row's default is not a no-op, or None if it is."""
    if row.default is None:
        return "has no default (None)"
    if row.flag and row.default is not False:
        return f"defaults to {row.default!r}, not False"
    if not row.flag and (isinstance(row.default, bool) or row.default != 0):
        return f"defaults to {row.default!r}, not 0"
    return None


def add_rows(owner: str, rows: tuple[Setting, ...]) -> None:
    """Add a regularizer's rows to the table; ValueError on a clash or a live default.

    Adding the same owner's same rows again changes nothing (a module imported twice).
    """
    names = tuple(r.name for r in rows)
    if _OWNERS.get(owner) == names and all(BY_NAME[r.name] == r for r in rows):
        return
    if owner in _OWNERS:
        raise ValueError(
            f"a regularizer named {owner!r} is already registered (settings"
            f" {list(_OWNERS[owner])}) — give the new one another name"
        )
    taken = {n: o for o, ns in _OWNERS.items() for n in ns}
    taken.update({s.name: "the optimizer" for s in BASE})
    for row in rows:
        if not isinstance(row, Setting):
            raise TypeError(
                f"regularizer {owner!r}: settings must be reglab.settings.Setting"
                f" rows, got {type(row).__name__} — wrap it in Setting(...)"
            )
        if row.name in taken or names.count(row.name) > 1:
            who = taken.get(row.name, owner)
            raise ValueError(
                f"regularizer {owner!r} declares setting {row.name!r}, which"
                f" {who if who == 'the optimizer' else repr(who)} declares too —"
                f" rename it (e.g. {owner}_{row.name})"
            )
        problem = no_op_problem(row)
        if problem:
            raise ValueError(
                f"regularizer {owner!r}: setting {row.name!r} {problem}; its default"
                " must do nothing (0 for a strength, False for a flag), so members"
                " that do not set it train as before — set default=0.0 (or False)"
            )
        row.check(row.default)
    _OWNERS[owner] = names
    BY_NAME.update({r.name: r for r in rows})


def remove_rows(owner: str) -> None:
    """Remove a regularizer's rows from the table (``regularizers.unregister``)."""
    for name in _OWNERS.pop(owner, ()):
        del BY_NAME[name]


def table() -> tuple[Setting, ...]:
    """Return every row of the table now: the optimizer's and registered ones.

    Consumers (``reglab list``, the command line's checks, the playground's controls)
    read this, never a list of names, so a registered regularizer's rows reach them.
    The built-in regularizers' rows are there once ``reglab.regularizers`` is imported.
    """
    if not _OWNERS:
        raise RuntimeError(
            "no regularizer is registered yet — import reglab.regularizers (it"
            " registers the built-ins) before reading the settings table"
        )
    return tuple(BY_NAME.values())


def __getattr__(name: str) -> Any:
    """Return SETTINGS as the table now (it grows as regularizers register)."""
    if name == "SETTINGS":
        return table()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Member(dict):
    """Per-member settings as the compiled program receives them: one value (a
    traced scalar in the program) per row of the table, read by attribute.

    A dict, so it follows the registry (a plug-in's settings are in it) and pickles
    as it is; a JAX pytree whose leaves are its values in the table's order.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"Member has no setting {name!r}; {closest_hint({name})}"
            ) from None

    def _replace(self, **values: Any) -> Member:
        """Return a copy with some values replaced (a NamedTuple's spelling)."""
        return Member({**self, **values})

    @property
    def _fields(self) -> tuple[str, ...]:
        """The settings' names, in the table's order."""
        return tuple(self)


jax.tree_util.register_pytree_with_keys(
    Member,
    lambda m: (tuple((jax.tree_util.GetAttrKey(k), v) for k, v in m.items()), tuple(m)),
    lambda names, values: Member(zip(names, values, strict=True)),
)


def member(**values: Any) -> Member:
    """Return a Member of scalars (defaults filled in), e.g. for one optimizer."""
    check_names(values, "member")
    filled = {}
    for s in table():
        if s.name in values:
            filled[s.name] = values[s.name]
        elif s.default is None:
            raise ValueError(f"{s.name} is required — {s.fix}")
        else:
            filled[s.name] = s.default
    return Member(filled)


def in_use(values: Mapping[str, Any]) -> frozenset[str]:
    """Return the settings some member moves off its default.

    Every default does nothing (a strength of 0, a flag off), so a compiled program
    leaves out the work of the settings no member uses: its numbers are bit for bit
    those of the program with that work in (x + 0 * y is x), at less cost per step.
    """
    return frozenset(
        s.name
        for s in table()
        if s.default is not None
        and s.name in values
        and np.any(np.asarray(values[s.name]) != s.default)
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
        for s in table()
    ]  # fmt: skip
