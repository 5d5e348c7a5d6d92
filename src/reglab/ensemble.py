"""An ensemble: seeds x configurations of one architecture, trained as one program.

Members form a (seeds, configs) grid. Members in one row share a seed, hence their
initial weights, batch order, dropout and augmentation draws (common random numbers):
a sweep over a strength differs only by that strength. Rows differ in all of those.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from reglab import regularizers, settings
from reglab.settings import Member, closest_hint


@dataclass(frozen=True)
class Ensemble:
    """Seeds (rows) x configurations (columns); each value is a (configs,) array.

    values: per-member settings of ``reglab.settings.table()`` (the optimizer's and
    every registered regularizer's; a scalar is shared by every config); the rest
    take the table's defaults. Flags are bool arrays.
    """

    seeds: tuple[int, ...]
    values: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seeds = tuple(int(s) for s in np.atleast_1d(self.seeds))
        object.__setattr__(self, "seeds", seeds)
        if not seeds:
            raise ValueError("seeds must hold at least one seed, got () — e.g. (0,)")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        outside = [s for s in seeds if not 0 <= s < 2**32]  # a seed is a uint32 key
        if outside:
            raise ValueError(
                f"seeds must be integers in [0, 2**32), got {outside[0]} in {seeds}"
                " — e.g. (0, 1, 2)"
            )
        table = settings.table()
        unknown = set(self.values) - {s.name for s in table}
        if unknown:
            hint = closest_hint(unknown)
            raise ValueError(f"unknown ensemble setting(s) {sorted(unknown)}; {hint}")
        lengths = {len(v) for v in self.values.values() if np.ndim(v) > 0}
        if len(lengths) > 1:
            raise ValueError(
                f"every setting needs one value per config, got lengths {lengths}"
                " — use Ensemble.grid for a product of settings"
            )
        n = lengths.pop() if lengths else 1
        if n == 0:
            raise ValueError("an ensemble setting has no values — give at least one")
        full = {}
        for setting in table:
            if setting.name in self.values:
                value = setting.check(self.values[setting.name])
            elif setting.default is None:
                raise ValueError(f"{setting.name} is required — {setting.fix}")
            else:
                value = setting.check(setting.default)
            full[setting.name] = np.broadcast_to(value, (n,))
        object.__setattr__(self, "values", full)
        regularizers.validate(full)

    @classmethod
    def grid(
        cls, seeds: Sequence[int] | int = (0,), **settings: float | Sequence[float]
    ) -> Ensemble:
        """Return the product of the sequence-valued settings; scalars are shared.

        ``Ensemble.grid(seeds=range(3), learning_rate=0.15, l2_strength=[0, 1e-3])``
        has 3 x 2 members. An empty sequence is an error, not an empty ensemble.
        """
        if isinstance(seeds, int):
            raise TypeError(f"seeds must be a sequence of ints, got {seeds}")
        axes = {}
        for k, v in settings.items():
            values = list(np.atleast_1d(np.asarray(v)))
            if not values:
                raise ValueError(
                    f"{k} has no values; give at least one (a scalar is fine)"
                )
            axes[k] = values
        combos = list(itertools.product(*axes.values()))
        columns = {k: np.array([c[i] for c in combos]) for i, k in enumerate(axes)}
        return cls(tuple(seeds), columns)

    @property
    def n_seeds(self) -> int:
        """Rows of the member grid."""
        return len(self.seeds)

    @property
    def n_configs(self) -> int:
        """Columns of the member grid."""
        return len(self.values["learning_rate"])

    @property
    def shape(self) -> tuple[int, int]:
        """(n_seeds, n_configs): the leading axes of every per-member array."""
        return self.n_seeds, self.n_configs

    def config(self, c: int) -> dict[str, float | bool]:
        """Return column c's settings as plain floats and bools."""
        return {k: v[c].item() for k, v in self.values.items()}

    def members(self) -> Member:
        """Return the (configs,) arrays as the program's typed inputs."""
        # in the table's order; a row registered after this ensemble was made takes
        # its default (which does nothing)
        n = self.n_configs
        return Member(
            (s.name, self.values[s.name])
            if s.name in self.values
            else (s.name, np.full(n, s.check(s.default)))
            for s in settings.table()
        )

    def describe(self, s: int, c: int) -> str:
        """Return a one-line description of member (s, c) for reports and errors."""
        varying = {
            k: v[c].item()
            for k, v in self.values.items()
            if self.n_configs > 1 and len(np.unique(v)) > 1
        }
        fixed = ", ".join(
            f"{k}={v}" if isinstance(v, bool) else f"{k}={v:g}"
            for k, v in varying.items()
        )
        return f"seed={self.seeds[s]}" + (f", {fixed}" if fixed else "")
