"""What the two-moons experiments share: their data, the plane and its boundary.

weight_decay, dropout, choices and playground train on two moons and look at the
whole input plane: P(class 1) on a grid around the training points and the length
of its P = 0.5 contour. This module holds those pieces and the Config rules of the
fields the moons experiments have in common (``CONSTRAINTS``, ``check_batch``), so
no experiment imports another's helpers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from reglab.data import make_moons, make_moons_test
from reglab.data.moons import Moons
from reglab.experiments.rules import Interval, rule_message

# The rules of the fields every moons Config has, by name (see base.Rules).
CONSTRAINTS = {
    "n_train": Interval(int, 2, None, fix="one point per moon at least"),
    "n_test": Interval(int, 1, None),
    "epochs": Interval(int, 1, None),
    "batch_size": Interval(int, 1, None),
    "record_every": Interval(int, 1, None),
    "grid_resolution": Interval(int, 2, None, fix="e.g. 100"),
}


def constraints(*names: str, **more: Any) -> dict[str, Any]:
    """Return CONSTRAINTS' rules of names (a Config's moons fields) with more added."""
    return {**{k: CONSTRAINTS[k] for k in names}, **more}


def check_batch(cfg: Any, field: str = "n_train") -> None:
    """Raise ValueError unless cfg's training set (field) holds one batch."""
    n = getattr(cfg, field)
    if cfg.batch_size > n:
        raise ValueError(
            rule_message(
                field, f"be >= batch_size={cfg.batch_size}", n,
                f"raise {field} or lower batch_size",
            )
        )  # fmt: skip


class Plane(NamedTuple):
    """A moons draw and the grid its boundaries are drawn on."""

    train: Moons  # the training points (labels flipped as asked)
    test: Moons  # a clean, independent test draw
    grid_x: np.ndarray  # (R,)
    grid_y: np.ndarray  # (R,)
    points: np.ndarray  # (R*R, 2): the grid's points, rows following y


def draw(
    n_train: int,
    n_test: int,
    *,
    noise: float,
    flip_fraction: float,
    seed: int,
    resolution: int,
) -> Plane:
    """Return the training and test moons of seed and the plane grid around them."""
    train = make_moons(n_train, noise=noise, flip_fraction=flip_fraction, seed=seed)
    test = make_moons_test(n_test, noise=noise, seed=seed)
    return Plane(train, test, *plane_grid(train.x, resolution))


def plane_grid(x: np.ndarray, resolution: int, margin: float = 0.5):
    """Return (gx (R,), gy (R,), points (R*R, 2)) covering x's bounding box + margin."""
    lo, hi = x.min(axis=0) - margin, x.max(axis=0) + margin
    gx = np.linspace(lo[0], hi[0], resolution, dtype=np.float32)
    gy = np.linspace(lo[1], hi[1], resolution, dtype=np.float32)
    X, Y = np.meshgrid(gx, gy)  # (R, R): rows follow y, columns follow x
    return gx, gy, np.stack([X.ravel(), Y.ravel()], axis=1)


def prob_class1(logits: np.ndarray) -> np.ndarray:
    """Return P(class 1) from two-class logits (..., 2)."""
    # softmax over two classes: p_1 = sigmoid(z_1 - z_0)
    return 1.0 / (1.0 + np.exp(-(logits[..., 1] - logits[..., 0])))


def boundary_length(p: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Return the length of the P = 0.5 contour of p (..., ny, nx) on grid (gx, gy)."""
    side = p > 0.5
    # crossings of vertical / horizontal grid segments by the curve
    n_x = (side[..., :, 1:] != side[..., :, :-1]).sum(axis=(-2, -1))
    n_y = (side[..., 1:, :] != side[..., :-1, :]).sum(axis=(-2, -1))
    dx, dy = gx[1] - gx[0], gy[1] - gy[0]
    # Cauchy-Crofton: E_theta[|cos| + |sin|] = 4 / pi, so L ~ (pi / 4)(n_x dx + n_y dy)
    return (np.pi / 4) * (n_x * dx + n_y * dy)


def flip_fit(pred: np.ndarray, train: Moons) -> np.ndarray:
    """Return the fraction of flipped points predicted with their (wrong) label."""
    flipped = train.flipped
    return (pred[..., flipped] == train.y[flipped]).mean(-1)
