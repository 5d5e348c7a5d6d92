"""Section 2.1: L2 and L1 weight decay on two moons with flipped labels.

One ensemble holds both sweeps (9 L2 columns, then 9 L1 columns; coupled penalties,
the post's SGD); an optional second program repeats the L1 sweep with proximal
soft-thresholding, whose zeros are exact. Final models are evaluated by ``predict``:
P(class 1) over the input plane, accuracy on the noisy training labels and on a clean
test draw, and the hidden-to-hidden weights W2 whose sparsity the post shows.
Figures and sliders are drawn in ``weight_decay_figures`` (this module never imports
matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reglab import nn
from reglab.ensemble import Ensemble
from reglab.experiments import moons
from reglab.experiments.base import Claim, Progress, Result, Tally, config_dict
from reglab.experiments.moons import prob_class1
from reglab.experiments.rules import Each, Interval, Rules, shrink
from reglab.optim import OptimizerSpec
from reglab.train import TrainSpec, predict, train

NAME = "weight_decay"
# arrays with a leading seed axis (Result.seed_axis); the rest are shared:
# the swept strengths, data and grid
SEED_AXIS = (
    "seeds",
    "*_W2",
    "*_train_acc",
    "*_train_acc_clean",
    "*_test_acc",
    "*_flip_fit",
    "*_train_loss_curve",
    "*_diverged",
    "*_prob",
)
SWEEPS = ("l2", "l1", "prox")  # prox: the L1 sweep again, by soft-thresholding


@dataclass(frozen=True)
class Config(Rules):
    """The weight-decay sweeps of section 2.1; defaults are the post's section 7 row."""

    n_train: int = 250  # two moons, section 2.1
    noise: float = 0.1  # WEIGHT_DECAY_MOONS: moons apart, only flips confuse
    flip_fraction: float = 0.10  # each label flipped with probability 10%
    n_test: int = 2000  # clean test draw (no flips) from the same distribution
    data_seed: int = 0
    widths: tuple[int, ...] = (2, 64, 64, 2)
    learning_rate: float = 0.15  # SGD (0.15, 1, 5e4)
    alpha: float = 1.0
    tau: float = 5e4
    epochs: int = 10_000
    batch_size: int = 32
    l2_strengths: tuple[float, ...] = tuple(0.0025 * i for i in range(9))  # 0..0.02
    l1_strengths: tuple[float, ...] = tuple(0.0005 * i for i in range(9))  # 0..0.004
    # Beyond the post: L1 by soft-thresholding (exact zeros) at two of the L1
    # strengths, a second program (~1/3 of the run time); () skips it.
    prox_strengths: tuple[float, ...] = (0.0005, 0.002)
    # "Even the most moderate amount" of L2 (section 2.1): the first nonzero strength,
    # the model of the claims about the flipped labels and clean accuracy.
    l2_moderate: float = 0.0025
    # Mid-sweep strengths: figure 4's L2 and L1 models and the sparsity claims. At
    # 0.0025 L2 has hardly shrunk W2, so "L2 is not sparse" would hold trivially.
    l2_mid: float = 0.01
    l1_mid: float = 0.002
    # |w| < near_zero x (std of its own matrix) counts as near zero: relative, so
    # L2's shrinking every weight alike is not mistaken for sparsity (for a Gaussian
    # matrix the fraction is 0.8%)
    near_zero: float = 0.01
    record_every: int = 500  # train-set metrics only: evaluation is not the point
    grid_resolution: int = 100  # decision-probability grid is resolution^2
    seeds: tuple[int, ...] = (0,)

    constraints = moons.constraints(
        "n_train", "n_test", "epochs", "batch_size", "record_every",
        "grid_resolution",
        prox_strengths=Each(Interval(float, 0, None)),
        near_zero=Interval(
            float, 0, 1, "neither", fix="a fraction of each matrix's std, e.g. 0.01"
        ),
    )  # fmt: skip
    QUICK = {"epochs": shrink(20)}  # 20x fewer epochs, same shapes

    def validate(self) -> None:
        """Raise ValueError for widths without W2 or a sweep without its baseline."""
        moons.check_batch(self)
        if len(self.widths) < 4 or self.widths[0] != 2 or self.widths[-1] != 2:
            raise ValueError(
                f"widths must be (2, hidden, hidden, ..., 2) with >= 2 hidden layers"
                f" (W2 is hidden-to-hidden), got {self.widths!r}"
            )
        for name in ("l2_strengths", "l1_strengths"):
            v = getattr(self, name)
            if 0.0 not in v or min(v) < 0:
                raise ValueError(
                    f"{name} must be >= 0 and include 0.0 (the unregularized"
                    f" baseline), got {v!r}"
                )
        for name, sweep in (
            ("l2_moderate", "l2_strengths"),
            ("l2_mid", "l2_strengths"),
            ("l1_mid", "l1_strengths"),
        ):
            if getattr(self, name) not in getattr(self, sweep):
                raise ValueError(
                    f"{name}={getattr(self, name)} must be one of {sweep}"
                    f" {getattr(self, sweep)!r} — pick a swept strength"
                )


