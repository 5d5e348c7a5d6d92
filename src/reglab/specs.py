"""What a training run is, statically: the specs that decide the compiled program.

Upstream of both ``reglab.program`` (which compiles them) and ``reglab.train`` (the host
loop), so neither imports the other for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import numpy as np

from reglab import nn
from reglab.data.targets import SMOOTHING_CONVENTIONS
from reglab.optim import OptimizerSpec

Array = jax.Array
# (key, x) -> x: an input augmentation applied to a minibatch inside the step
AugmentFn = Callable[[Array, Array], Array]

LOSS_NAMES = tuple(nn.LOSSES)


@dataclass(frozen=True)
class TrainSpec:
    """Everything static about a training run: what changes the compiled program."""

    model: nn.MLPSpec
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    epochs: int = 1
    batch_size: int = 32
    loss: str = "cross_entropy"
    smoothing_convention: str = "post"  # 1-eps / eps/(K-1), as the post defines it
    chunk_epochs: int = 0  # epochs per compiled call; 0 picks about 20 calls per run

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(
                f"batch_size must be an integer >= 1, got {self.batch_size!r}"
            )
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"loss must be one of {LOSS_NAMES}, got {self.loss!r}")
        if self.smoothing_convention not in SMOOTHING_CONVENTIONS:
            raise ValueError(
                f"smoothing_convention must be one of {SMOOTHING_CONVENTIONS},"
                f" got {self.smoothing_convention!r}"
            )
        if self.chunk_epochs < 0:
            raise ValueError(
                f"chunk_epochs must be >= 0 (0 = automatic), got {self.chunk_epochs}"
            )

    @property
    def chunk(self) -> int:
        """Epochs per compiled call."""
        return self.chunk_epochs or max(1, math.ceil((self.epochs + 1) / 20))


@dataclass(frozen=True)
class EarlyStopping:
    """Stop a member when its loss on ``monitor`` has not improved for a while."""

    monitor: str = "val"  # the eval set whose loss (NLL) is watched
    patience: int = 20  # epochs without an improvement larger than min_delta
    min_delta: float = 0.0
    restore_best: bool = True  # return the parameters of the best epoch

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1 epoch, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")


def log_spaced_epochs(epochs: int, n: int) -> np.ndarray:
    """Return about n distinct epochs from 0 to epochs, log-spaced (0 included)."""
    if n < 2:
        raise ValueError(f"n must be >= 2 (first and last epoch), got {n}")
    points = np.unique(np.round(np.geomspace(1, epochs, n - 1)).astype(int))
    return np.concatenate([[0], points])


def schedule(epochs: int, at: int | Sequence[int], what: str) -> np.ndarray:
    """Return the epochs of a record or snapshot schedule: every k, or a list."""
    if isinstance(at, int | np.integer):
        if at < 1:
            raise ValueError(f"{what} every k epochs needs k >= 1, got {at}")
        points = np.arange(0, epochs + 1, at)
        return np.unique(np.concatenate([points, [epochs]]))
    points = np.unique(np.asarray(at, dtype=int))
    if points.size and (points.min() < 0 or points.max() > epochs):
        raise ValueError(
            f"{what} epochs must lie in [0, {epochs}], got {points.min()}..."
            f"{points.max()} — epoch 0 is the initial model"
        )
    return points


def index_table(points: np.ndarray, length: int) -> np.ndarray:
    """Return epoch -> row of points in the schedule, -1 where none (length epochs)."""
    table = np.full(length, -1, np.int32)
    table[points] = np.arange(len(points), dtype=np.int32)
    return table
