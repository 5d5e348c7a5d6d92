"""Section 3: dropout on overlapping two moons, and Monte-Carlo dropout.

One program trains the no-dropout and the dropout (p_drop at every hidden layer)
networks with the post's per-batch mask (one mask per minibatch, as its DropoutLayer
draws) and, beside them, the per-example variant (the ensemble setting
``dropout_per_batch`` picks the kind per member). Final models are evaluated by
``predict`` (dropout off); three Monte-Carlo instantiations keep dropout on.
Roughness is measured on the P(class 1) grid: the length of the P = 0.5 boundary and
the mean gradient magnitude of P (total variation per unit area).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from reglab import nn
from reglab.ensemble import Ensemble
from reglab.experiments import moons
from reglab.experiments.base import Claim, Progress, Result, Tally, config_dict
from reglab.experiments.moons import boundary_length, prob_class1
from reglab.experiments.rules import Interval, Rules, shrink
from reglab.optim import OptimizerSpec
from reglab.train import TrainSpec, predict, train

NAME = "dropout"
# arrays with a leading seed axis (Result.seed_axis); the rest are shared:
# p_drop, the data and the grid
SEED_AXIS = ("seeds", "prob*", "test_acc*", "train_acc*", "train_loss_curve*", "mc_*")


@dataclass(frozen=True)
class Config(Rules):
    """Dropout on two moons (section 3); defaults are the post's section 7 row."""

    n_train: int = 300  # two moons, no flips
    noise: float = 0.3  # DROPOUT_MOONS: the classes overlap (Bayes error ~8.5%)
    n_test: int = 5000  # large clean test draw: accuracy differences are small
    data_seed: int = 0
    widths: tuple[int, ...] = (2, 96, 96, 2)
    learning_rate: float = 0.05  # Adam (0.9, 0.999), schedule (0.05, 0.5, 5e4)
    alpha: float = 0.5
    tau: float = 5e4
    beta1: float = 0.9
    beta2: float = 0.999
    epochs: int = 10_000
    batch_size: int = 32
    p_drop: float = 0.4  # at every hidden layer, after the activation
    per_example: bool = True  # also train the per-example-mask variant (3rd member)
    n_mc: int = 3  # Monte-Carlo instantiations shown in figure 6
    mc_seed: int = 0  # key of the Monte-Carlo masks
    record_every: int = 500  # train-set metrics only
    grid_resolution: int = 100  # decision-probability grid is resolution^2
    seeds: tuple[int, ...] = (0,)

    constraints = moons.constraints(
        "n_train", "n_test", "epochs", "batch_size", "record_every",
        "grid_resolution",
        p_drop=Interval(
            float, 0, 1, "neither",
            fix="the no-dropout baseline is always trained beside it",
        ),
        n_mc=Interval(int, 1, None, fix="e.g. 3"),
    )  # fmt: skip
    QUICK = {"epochs": shrink(20)}  # 20x fewer epochs, same shapes

    def validate(self) -> None:
        """Raise ValueError for a batch larger than the data or widths not 2-...-2."""
        moons.check_batch(self)
        if len(self.widths) < 3 or self.widths[0] != 2 or self.widths[-1] != 2:
            raise ValueError(
                f"widths must be (2, hidden..., 2) with >= 1 hidden layer, got"
                f" {self.widths!r}"
            )


