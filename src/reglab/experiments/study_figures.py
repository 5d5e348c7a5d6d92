"""Figures of a study: curves, calibration, weights and (for 2-D inputs) boundaries."""

from __future__ import annotations

import math

import matplotlib.figure
import numpy as np
from matplotlib.colors import ListedColormap

from reglab.experiments.base import Figure, Result, mean_interval
from reglab.experiments.plots import band, named_seed, plot_probability, seed_note
from reglab.experiments.study import labels_of


def _colors(n: int) -> list:
    """Return n distinct colours (tab10, then viridis for larger grids)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(1, n - 1)) for i in range(n)]


def _setup(result: Result) -> str:
    """Return the study's shared settings in a phrase: data, network, optimizer."""
    c = result.config
    data = c["dataset"].partition("#")[0]
    if data == "moons":
        data += f" (noise {c['noise']:g}, {c['flip_fraction']:.0%} of labels flipped)"
    hidden = "-".join(map(str, c["hidden"])) or "no hidden layer"
    return (
        f"{data}; {c['activation']} MLP with hidden widths {hidden};"
        f" {c['optimizer'].upper()} ({c['penalty']} penalty), learning rate"
        f" {c['learning_rate']:g}, alpha {c['alpha']:g}, tau {c['tau']:g};"
        f" {c['epochs']:,} epochs of batch {c['batch_size']}"
    )


