"""The choices experiment's second study: section 3's dropout with either kind of mask.

No dropout, the post's one mask per minibatch and one mask per example train side by
side in one program on section 3's setting (N=300, overlapping moons, 2-96-96-2,
Adam); ``choices`` runs it after the L2 study (``choices_l2``) and reads its Config.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reglab import nn
from reglab.ensemble import Ensemble
from reglab.experiments import moons
from reglab.experiments.base import Claim, Result, Tally
from reglab.experiments.moons import boundary_length, prob_class1
from reglab.optim import OptimizerSpec
from reglab.train import TrainSpec, predict, train

DROPOUT_COLUMNS = ("no dropout", "per-batch mask", "per-example mask")


def run(cfg: Any, tally: Tally, i: int) -> dict[str, np.ndarray]:
    """Train no dropout, per-batch and per-example dropout in one program."""
    data, test, gx, gy, points = moons.draw(
        cfg.dropout_n_train, cfg.n_test, noise=cfg.dropout_noise, flip_fraction=0.0,
        seed=cfg.data_seed, resolution=cfg.grid_resolution,
    )  # fmt: skip
    R = cfg.grid_resolution
    # per-example masks in the program; dropout_per_batch=1 gives a member the post's
    # one mask per minibatch, so both kinds train side by side
    model = nn.MLPSpec(
        cfg.dropout_widths, "tanh", dropout_layers=(1, 2), dropout_mode="per_example"
    )
    ensemble = Ensemble(
        cfg.seeds,
        {
            "p_drop": [0.0, cfg.p_drop, cfg.p_drop],  # as DROPOUT_COLUMNS
            "dropout_per_batch": [1.0, 1.0, 0.0],
            "learning_rate": cfg.dropout_learning_rate,
            "alpha": cfg.dropout_alpha,
            "tau": cfg.tau,
        },
    )
    spec = TrainSpec(
        model, OptimizerSpec("adam"), epochs=cfg.epochs, batch_size=cfg.batch_size
    )
    res = tally.add(
        train(spec, ensemble, data.x, data.y, record=cfg.epochs,
              progress=tally.progress(i))
    )  # fmt: skip
    grid = prob_class1(predict(model, res.params, points))  # (S, 3, R*R): dropout off
    return {
        "dropout_prob": grid.reshape(-1, 3, R, R).astype(np.float32),
        "dropout_test_acc": (
            predict(model, res.params, test.x).argmax(-1) == test.y
        ).mean(-1),  # (S, 3)
        "dropout_x_train": data.x,
        "dropout_y_train": data.y,
        "dropout_grid_x": gx,
        "dropout_grid_y": gy,
    }


# --- claims --------------------------------------------------------------------


def boundary_lengths(result: Result) -> np.ndarray:
    """Return the P = 0.5 boundary length (S, 3) of the dropout columns."""
    a = result.arrays
    return boundary_length(a["dropout_prob"], a["dropout_grid_x"], a["dropout_grid_y"])


def claims(result: Result) -> list[Claim]:
    """Return section 3's statements under each kind of mask."""
    length, acc = boundary_lengths(result), result["dropout_test_acc"]  # (S, 3)
    p = result.config["p_drop"]
    out = []
    for c, kind in ((1, "per_batch"), (2, "per_example")):
        words = DROPOUT_COLUMNS[c]
        out += [
            Claim.over_seeds(
                f"{kind}_dropout_boundary_smoother",
                f"Dropout p={p:g} with a {words} gives a shorter (smoother) boundary"
                " than no dropout.",
                length[:, c] / length[:, 0],
                1.0,
                "<",
                f"P=0.5 boundary length with over without dropout:"
                f" {length[:, c].mean():.2f} / {length[:, 0].mean():.2f}; section 3's"
                " setting",
                "the post draws one mask per batch; how much either kind smooths"
                " depends on the seed",
            ),
            Claim.over_seeds(
                f"{kind}_dropout_not_worse",
                f"Dropout p={p:g} with a {words} is at least as accurate on clean"
                " test data as no dropout.",
                acc[:, c] - acc[:, 0],
                0.0,
                ">=",
                f"clean test accuracy with ({acc[:, c].mean():.4f}) minus without"
                f" ({acc[:, 0].mean():.4f}) dropout",
                "overlapping moons cap the accuracy: small differences either way",
            ),
        ]
    return out