def mean_gradient(p: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Return the mean |grad P| over the plane (total variation per unit area)."""
    dp_dy, dp_dx = np.gradient(p, gy, gx, axis=(-2, -1))
    return np.sqrt(dp_dx**2 + dp_dy**2).mean(axis=(-2, -1))


def _model(cfg: Config, mode: str) -> nn.MLPSpec:
    hidden = tuple(range(1, len(cfg.widths) - 1))
    return nn.MLPSpec(cfg.widths, "tanh", dropout_layers=hidden, dropout_mode=mode)


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train without/with dropout (per-batch and per-example masks); evaluate."""
    data, test, gx, gy, points = moons.draw(
        cfg.n_train, cfg.n_test, noise=cfg.noise, flip_fraction=0.0,
        seed=cfg.data_seed, resolution=cfg.grid_resolution,
    )  # fmt: skip
    R = cfg.grid_resolution
    optimizer = OptimizerSpec("adam", beta1=cfg.beta1, beta2=cfg.beta2)
    schedule = {"learning_rate": cfg.learning_rate, "alpha": cfg.alpha, "tau": cfg.tau}
    # One program. Columns: p_drop = 0 (masks of ones: the plain network), p_drop
    # with the post's per-batch masks and, unless turned off, p_drop with
    # per-example masks (p_drop = 0 is the same network in either mode).
    p_drop, per_batch = [0.0, cfg.p_drop], [1.0, 1.0]
    if cfg.per_example:
        p_drop, per_batch = p_drop + [cfg.p_drop], per_batch + [0.0]
    ensemble = Ensemble(
        cfg.seeds, {"p_drop": p_drop, "dropout_per_batch": per_batch, **schedule}
    )
    arrays: dict[str, np.ndarray] = {
        "x_train": data.x,
        "y_train": data.y,
        "grid_x": gx,
        "grid_y": gy,
        "seeds": np.array(cfg.seeds),
    }
    tally = Tally(progress, 1)
    spec = TrainSpec(
        _model(cfg, "per_example"), optimizer, epochs=cfg.epochs,
        batch_size=cfg.batch_size,
    )  # fmt: skip
    res = tally.add(
        train(
            spec,
            ensemble,
            data.x,
            data.y,
            eval_sets={"train": (data.x, data.y)},
            record=cfg.record_every,
            progress=tally.progress(0),
        )
    )
    arrays["record_epochs"] = res.record_epochs
    # inference has no masks: the per-example spec predicts for every column
    grid_logits = predict(spec.model, res.params, points)  # (S, C, R*R, 2)
    prob = prob_class1(grid_logits).reshape(grid_logits.shape[:2] + (R, R))
    test_pred = predict(spec.model, res.params, test.x).argmax(-1)  # (S, C, n)
    train_pred = predict(spec.model, res.params, data.x).argmax(-1)
    loss_curve = res.history["train"]["loss"]
    columns = {"": slice(0, 2)}  # array-name suffix -> its ensemble columns
    if cfg.per_example:
        columns["_per_example"] = slice(2, 3)
    for suffix, cols in columns.items():
        arrays[f"prob{suffix}"] = prob[:, cols].astype(np.float32)  # (S, C, R, R)
        arrays[f"test_acc{suffix}"] = (test_pred[:, cols] == test.y).mean(-1)
        arrays[f"train_acc{suffix}"] = (train_pred[:, cols] == data.y).mean(-1)
        arrays[f"train_loss_curve{suffix}"] = loss_curve[:, cols]
    params_batch = {k: v[:, :2] for k, v in res.params.items()}
    spec_batch = _model(cfg, "per_batch")
    arrays["p_drop"] = np.array([0.0, cfg.p_drop], np.float32)

    # Monte-Carlo dropout on the post's (per-batch) model: one mask per instantiation
    # shared by every grid point, so each instantiation is one thinned network.
    mc_prob, mc_acc = [], []
    for s in range(len(cfg.seeds)):
        member = {k: v[s, 1] for k, v in params_batch.items()}
        key = jax.random.fold_in(jax.random.PRNGKey(cfg.mc_seed), s)
        mc = [
            nn.mc_dropout_predict(
                member, x, spec_batch, key=key, p_drop=cfg.p_drop, n_samples=cfg.n_mc
            ).probs  # (n_mc, n, 2): the same key gives the same masks on both sets
            for x in (points, test.x)
        ]
        mc_prob.append(np.asarray(mc[0][..., 1]).reshape(cfg.n_mc, R, R))
        mc_acc.append((np.asarray(mc[1]).argmax(-1) == test.y).mean(-1))
    arrays["mc_prob"] = np.stack(mc_prob).astype(np.float32)  # (S, n_mc, R, R)
    arrays["mc_mean"] = arrays["mc_prob"].mean(axis=1)  # (S, R, R)
    arrays["mc_test_acc"] = np.stack(mc_acc)  # (S, n_mc)
    return Result(
        NAME, config_dict(cfg), arrays, tally.timings, tally.notes,
        seed_axis=SEED_AXIS,
    )  # fmt: skip


# --- claims --------------------------------------------------------------------------


def claims(result: Result) -> list[Claim]:
    """Return the post's section 3 statements, each decided over seeds."""
    a = result.arrays
    gx, gy = a["grid_x"], a["grid_y"]
    length = boundary_length(a["prob"], gx, gy)  # (S, 2): no dropout, dropout
    grad = mean_gradient(a["prob"], gx, gy)  # (S, 2)
    acc = a["test_acc"]  # (S, 2)
    mc_len = boundary_length(a["mc_prob"], gx, gy)  # (S, n_mc)
    n_mc = mc_len.shape[1]
    mc_grad = mean_gradient(a["mc_prob"], gx, gy)  # (S, n_mc)
    mean_len = boundary_length(a["mc_mean"], gx, gy)  # (S,)
    out = [
        Claim.over_seeds(
            "dropout_boundary_smoother",
            "Dropout gives a smoother decision boundary than no dropout.",
            length[:, 1] / length[:, 0],
            1.0,
            "<",
            "length of the P = 0.5 boundary with dropout (off at inference) over"
            f" without: {length[:, 1].mean():.2f} / {length[:, 0].mean():.2f}; mean"
            f" |grad P| {grad[:, 1].mean():.3f} vs {grad[:, 0].mean():.3f}",
        ),
        Claim.over_seeds(
            "dropout_test_accuracy_not_worse",
            "The dropout model generalizes at least as well on clean test data.",
            acc[:, 1] - acc[:, 0],
            0.0,
            ">=",
            f"test accuracy with dropout ({acc[:, 1].mean():.4f}) minus without"
            f" ({acc[:, 0].mean():.4f}) on {result.config['n_test']} fresh points",
            why="a gain of a point or two on 300 training points, about as large as"
            " its spread over seeds",
        ),
        Claim.over_seeds(
            "mc_instantiations_rougher",
            "Each Monte-Carlo instantiation is rougher than the dropout-off boundary.",
            mc_len.min(axis=1) / length[:, 1],
            1.0,
            ">",
            f"shortest boundary among {n_mc} instantiations over the dropout-off"
            f" boundary; instantiation lengths {np.round(mc_len.mean(0), 2).tolist()}"
            f" vs {length[:, 1].mean():.2f} (seed means); the average of the"
            f" {n_mc} instantiations: {mean_len.mean():.2f}; mean |grad P|"
            f" {mc_grad.mean():.3f} vs {grad[:, 1].mean():.3f}",
            why="the post overstates: a thinned network keeps the shape the dropout"
            " model learned, and some instantiations' boundaries are no longer than"
            " the dropout-off one",
        ),
        Claim.over_seeds(
            "mc_instantiations_as_rough_as_no_dropout",
            "Each instantiation looks noisy and unregularized, like the model trained"
            " without dropout.",
            mc_len.mean(axis=1) / length[:, 0],
            1.0,
            ">=",
            f"mean boundary length of the {n_mc} instantiations over the no-dropout"
            f" boundary: {mc_len.mean():.2f} / {length[:, 0].mean():.2f}; mean |grad"
            f" P| {mc_grad.mean():.3f} vs {grad[:, 0].mean():.3f}",
            why="the post overstates: an instantiation is rougher than the averaged"
            " model but need not be as rough as a network trained without dropout",
        ),
    ]
    if "prob_per_example" in a:
        len_e = boundary_length(a["prob_per_example"][:, 0], gx, gy)  # (S,)
        acc_e = a["test_acc_per_example"][:, 0]
        out.append(
            Claim.over_seeds(
                "per_example_dropout_smoother",
                "Dropout with per-example masks also smooths the boundary.",
                len_e / length[:, 0],
                1.0,
                "<",
                "boundary length per-example dropout over no dropout:"
                f" {len_e.mean():.2f} / {length[:, 0].mean():.2f}; test accuracy"
                f" {acc_e.mean():.4f} (per-batch {acc[:, 1].mean():.4f}, none"
                f" {acc[:, 0].mean():.4f})",
            )
        )
    return out
