"""Figures of the zoo: accuracy (and ECE) over strength, boundaries, the summary."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure as MplFigure

from reglab.experiments.base import Figure, Result, Table, mean_interval
from reglab.experiments.plots import band, named_seed, plot_probability, seed_note
from reglab.experiments.zoo import LABELS, column_of, top_eigenvalue

PANELS = (
    ("moons_test_acc", "two moons: clean test accuracy"),
    ("moons_flip_fit", "two moons: flipped labels fitted"),
    ("mnist_test_acc", "MNIST-1000: test accuracy"),
    ("mnist_ece", "MNIST-1000: ECE (15 equal-mass bins)"),
)


def _regularizers(result: Result) -> list[str]:
    return list(dict.fromkeys(result["column_regularizer"][1:].tolist()))


def _curves(result: Result) -> MplFigure:
    """One line per regularizer: grid step 0 (none) to its strongest strength."""
    fig = MplFigure(figsize=(12, 8.5), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    names = result["column_regularizer"]
    # tab10, then colors of their own: 11 regularizers must not share one
    palette = [f"C{i}" for i in range(10)] + ["black", "darkgoldenrod", "navy", "lime"]
    colors = [palette[i % len(palette)] for i in range(len(_regularizers(result)))]
    for ax, (key, title) in zip(axes, PANELS, strict=True):
        values = result[key]  # (S, C)
        for reg, color in zip(_regularizers(result), colors, strict=True):
            idx = [0, *np.flatnonzero(names == reg)]
            style = "--" if reg in ("max_norm", "swa_start") else "-"
            label = LABELS.get(reg, reg)
            band(ax, np.arange(len(idx)), values[:, idx], color=color, label=label,
                 alpha=0.08, linestyle=style, marker="o", ms=3)  # fmt: skip
        # every panel is a fraction: a 2-seed t band (x12.7) must not set the scale
        means = values.mean(0)
        pad = 0.1 * max(means.max() - means.min(), 0.02)
        ax.set_ylim(max(0.0, means.min() - pad), min(1.0, means.max() + pad))
        ax.set_title(title)
        ax.set_xlabel("grid step (0: none; then each one's strengths, weakest first)")
    axes[0].legend(fontsize=7, ncol=2)
    return fig


def _boundaries(result: Result) -> MplFigure:
    """The moons boundary of each regularizer at its best strength (seed 0)."""
    regs = ["none", *_regularizers(result)]
    n_cols = 4
    n_rows = -(-len(regs) // n_cols)
    fig = MplFigure(figsize=(3.2 * n_cols, 3.0 * n_rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols)).ravel()
    a = result.arrays
    for ax, reg in zip(axes, regs, strict=False):
        c = column_of(result, reg, "moons")
        grid = a["moons_grid_x"], a["moons_grid_y"]
        plot_probability(ax, *grid, a["moons_prob"][0, c], a["moons_x"], a["moons_y"],
                         a["moons_flipped"])  # fmt: skip
        strength = f" {a['column_strength'][c]:g}" if c else ""
        acc = a["moons_test_acc"][:, c].mean()
        ax.set_title(f"{LABELS.get(reg, reg)}{strength}: {acc:.3f}", fontsize=9)
    for ax in axes[len(regs) :]:
        ax.set_visible(False)
    return fig


def summary_rows(result: Result) -> list[dict[str, float | str]]:
    """Return one row per regularizer at its best strength (moons and MNIST): seed
    means, and the 95% interval over seeds of each test accuracy ("... lo"/"... hi")."""
    rows = []
    regs = ["none", *dict.fromkeys(result["column_regularizer"][1:].tolist())]
    for reg in regs:
        cm, cn = column_of(result, reg, "moons"), column_of(result, reg, "mnist")
        moons = mean_interval(result["moons_test_acc"][:, cm])
        mnist = mean_interval(result["mnist_test_acc"][:, cn])
        rows.append({
            "regularizer": LABELS.get(reg, reg),
            "moons strength": float(result["column_strength"][cm]),
            "moons clean acc": moons[0],
            "moons clean acc lo": moons[1],
            "moons clean acc hi": moons[2],
            "moons flip fit": float(result["moons_flip_fit"][:, cm].mean()),
            "mnist strength": float(result["column_strength"][cn]),
            "mnist acc": mnist[0],
            "mnist acc lo": mnist[1],
            "mnist acc hi": mnist[2],
            "mnist ECE": float(result["mnist_ece"][:, cn].mean()),
            "top eigenvalue": float(top_eigenvalue(result, cn).mean()),
        })  # fmt: skip
    return rows


def tables(result: Result) -> list[Table]:
    """The summary: each regularizer at its best strength per problem, sortable."""
    rows = summary_rows(result)

    def acc(r, name):  # sorted by the mean, shown with its interval
        mean, lo, hi = r[name], r[f"{name} lo"], r[f"{name} hi"]
        return (mean, f"{mean:.3f} [{lo:.3f}, {hi:.3f}]")

    def num(x):
        return (x, f"{x:.3g}")

    columns = ["regularizer", "moons strength", "moons clean test acc (95% CI)",
               "moons flipped-label fit", "MNIST strength", "MNIST test acc (95% CI)",
               "MNIST ECE", "top Hessian eigenvalue"]  # fmt: skip
    cells = [
        [r["regularizer"], num(r["moons strength"]), acc(r, "moons clean acc"),
         num(r["moons flip fit"]), num(r["mnist strength"]), acc(r, "mnist acc"),
         num(r["mnist ECE"]), num(r["top eigenvalue"])]
        for r in rows
    ]  # fmt: skip
    return [
        Table(
            "zoo_summary",
            columns,
            cells,
            "Each regularizer at the strength with the best seed-mean clean test"
            " accuracy, per problem: moons (clean test accuracy, fit to the flipped"
            " training labels) and MNIST-1000 (test accuracy, ECE, top Hessian"
            " eigenvalue of the training loss at the end). Means over"
            f" {len(result['seeds'])} seeds; brackets: the 95% t interval of the mean.",
        )
    ]


def figures(result: Result) -> list[Figure]:
    """Strength curves and best boundaries (the summary is a table: `tables`)."""
    n = len(result["seeds"])
    return [
        Figure(
            "fig_zoo_strength",
            _curves(result),
            "Beyond the post: every regularizer's strength grid, grid step 0 the"
            " shared unregularized network (same init and batch order), then its"
            " strengths weakest first (max-norm: the cap shrinking; SWA: averaging"
            " from later to earlier epochs, dashed)." + seed_note(n),
        ),
        Figure(
            "fig_zoo_boundaries",
            _boundaries(result),
            "Two moons with 10% flipped labels (crosses): each regularizer at the"
            " strength with the best seed-mean clean test accuracy (in the title)."
            + named_seed(result["seeds"]),
        ),
    ]