def near_zero_fraction(W: np.ndarray, relative: float) -> np.ndarray:
    """Return the fraction of entries with |w| < relative * std(W), per matrix."""
    return (np.abs(W) < relative * _scale(W)).mean(axis=(-2, -1))


def dead_unit_fraction(W: np.ndarray, relative: float) -> np.ndarray:
    """Return the fraction of units whose every W entry (row or column) is near zero.

    A row of W (fan_in, fan_out) that is all near zero is a lower-layer unit cut off
    from the layer above; an all-near-zero column is an upper unit that hears nothing.
    """
    small = np.abs(W) < relative * _scale(W)  # (..., fan_in, fan_out)
    dead_rows, dead_cols = small.all(axis=-1), small.all(axis=-2)
    return (dead_rows.sum(-1) + dead_cols.sum(-1)) / (W.shape[-2] + W.shape[-1])


def live_near_zero_fraction(W: np.ndarray, relative: float) -> np.ndarray:
    """Return the near-zero fraction among entries joining two live units."""
    small = np.abs(W) < relative * _scale(W)
    live = ~small.all(axis=-1)[..., :, None] & ~small.all(axis=-2)[..., None, :]
    return (small & live).sum(axis=(-2, -1)) / np.maximum(live.sum(axis=(-2, -1)), 1)


def _scale(W: np.ndarray) -> np.ndarray:
    """Return each matrix's std over its last two axes, kept for broadcasting."""
    return W.std(axis=(-2, -1), keepdims=True)


def _model(cfg: Config) -> nn.MLPSpec:
    return nn.MLPSpec(cfg.widths, activation="tanh")


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train the L2+L1 ensemble (and the proximal L1 sweep); evaluate final models."""
    data, test, gx, gy, points = moons.draw(
        cfg.n_train, cfg.n_test, noise=cfg.noise, flip_fraction=cfg.flip_fraction,
        seed=cfg.data_seed, resolution=cfg.grid_resolution,
    )  # fmt: skip
    R = cfg.grid_resolution
    schedule = {"learning_rate": cfg.learning_rate, "alpha": cfg.alpha, "tau": cfg.tau}
    l2, l1 = cfg.l2_strengths, cfg.l1_strengths
    n2, n1 = len(l2), len(l1)
    # one program, 18 columns: L2 sweep (L1 off), then L1 sweep (L2 off)
    coupled = Ensemble(
        cfg.seeds,
        {
            "l2_strength": np.array(l2 + (0.0,) * n1),
            "l1_strength": np.array((0.0,) * n2 + l1),
            **schedule,
        },
    )
    sweeps = {"l2": (0, n2), "l1": (n2, n2 + n1)}  # column ranges
    calls = [(OptimizerSpec("sgd", penalty="coupled"), coupled, sweeps)]
    if cfg.prox_strengths:
        prox = Ensemble(
            cfg.seeds, {"l1_strength": np.array(cfg.prox_strengths), **schedule}
        )
        sweeps = {"prox": (0, len(cfg.prox_strengths))}
        calls.append((OptimizerSpec("sgd", penalty="proximal"), prox, sweeps))

    arrays: dict[str, np.ndarray] = {
        "x_train": data.x,
        "y_train": data.y,
        "y_train_clean": data.y_clean,
        "flipped": data.flipped,
        "grid_x": gx,
        "grid_y": gy,
        "seeds": np.array(cfg.seeds),
    }
    tally = Tally(progress, len(calls))
    for i, (optimizer, ensemble, sweeps) in enumerate(calls):
        spec = TrainSpec(
            _model(cfg), optimizer, epochs=cfg.epochs, batch_size=cfg.batch_size
        )

        res = tally.add(
            train(
                spec,
                ensemble,
                data.x,
                data.y,
                eval_sets={"train": (data.x, data.y)},
                record=cfg.record_every,
                progress=tally.progress(i),
            )
        )
        train_pred = predict(spec.model, res.params, data.x).argmax(-1)  # (S, C, n)
        test_pred = predict(spec.model, res.params, test.x).argmax(-1)  # (S, C, n_test)
        grid_logits = predict(spec.model, res.params, points)  # (S, C, R*R, 2)
        grid_p = prob_class1(grid_logits).reshape(grid_logits.shape[:2] + (R, R))
        arrays["record_epochs"] = res.record_epochs
        for name, (a, b) in sweeps.items():
            flipped = data.flipped
            swept = {"l2": l2, "l1": l1, "prox": cfg.prox_strengths}
            arrays[f"{name}_strengths"] = np.asarray(swept[name], np.float32)
            arrays[f"{name}_W2"] = res.params["W2"][:, a:b]  # (S, C, H1, H2)
            arrays[f"{name}_train_acc"] = (train_pred[:, a:b] == data.y).mean(-1)
            arrays[f"{name}_train_acc_clean"] = (
                train_pred[:, a:b] == data.y_clean
            ).mean(-1)
            arrays[f"{name}_test_acc"] = (test_pred[:, a:b] == test.y).mean(-1)
            # fraction of flipped points predicted with their (wrong) flipped label
            arrays[f"{name}_flip_fit"] = (
                (train_pred[:, a:b][..., flipped] == data.y[flipped]).mean(-1)
                if flipped.any()
                else np.full(train_pred[:, a:b].shape[:2], np.nan)
            )
            arrays[f"{name}_train_loss_curve"] = res.history["train"]["loss"][:, a:b]
            arrays[f"{name}_diverged"] = res.diverged[:, a:b]
            if name != "prox":  # boundaries are drawn for the post's two sweeps
                arrays[f"{name}_prob"] = grid_p[:, a:b].astype(np.float32)
    return Result(
        NAME, config_dict(cfg), arrays, tally.timings, tally.notes,
        seed_axis=SEED_AXIS,
    )  # fmt: skip


def swept_index(result: Result, sweep: str, key: str) -> int:
    """Return the column of sweep whose strength is the config's key (e.g. l2_mid)."""
    strengths = result.arrays[f"{sweep}_strengths"]
    return int(np.argmin(np.abs(strengths - result.config[key])))


