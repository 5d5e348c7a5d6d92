"""An experiment's Config rules as data: one check, one message shape, one quick().

scikit-learn's ``_parameter_constraints`` idea: a Config maps each field to its rule
(``Interval``, ``Options``, ``Each``, ``NonEmpty``) and ``Rules.__post_init__``
checks them all before anything is traced, so a bad value fails in one sentence that
names the field, the rule, the value and a fix:

    p_drop must be in (0, 1), got 1.0 — the no-dropout baseline is always trained

Rules joining several fields go in the Config's ``validate``; ``QUICK`` says what a
smoke run cuts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


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