def _curves(result: Result) -> Figure:
    a, labels = result.arrays, labels_of(result)
    epochs = np.asarray(a["record_epochs"]) + 1  # log axis: epoch 0 sits at 1
    fig = matplotlib.figure.Figure(figsize=(10, 6.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    panels = [("train_loss", "train loss (NLL)"), ("test_loss", "test loss (NLL)"),
              ("train_accuracy", "train accuracy"),
              ("test_accuracy", "test accuracy")]  # fmt: skip
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for c, color in enumerate(_colors(len(labels))):
            band(ax, epochs, a[key][:, c], color=color, label=labels[c])
        ax.set_xscale("log")
        # two seeds' t interval is wide: keep the panel on the values' own range
        ax.set_ylim((0.0, 1.02) if "accuracy" in key else (0.0, None))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch + 1")
    axes[0, 0].legend(fontsize=8)
    return Figure(
        "fig_study_curves",
        fig,
        f"Loss and accuracy on the training set and the test set during training:"
        f" {_setup(result)}." + seed_note(a["train_loss"].shape[0]),
    )


def _interval_bars(ax, values, labels, colors, title) -> None:
    """Draw one bar per column: the seed mean with its 95% interval."""
    stats = [mean_interval(values[:, c]) for c in range(values.shape[1])]
    means = [m for m, _, _ in stats]
    errors = [[m - lo for m, lo, _ in stats], [hi - m for m, _, hi in stats]]
    ax.bar(range(len(means)), means, yerr=errors, color=colors, capsize=3)
    ax.set_xticks(range(len(means)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")


def _calibration(result: Result) -> Figure:
    a, labels = result.arrays, labels_of(result)
    colors = _colors(len(labels))
    fig = matplotlib.figure.Figure(figsize=(13, 4.2), layout="constrained")
    ax_nll, ax_ece, ax_rel = fig.subplots(1, 3)
    _interval_bars(ax_nll, a["nll"], labels, colors, "test NLL")
    _interval_bars(ax_ece, a["ece"], labels, colors, "test ECE")
    for c, color in enumerate(colors):
        conf = np.nanmean(a["reliability_conf"][:, c], axis=0)  # (bins,) seed mean
        acc = np.nanmean(a["reliability_acc"][:, c], axis=0)
        ax_rel.plot(conf, acc, "o-", color=color, ms=3, label=labels[c])
    ax_rel.plot([0, 1], [0, 1], "k--", lw=0.8, label="calibrated")
    ax_rel.set_xlabel("confidence (bin mean)")
    ax_rel.set_ylabel("accuracy (bin mean)")
    ax_rel.set_title("reliability diagram (test set)", fontsize=10)
    ax_rel.legend(fontsize=8)
    ax_rel.grid(alpha=0.3)
    n_bins = a["reliability_conf"].shape[-1]
    return Figure(
        "fig_study_calibration",
        fig,
        f"Test negative log-likelihood, expected calibration error ({n_bins}"
        " equal-mass confidence bins) and the reliability diagram at the end of"
        f" training: {_setup(result)}. Bars: seed mean with its 95% interval;"
        " reliability: per bin, the mean over seeds of its mean confidence and"
        " accuracy (points below the diagonal are overconfident).",
    )


def _weights(result: Result) -> Figure:
    a, labels = result.arrays, labels_of(result)
    colors = _colors(len(labels))
    n_layers = a["weight_norm"].shape[-1]
    fig = matplotlib.figure.Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    width = 0.8 / len(labels)
    for ax, key, title in ((axes[0], "weight_norm", "weight norm ||W_l||"),
                           (axes[1], "sparsity", "sparsity: share of |w| < "
                            f"{result.config['sparsity_threshold']:g}")):  # fmt: skip
        for c, color in enumerate(colors):
            mean = a[key][:, c].mean(0)  # (layers,) seed mean
            x = np.arange(n_layers) + (c - (len(labels) - 1) / 2) * width
            ax.bar(x, mean, width, color=color, label=labels[c])
        ax.set_xticks(range(n_layers), [f"W{l + 1}" for l in range(n_layers)])
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    return Figure(
        "fig_study_weights",
        fig,
        "Each layer's weight matrix at the end of training: its Frobenius norm and"
        f" the share of weights near zero (seed mean): {_setup(result)}.",
    )


def _boundaries(result: Result) -> Figure:
    a, labels = result.arrays, labels_of(result)
    n, acc = len(labels), a["test_accuracy"][:, :, -1]  # (S, C)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = matplotlib.figure.Figure(
        figsize=(3.0 * cols + 0.9, 3.0 * rows), layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False)
    two = int(a["n_classes"]) == 2
    flipped = a.get("flipped")
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.set_axis_off()
            continue
        if two:
            cs = plot_probability(ax, a["grid_x"], a["grid_y"], a["boundary"][0, c],
                                  a["x_train"], a["y_train"], flipped)  # fmt: skip
        else:  # regions and points in the same colour per class
            k = int(a["n_classes"])
            palette = _colors(k)
            ax.pcolormesh(
                a["grid_x"], a["grid_y"], a["boundary"][0, c], shading="auto",
                cmap=ListedColormap(palette), vmin=-0.5, vmax=k - 0.5, alpha=0.35,
            )  # fmt: skip
            ax.scatter(*a["x_train"].T, c=[palette[int(v)] for v in a["y_train"]],
                       s=8, edgecolors="w", linewidths=0.3)  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(f"{labels[c]}\ntest acc {acc[:, c].mean():.3f}", fontsize=9)
    if two:
        fig.colorbar(cs, ax=axes, label="P(class 1)", shrink=0.8)
    what = (
        "P(class 1) with the P = 0.5 line in black; dots: training labels (red = 1,"
        " blue = 0), crosses: flipped labels"
        if two
        else "the predicted class (shaded); dots: training labels, coloured by class"
    )
    return Figure(
        "fig_study_boundaries",
        fig,
        f"Each grid point's decision regions over the input plane: {what}."
        f" {_setup(result)}. Titles: seed-mean test accuracy."
        + named_seed(result.config["seeds"]),
    )


def figures(result: Result) -> list[Figure]:
    """Return the study's figures; boundaries only for 2-D inputs."""
    out = [_curves(result), _calibration(result), _weights(result)]
    if "boundary" in result.arrays:
        out.append(_boundaries(result))
    return out
