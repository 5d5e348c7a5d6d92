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

from reglab.optim import check_hyper_values

# The values that may differ between members, with their defaults.
DEFAULTS: dict[str, float] = {
    "learning_rate": np.nan,  # required: no sensible default
    "alpha": 0.0,  # 0 gives a constant learning rate
    "tau": 1.0,
    "l2_strength": 0.0,
    "l1_strength": 0.0,
    "p_drop": 0.0,
    "smoothing": 0.0,
    "augment": 0.0,  # 1.0 turns the trainer's augment_fn on for that member
    # 1.0 gives the member the post's dropout (one mask per batch) in a program whose
    # MLPSpec.dropout_mode is "per_example"; both kinds then train in one program
    "dropout_per_batch": 0.0,
    # 1.0 makes the member's L2/L1 decay decoupled (AdamW), or its L1 proximal
    # (soft-thresholding, with decoupled L2), in a program whose OptimizerSpec.penalty
    # is "coupled"; the kinds then train in one program
    "decoupled": 0.0,
    "proximal": 0.0,
}
_OPTIMIZER_KEYS = ("learning_rate", "alpha", "tau", "l2_strength", "l1_strength")


@dataclass(frozen=True)
class Ensemble:
    """Seeds (rows) x configurations (columns); each value is a (configs,) array."""

    seeds: tuple[int, ...]
    values: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seeds = tuple(int(s) for s in np.atleast_1d(self.seeds))
        object.__setattr__(self, "seeds", seeds)
        if not seeds:
            raise ValueError("seeds must hold at least one seed, got () — e.g. (0,)")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        unknown = set(self.values) - set(DEFAULTS)
        if unknown:
            raise ValueError(
                f"unknown ensemble setting(s) {sorted(unknown)}; allowed: "
                f"{sorted(DEFAULTS)}"
            )
        lengths = {len(v) for v in self.values.values() if np.ndim(v) > 0}
        if len(lengths) > 1:
            raise ValueError(
                f"every setting needs one value per config, got lengths {lengths}"
                " — use Ensemble.grid for a product of settings"
            )
        n = lengths.pop() if lengths else 1
        if n == 0:
            raise ValueError("an ensemble setting has no values — give at least one")
        full = {
            k: np.broadcast_to(np.asarray(self.values.get(k, d), np.float32), (n,))
            for k, d in DEFAULTS.items()
        }
        object.__setattr__(self, "values", full)
        if np.isnan(full["learning_rate"]).any():
            raise ValueError("learning_rate is required, e.g. learning_rate=0.15")
        check_hyper_values(**{k: full[k] for k in _OPTIMIZER_KEYS})
        for name in ("p_drop", "smoothing"):
            v = full[name]
            if not ((v >= 0) & (v < 1)).all():
                bad = float(v[~((v >= 0) & (v < 1))][0])
                raise ValueError(
                    f"{name} must be in [0, 1), got {bad} — use 0.0 to turn it off"
                )
        for name in ("augment", "dropout_per_batch", "decoupled", "proximal"):
            if not np.isin(full[name], (0.0, 1.0)).all():
                bad = float(full[name][~np.isin(full[name], (0.0, 1.0))][0])
                raise ValueError(
                    f"{name} must be 0 or 1 (off/on) for every member, got {bad}"
                )
        if ((full["decoupled"] > 0) & (full["proximal"] > 0)).any():
            raise ValueError(
                "a member cannot be both decoupled=1 and proximal=1 — pick one kind"
            )

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
            values = list(np.atleast_1d(np.asarray(v, np.float64)))
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

    def config(self, c: int) -> dict[str, float]:
        """Return column c's settings as plain floats."""
        return {k: float(v[c]) for k, v in self.values.items()}

    def describe(self, s: int, c: int) -> str:
        """Return a one-line description of member (s, c) for reports and errors."""
        varying = {
            k: float(v[c])
            for k, v in self.values.items()
            if self.n_configs > 1 and len(np.unique(v)) > 1
        }
        fixed = ", ".join(f"{k}={v:g}" for k, v in varying.items())
        return f"seed={self.seeds[s]}" + (f", {fixed}" if fixed else "")
