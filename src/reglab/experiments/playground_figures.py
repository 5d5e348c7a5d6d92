"""Figures of a playground run: each member's boundary and the loss curves.

The page's two views, drawn from a saved Result, so a run saved from the page and
re-made with ``reglab run playground`` has a report like every experiment's.
"""

from __future__ import annotations

import math

import matplotlib.figure

from reglab.experiments.base import Figure, Result
from reglab.experiments.playground import label, members_of
from reglab.experiments.plots import band, named_seed, plot_probability, seed_note


def _setup(result: Result) -> str:
    """Return the run's shared settings in a phrase: network, optimizer, data."""
    c = result.config
    widths = "-".join(map(str, (2, *c["hidden"], 2)))
    return (
        f"{widths} {c['activation']} MLP, {c['optimizer'].upper()}, {c['epochs']:,}"
        f" epochs, batch 32, on {c['n_train']} two-moons points (noise {c['noise']:g},"
        f" {c['flip_fraction']:.0%} of labels flipped, data seed {c['data_seed']})"
    )


def _boundaries(result: Result) -> Figure:
    a, members = result.arrays, members_of(result)
    n, acc = len(members), a["test_accuracy"][:, :, -1]  # (S, M)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = matplotlib.figure.Figure(
        figsize=(3.0 * cols + 0.9, 3.0 * rows), layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False)
    for m, ax in enumerate(axes.flat):
        if m >= n:
            ax.set_axis_off()
            continue
        cs = plot_probability(
            ax, a["grid_x"], a["grid_y"], a["prob"][0, m], a["x_train"],
            a["y_train"], a["flipped"],
        )  # fmt: skip
        mean = f", mean {acc[:, m].mean():.3f}" if acc.shape[0] > 1 else ""
        ax.set_title(
            f"member {m}: {label(members[m])}\ntest acc {acc[0, m]:.3f}{mean}",
            fontsize=9,
        )
    fig.colorbar(cs, ax=axes, label="P(class 1)", shrink=0.8)
    return Figure(
        "fig_playground_boundaries",
        fig,
        f"Each member's decision probability P(class 1) after training: a"
        f" {_setup(result)}. Black line: P = 0.5; dots: training labels (red = 1,"
        " blue = 0); crosses mark the flipped ones. Member 0 is the page's live"
        " setting, the others its pins; titles give the clean test accuracy."
        + named_seed(result.config["seeds"]),
    )


def _curves(result: Result) -> Figure:
    a, members = result.arrays, members_of(result)
    keep = a["record_epochs"] > 0  # a log axis has no epoch 0
    epochs = a["record_epochs"][keep]
    fig = matplotlib.figure.Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    colors = [f"C{m}" for m in range(len(members))]
    for m, member in enumerate(members):
        band(ax, epochs, a["train_loss"][:, m, keep], color=colors[m],
             label=f"{m}: {label(member)}")  # fmt: skip
        band(ax, epochs, a["test_loss"][:, m, keep], color=colors[m], linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (NLL)")
    ax.legend(fontsize=8, title="solid: train, dashed: clean test", title_fontsize=8)
    return Figure(
        "fig_playground_curves",
        fig,
        f"Loss against epoch for each member of a {_setup(result)}: solid on the"
        " training labels (flips included), dashed on a clean test draw. A test"
        " curve that turns up while the training curve keeps falling is the network"
        " fitting the flips." + seed_note(len(result.config["seeds"])),
    )


def figures(result: Result) -> list[Figure]:
    """The members' boundaries side by side, and their loss curves."""
    return [_boundaries(result), _curves(result)]