# --- claims --------------------------------------------------------------------------


def claims(result: Result) -> list[Claim]:
    """Return the post's section 2.1 statements, each decided over seeds."""
    a, cfg = result.arrays, result.config
    rel = cfg["near_zero"]
    i0, i2 = int(np.argmin(a["l2_strengths"])), swept_index(result, "l2", "l2_moderate")
    iw = int(np.argmax(a["l2_strengths"]))
    lam2, lam_w = float(a["l2_strengths"][i2]), float(a["l2_strengths"][iw])
    fit0, fit2 = a["l2_flip_fit"][:, i0], a["l2_flip_fit"][:, i2]  # (S,)
    acc0, acc2 = a["l2_test_acc"][:, i0], a["l2_test_acc"][:, i2]
    acc_w = a["l2_test_acc"][:, iw]
    n_flips = int(a["flipped"].sum())
    out = [
        Claim.over_seeds(
            "unregularized_fits_flips",
            "Without weight decay the network fits the flipped labels.",
            fit0,
            0.5,
            ">",
            f"fraction of the {n_flips} flipped training points predicted with their"
            f" flipped label at λ = 0; train accuracy on the noisy labels"
            f" {a['l2_train_acc'][:, i0].mean():.3f}",
            why=f"an unregularized net that has not interpolated within"
            f" {cfg['epochs']:,} epochs (the post trains 10,000) still smooths over"
            " the flips",
        ),
        Claim.over_seeds(
            "moderate_l2_ignores_flips",
            "Even the most moderate L2 smooths the boundary: it stops fitting the"
            " flipped labels.",
            fit2,
            0.5,
            "<",
            f"flipped points predicted with their flipped label at λ₂ = {lam2:g};"
            f" train accuracy on noisy labels {a['l2_train_acc'][:, i2].mean():.3f},"
            f" on clean labels {a['l2_train_acc_clean'][:, i2].mean():.3f}",
        ),
        Claim.over_seeds(
            "moderate_l2_generalizes_better",
            "Moderate L2 raises clean test accuracy over the unregularized model.",
            acc2 - acc0,
            0.0,
            ">",
            f"clean test accuracy at λ₂ = {lam2:g} ({acc2.mean():.3f}) minus at"
            f" λ = 0 ({acc0.mean():.3f}), {len(a['x_train'])} train points",
        ),
        Claim.over_seeds(
            "strong_l2_cannot_thread_moons",
            "Too strong L2 straightens the boundary until it cannot thread the moons.",
            acc_w - acc2,
            0.0,
            "<",
            f"clean test accuracy at the strongest λ₂ = {lam_w:g} ({acc_w.mean():.3f})"
            f" minus at λ₂ = {lam2:g}",
        ),
    ]
    j0 = int(np.argmin(a["l1_strengths"]))
    gains = np.concatenate(
        [
            np.delete(a["l2_test_acc"], i0, axis=1) - acc0[:, None],
            np.delete(a["l1_test_acc"], j0, axis=1) - a["l1_test_acc"][:, j0, None],
        ],
        axis=1,
    )  # (S, nonzero strengths of both sweeps)
    per_strength = gains.mean(0)
    out.append(
        Claim.over_seeds(
            "regularization_raises_test_accuracy",
            "Weight decay (L2 or L1, across the sweeps) beats λ = 0 on clean data.",
            gains.mean(1),
            0.0,
            ">",
            f"clean test accuracy gain over λ = 0, averaged over the {gains.shape[1]}"
            f" nonzero strengths of both sweeps; {int((per_strength > 0).sum())} of"
            f" {gains.shape[1]} strengths gain on the seed mean (min"
            f" {per_strength.min():+.3f}, max {per_strength.max():+.3f})",
            why="the post says the too-strong strengths fail to thread the moons, so"
            " the average depends on how many of them the sweep holds",
        )
    )
    out += _sparsity_claims(result, rel)
    return out


