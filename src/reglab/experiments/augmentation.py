"""Section 1: batch-shift augmentation on 1,000 MNIST digits, with and without.

Two members of one ensemble share their seed (initial weights, batch order, shift
draws): ``augment=0`` trains on the images as they are, ``augment=1`` shifts each
minibatch with the post's ``post_shift``. Train loss and accuracy are measured on the
un-augmented training images, so the two models are compared on the same data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from reglab import data, metrics, nn
from reglab.ensemble import Ensemble
from reglab.experiments.base import (
    Claim,
    Figure,
    Progress,
    Result,
    Tally,
    config_dict,
)
from reglab.optim import OptimizerSpec
from reglab.train import TrainSpec, log_spaced_epochs, predict, train

NAME = "augmentation"
MNIST_TRAIN = 5000  # images in the bundled training subset
MNIST_TEST = 10000
LABELS = ("plain", "augmented")  # column c of every (S, 2, ...) array: augment = c
INTERPOLATED = 0.999  # train accuracy counted as 100 %: at most 1 miss in 1,000


@dataclass(frozen=True)
class Config:
    """The post's section 7 row for data augmentation, plus the measurement plan."""

    n_train: int = 1000  # stratified subset of the bundled MNIST training images
    n_test: int = 10000  # test images scored at every record point (all 10,000)
    widths: tuple[int, ...] = (784, 128, 10)
    learning_rate: float = 0.01  # Adam (0.9, 0.999), schedule (0.01, 0.5, 5e4)
    alpha: float = 0.5
    tau: float = 5e4
    beta1: float = 0.9
    beta2: float = 0.999
    epochs: int = 250
    batch_size: int = 8
    # record points: half log-spaced (the fast start), half evenly spaced (the long
    # tail); each costs a forward pass over the n_test images per member
    record_points: int = 50
    data_seed: int = 0  # which 1,000 training images
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "widths", tuple(self.widths))
        if not 1 <= self.n_train <= MNIST_TRAIN:
            raise ValueError(
                f"n_train must be in [1, {MNIST_TRAIN}] (the bundled MNIST training"
                f" images), got {self.n_train} — the post uses 1000"
            )
        if not 10 <= self.n_test <= MNIST_TEST:
            raise ValueError(
                f"n_test must be in [10, {MNIST_TEST}], got {self.n_test}"
                " — use 10000 for the full test set"
            )
        if self.widths[0] != 784 or self.widths[-1] != 10:
            raise ValueError(
                f"widths must start at 784 (28x28 pixels) and end at 10 (digits),"
                f" got {self.widths} — e.g. (784, 128, 10)"
            )
        if self.epochs < 4:
            raise ValueError(
                f"epochs must be >= 4 (the claims compare quarters of training),"
                f" got {self.epochs}"
            )
        if not 1 <= self.batch_size <= self.n_train:
            raise ValueError(
                f"batch_size must be in [1, n_train={self.n_train}], got"
                f" {self.batch_size} — the post uses 8"
            )
        if self.record_points < 4:
            raise ValueError(
                f"record_points must be >= 4, got {self.record_points} — e.g. 50"
            )
        if not self.seeds:
            raise ValueError("seeds must hold at least one seed, got () — e.g. (0,)")

    def quick(self) -> Config:
        """Return a smoke-run version: 1/10 of the epochs, otherwise the same."""
        return dataclasses.replace(self, epochs=max(4, self.epochs // 10))


def record_schedule(epochs: int, points: int) -> np.ndarray:
    """Return about `points` epochs: half log-spaced, half evenly spaced, 0 included."""
    half = max(2, points // 2)
    even = np.linspace(0, epochs, half + 1).round().astype(int)
    # epochs // 2 lies in (epochs/4, epochs/2]: the window late_gains compares against
    middle = [epochs // 2]
    return np.unique(np.concatenate([log_spaced_epochs(epochs, half), even, middle]))


def _test_set(n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = data.load("mnist", split="test")
    if n_test == len(y):
        return x, y
    return data.subset(x, y, n_test, seed=seed)


def run(cfg: Config, *, progress: Progress | None = None) -> Result:
    """Train the plain and the augmented model together; score both on test."""
    x_all, y_all = data.load("mnist", split="train")
    x, y = data.subset(x_all, y_all, cfg.n_train, seed=cfg.data_seed)
    x_test, y_test = _test_set(cfg.n_test, cfg.data_seed)
    spec = TrainSpec(
        nn.MLPSpec(cfg.widths),
        OptimizerSpec("adam", beta1=cfg.beta1, beta2=cfg.beta2),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
    )
    ensemble = Ensemble(
        cfg.seeds,
        {
            "learning_rate": cfg.learning_rate,
            "alpha": cfg.alpha,
            "tau": cfg.tau,
            "augment": np.array([0.0, 1.0]),  # column index = augment, see LABELS
        },
    )
    tally = Tally(progress, n_calls=1)
    out = tally.add(
        train(
            spec,
            ensemble,
            x,
            y,
            eval_sets={"train": (x, y), "test": (x_test, y_test)},
            record=record_schedule(cfg.epochs, cfg.record_points),
            augment_fn=data.post_shift,
            progress=tally.progress(0),
        )
    )
    # the final models on the full test set, whatever n_test was
    x_full, y_full = data.load("mnist", split="test")
    logits = predict(spec.model, out.params, x_full)  # (S, 2, 10000, 10)
    arrays = {
        "seeds": np.asarray(cfg.seeds),
        "record_epochs": out.record_epochs,  # (R,)
        "train_loss": out.history["train"]["loss"],  # (S, 2, R)
        "train_accuracy": out.history["train"]["accuracy"],  # (S, 2, R)
        "test_loss": out.history["test"]["loss"],  # (S, 2, R), on n_test images
        "test_accuracy": out.history["test"]["accuracy"],  # (S, 2, R)
        "final_test_accuracy": metrics.accuracy(logits, y_full),  # (S, 2)
        "final_test_nll": metrics.nll(logits, y_full),  # (S, 2)
        "diverged": out.diverged,  # (S, 2)
    }
    return Result(
        NAME,
        config_dict(cfg),
        arrays,
        tally.timings,
        tally.notes,
    )


# --- measurements shared by figures and claims ------------------------------------


def interpolation_epochs(result: Result) -> np.ndarray:
    """Return, per seed, the first record epoch where plain train accuracy is ~1."""
    epochs = result["record_epochs"]  # (R,)
    reached = result["train_accuracy"][:, 0] >= INTERPOLATED  # (S, R)
    first = np.where(reached.any(-1), reached.argmax(-1), len(epochs) - 1)
    return epochs[first]  # (S,)


def _window_median(acc: np.ndarray, epochs: np.ndarray, lo: float, hi: float):
    """Return the median of acc (..., R) over record epochs in (lo, hi]."""
    inside = (epochs > lo) & (epochs <= hi)
    return np.median(acc[..., inside], axis=-1)


def late_gains(result: Result) -> np.ndarray:
    """Return (S, 2): median test accuracy, last half minus second quarter."""
    epochs, E = result["record_epochs"], int(result.config["epochs"])
    acc = result["test_accuracy"]  # (S, 2, R)
    return _window_median(acc, epochs, E / 2, E) - _window_median(
        acc, epochs, E / 4, E / 2
    )


def relapse_epochs(result: Result) -> np.ndarray:
    """Return per seed the first epoch after interpolation with acc < 0.99, or -1."""
    epochs = result["record_epochs"]
    after = epochs[None] > interpolation_epochs(result)[:, None]  # (S, R)
    lost = after & (result["train_accuracy"][:, 0] < 0.99)  # (S, R)
    return np.where(lost.any(-1), epochs[lost.argmax(-1)], -1)


def early_gaps(result: Result) -> np.ndarray:
    """Return (S,): mean test accuracy gap augmented - plain up to interpolation."""
    epochs = result["record_epochs"]
    gap = result["test_accuracy"][:, 1] - result["test_accuracy"][:, 0]  # (S, R)
    t_interp = interpolation_epochs(result)  # (S,)
    before = (epochs[None] >= 1) & (epochs[None] <= t_interp[:, None])  # (S, R)
    # at least one epoch counts: epoch 1 when the plain model fits at once
    return (gap * before).sum(-1) / np.maximum(before.sum(-1), 1)


# --- figures -----------------------------------------------------------------------


def _band(ax, epochs, values, label, color):
    """Plot the seed mean of values (S, R) with a min-max band when S > 1."""
    ax.plot(epochs, values.mean(0), color=color, label=label, lw=1.5)
    if values.shape[0] > 1:
        ax.fill_between(epochs, values.min(0), values.max(0), color=color, alpha=0.2)


def figures(result: Result) -> list[Figure]:
    """Return Figure 1: train loss, train accuracy and test accuracy over epochs."""
    from matplotlib.figure import Figure as MplFigure

    epochs = result["record_epochs"]
    fig = MplFigure(figsize=(15, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (
        ("train_loss", "train loss (NLL, un-augmented)"),
        ("train_accuracy", "train accuracy (un-augmented)"),
        ("test_accuracy", "test accuracy"),
    )
    t_interp = float(np.mean(interpolation_epochs(result)))
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        for c, (label, color) in enumerate(zip(LABELS, ("C0", "C1"), strict=True)):
            _band(ax, epochs, result[key][:, c], label, color)
        ax.axvline(t_interp, color="0.4", ls=":", lw=1, label="plain interpolates")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(0, epochs[-1])
        ax.set_xlabel("epoch (log scale after 1)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_ylim(max(0.0, axes[1].get_ylim()[0]), 1.005)
    lo = np.percentile(result["test_accuracy"][..., epochs >= 1], 2)
    axes[2].set_ylim(lo - 0.01, None)
    axes[0].legend(loc="lower left")
    final = result["final_test_accuracy"].mean(0)
    n_test = int(result.config["n_test"])
    caption = (
        f"MNIST, {result.config['n_train']} training images, MLP"
        f" {'-'.join(map(str, result.config['widths']))} tanh, Adam, batch"
        f" {result.config['batch_size']}. The plain and the batch-shift augmented"
        " model share initial weights and batch order. Left, middle: loss and"
        " accuracy on the un-augmented training images; right: accuracy on"
        f" {n_test} test images. The dotted line marks the first recorded epoch"
        f" where the plain model fits all training images (~{t_interp:.0f})."
        f" Final accuracy on all {MNIST_TEST} test images: plain {final[0]:.4f},"
        f" augmented {final[1]:.4f}." + _relapse_note(result) + _seed_note(result)
    )
    return [Figure("fig1_augmentation", fig, caption)]


def _relapse_note(result: Result) -> str:
    relapse = relapse_epochs(result)
    if not (relapse >= 0).any():
        return ""
    return (
        " After interpolating, the plain model's training fit breaks down again at"
        f" epoch {relapse[relapse >= 0].tolist()} (train accuracy < 99 %): its loss"
        " jumps up from its minimum."
    )


def _seed_note(result: Result) -> str:
    n = len(result["seeds"])
    return f" Curves: mean over {n} seeds, band min-max." if n > 1 else ""


# --- claims ------------------------------------------------------------------------


def _agree(per_seed: np.ndarray, ok) -> str:
    """Return 'k of n seeds agree' for a per-seed array and a predicate."""
    return f"{int(np.sum(ok(per_seed)))} of {per_seed.size} seeds agree"


def claims(result: Result) -> list[Claim]:
    """Return the post's statements about augmentation as measured checks."""
    final = result["final_test_accuracy"]  # (S, 2)
    edge = final[:, 1] - final[:, 0]  # (S,)
    best_train = result["train_accuracy"][:, 0].max(-1)  # (S,) plain
    t_interp = interpolation_epochs(result)
    gaps = early_gaps(result)
    gains = late_gains(result)  # (S, 2)
    gain_edge = gains[:, 1] - gains[:, 0]
    E = int(result.config["epochs"])
    return [
        Claim(
            "augmented_beats_plain",
            "The augmented model ends with a higher test accuracy than the plain one.",
            float(edge.mean()),
            0.0,
            ">",
            f"final accuracy on all {MNIST_TEST} test images, augmented - plain:"
            f" {final[:, 1].mean():.4f} - {final[:, 0].mean():.4f}; the plain"
            " model's best recorded test accuracy was"
            f" {result['test_accuracy'][:, 0].max(-1).mean():.4f};"
            f" {_agree(edge, lambda v: v > 0)}",
        ),
        Claim(
            "plain_interpolates",
            "Without augmentation the model fits every training image (100% train"
            " accuracy).",
            float(best_train.mean()),
            INTERPOLATED,
            ">=",
            "highest recorded train accuracy of the plain model; first reached at"
            f" epoch {t_interp.tolist()} (per seed);"
            f" {_agree(best_train, lambda v: v >= INTERPOLATED)}",
        ),
        Claim(
            "equal_before_interpolation",
            "Until the plain model interpolates, both models have about the same"
            " test accuracy.",
            float(np.abs(gaps.mean())),
            0.02,
            "<=",
            "|mean over record epochs 1..interpolation of test accuracy augmented -"
            f" plain| (signed gap {gaps.mean():+.4f}), within 2 points;"
            f" {_agree(gaps, lambda v: np.abs(v) <= 0.02)}",
        ),
        Claim(
            "augmented_keeps_improving",
            "After the plain model's test accuracy saturates, the augmented model"
            " keeps improving.",
            float(gain_edge.mean()),
            0.0,
            ">",
            "gain in test accuracy = median over epochs"
            f" ({E // 2}, {E}] - median over ({E // 4}, {E // 2}]; augmented gain"
            f" {gains[:, 1].mean():+.4f} minus plain gain {gains[:, 0].mean():+.4f};"
            f" {_agree(gain_edge, lambda v: v > 0)}",
        ),
    ]
