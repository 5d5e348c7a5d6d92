"""Figure 1 of the post: the plain and the augmented model's training, over epochs."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from reglab.experiments.augmentation import (
    LABELS,
    MNIST_TEST,
    interpolation_epochs,
    relapse_epochs,
)
from reglab.experiments.base import Figure, Result
from reglab.experiments.plots import band, seed_note

COLORS = ("C0", "C1")  # plain, augmented: as LABELS


def figures(result: Result) -> list[Figure]:
    """Return Figure 1: train loss, train accuracy and test accuracy over epochs."""
    epochs = result["record_epochs"]  # (R,)
    fig = MplFigure(figsize=(15, 4.6), layout="constrained")
    axes = fig.subplots(1, 3)
    # the loss spans ten decades: mean and band of log10(loss), ticks as powers of 10
    panels = (
        (np.log10(result["train_loss"]), "train loss (NLL, un-augmented images)"),
        (result["train_accuracy"], "train accuracy (un-augmented images)"),
        (result["test_accuracy"], "test accuracy"),
    )
    t_interp = float(np.mean(interpolation_epochs(result)))
    for ax, (values, ylabel) in zip(axes, panels, strict=True):
        for c, (label, color) in enumerate(zip(LABELS, COLORS, strict=True)):
            band(ax, epochs, values[:, c], color=color, label=label, lw=1.5)
        ax.axvline(t_interp, color="0.4", ls=":", lw=1.2)
        # linear epochs: the post's story is the long phase after interpolation
        ax.set_xlim(0, epochs[-1])
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{v:.0f}}}$"))
    # train accuracy: the approach to 100% and any loss of it
    late = epochs >= min(5, epochs[-1])
    lo = np.percentile(result["train_accuracy"][..., late], 1)
    axes[1].set_ylim(max(0.0, lo - 0.01), 1.002)
    test = result["test_accuracy"][..., late]  # (S, 2, R')
    axes[2].set_ylim(np.percentile(test, 1) - 0.005, test.mean(0).max() + 0.01)
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(axes[0].lines[-1])
    labels.append(f"plain model fits every training image (epoch ~{t_interp:.0f})")
    # above the panels: a legend never covers a curve
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False)
    final = result["final_test_accuracy"].mean(0)  # (2,)
    cfg = result.config
    caption = (
        f"Figure 1: MNIST, {cfg['n_train']} training images, MLP"
        f" {'-'.join(map(str, cfg['widths']))} with tanh, Adam, batch"
        f" {cfg['batch_size']}. The plain and the batch-shift augmented model share"
        " initial weights and batch order. Left: train loss (its logarithm averaged"
        " over seeds); middle: train accuracy, both on the un-augmented training"
        " images; right: accuracy"
        f" on {cfg['n_test']} test images. The dotted line marks the first recorded"
        f" epoch where the plain model fits every training image (~{t_interp:.0f},"
        f" seed mean). Final accuracy on all {MNIST_TEST} test images: plain"
        f" {final[0]:.4f}, augmented {final[1]:.4f}."
        + _relapse_note(result)
        + seed_note(len(result["seeds"]))
    )
    return [Figure("fig1_augmentation", fig, caption)]


def _relapse_note(result: Result) -> str:
    relapse = relapse_epochs(result)
    if not (relapse >= 0).any():
        return ""
    return (
        " After interpolating, the plain model's training fit breaks down again at"
        f" epoch {relapse[relapse >= 0].tolist()} (train accuracy below 99%): its"
        " loss jumps up from its minimum."
    )