def _sparsity_claims(result: Result, rel: float) -> list[Claim]:
    """L1 is sparse, L2 is not, at mid-sweep strengths; proximal L1's exact zeros."""
    a = result.arrays
    i2, i1 = swept_index(result, "l2", "l2_mid"), swept_index(result, "l1", "l1_mid")
    lam2, lam1 = float(a["l2_strengths"][i2]), float(a["l1_strengths"][i1])
    W0, W2, W1 = a["l2_W2"][:, 0], a["l2_W2"][:, i2], a["l1_W2"][:, i1]  # (S, H, H)
    near = f"|w| < {rel:g} × the std of its matrix"
    l1_frac, l2_frac = near_zero_fraction(W1, rel), near_zero_fraction(W2, rel)
    iw = int(np.argmax(a["l2_strengths"]))
    Ww = a["l2_W2"][:, iw]
    out = [
        Claim.over_seeds(
            "l1_makes_hidden_weights_sparse",
            "L1 leaves most hidden-to-hidden weights at (near) zero.",
            l1_frac,
            0.5,
            ">",
            f"fraction of W2 entries with {near} at λ₁ = {lam1:g} (λ = 0:"
            f" {near_zero_fraction(W0, rel).mean():.3f}); dead units"
            f" {dead_unit_fraction(W1, rel).mean():.3f}, near zero among live units"
            f" {live_near_zero_fraction(W1, rel).mean():.3f}; below 0.01 in absolute"
            f" terms {(np.abs(W1) < 0.01).mean():.3f}",
        ),
        Claim.over_seeds(
            "mid_sweep_l2_not_sparse",
            "L2 shrinks weights without zeroing most of them.",
            l2_frac,
            0.5,
            "<",
            f"fraction of W2 entries with {near} at mid-sweep λ₂ = {lam2:g} (below"
            f" 0.01 in absolute terms: {(np.abs(W2) < 0.01).mean():.3f}, std of W2"
            f" {W2.std(axis=(-2, -1)).mean():.3g} against"
            f" {W0.std(axis=(-2, -1)).mean():.3g} at λ = 0); at the strongest"
            f" λ₂ = {a['l2_strengths'][iw]:g}: {near_zero_fraction(Ww, rel).mean():.3f}"
            f" near zero, {dead_unit_fraction(Ww, rel).mean():.3f} of the units dead",
        ),
    ]
    if "prox_W2" in a:
        k = int(np.argmin(np.abs(a["prox_strengths"] - lam1)))
        exact_prox = (a["prox_W2"][:, k] == 0).mean(axis=(-2, -1))  # (S,)
        out.append(
            Claim.over_seeds(
                "proximal_l1_exact_zeros",
                "Proximal L1 (soft-thresholding) zeroes weights exactly; subgradient"
                " L1 only brings them near zero.",
                exact_prox,
                0.5,
                ">",
                f"fraction of W2 entries exactly 0 with proximal L1 at λ₁ ="
                f" {a['prox_strengths'][k]:g}; subgradient L1 at {lam1:g}:"
                f" {(W1 == 0).mean():.4f} exactly 0, {l1_frac.mean():.3f} near zero;"
                f" proximal clean test accuracy {a['prox_test_acc'][:, k].mean():.3f}",
            )
        )
    return out
