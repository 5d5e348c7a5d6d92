"""The choices section's figures: boundaries, accuracy table and verdicts per choice."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure as MplFigure

from reglab.experiments.base import Claim, Figure, Result, mean_interval
from reglab.experiments.choices import claims
from reglab.experiments.choices_dropout import DROPOUT_COLUMNS, boundary_lengths
from reglab.experiments.choices_l2 import label, strength_index
from reglab.experiments.plots import named_seed, plot_probability

PASS, FAIL = "#b7e1b0", "#f4b6b0"  # verdict cell colours


def _row_label(variant: str, width: int = 18) -> str:
    return "\n".join(textwrap.wrap(label(variant), width))


def _boundaries(result: Result) -> Figure:
    """Small multiples: one row per variant, one column per L2 strength (seed 0)."""
    a = result.arrays
    variants, strengths = a["variants"], a["l2_strengths"]
    V, C = len(variants), len(strengths)
    acc = a["test_acc"].mean(0)  # (V, C): seed mean
    fig = MplFigure(figsize=(2.0 * C + 1.6, 2.0 * V + 0.6), layout="constrained")
    axes = fig.subplots(V, C, squeeze=False)
    for v, variant in enumerate(variants):
        for c in range(C):
            ax = axes[v, c]
            cs = plot_probability(
                ax, a["grid_x"][v], a["grid_y"][v], a["prob"][0, v, c],
                a["x_train"][v], a["y_train"][v], a["flipped"][v],
            )  # fmt: skip
            ax.text(
                0.03, 0.03, f"{acc[v, c]:.3f}", transform=ax.transAxes, fontsize=8,
                bbox={"facecolor": "w", "alpha": 0.8, "pad": 1.5, "lw": 0},
            )  # fmt: skip
            for layer in ax.collections:  # 40-odd contour panels: a light SVG
                layer.set_rasterized(True)
            if v == 0:
                ax.set_title(f"$\\lambda_2$ = {strengths[c]:g}", fontsize=10)
        axes[v, 0].set_ylabel(_row_label(str(variant)), fontsize=9)
    fig.colorbar(cs, ax=axes, label="P(class 1)", shrink=0.4)
    caption = (
        "Figure 2's L2 sweep under each choice the post leaves unsaid: rows change one"
        " choice from the reference (LeCun init, moons noise 0.1, batch-mean"
        " gradient, biases decayed); columns are the coupled L2 strength (the"
        " batch-sum row's strengths are in sum units, i.e. / 32 on the mean). Colour:"
        " P(class 1); black line: P = 0.5; crosses: flipped labels; corner: clean test"
        " accuracy, seed mean." + named_seed(a["seeds"])
    )
    return Figure("fig_choices_l2_boundaries", fig, caption)


def _cell(values) -> tuple[float, str]:
    """Return (seed mean, 'mean\\n± half-width') of one table cell."""
    m, lo, hi = mean_interval(values)
    return m, f"{m:.3f}" + (f"\n± {(hi - lo) / 2:.3f}" if len(values) > 1 else "")


def _heat_table(ax, values, rows, cols, vmin, vmax):
    """Draw a heatmap of the seed means with 'mean ± half-width' in each cell."""
    means = np.empty(values.shape[1:])  # values: (S, rows, cols)
    for i in range(means.shape[0]):
        for j in range(means.shape[1]):
            means[i, j], text = _cell(values[:, i, j])
            dark = (means[i, j] - vmin) / (vmax - vmin) < 0.45
            ax.text(j, i, text, ha="center", va="center", fontsize=8.5,
                    color="w" if dark else "k")  # fmt: skip
    im = ax.imshow(means, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows, fontsize=9)
    ax.tick_params(length=0)
    return im


def _accuracy_table(result: Result) -> Figure:
    """Clean test accuracy per variant and strength (and per dropout mask)."""
    a = result.arrays
    variants, strengths = a["variants"], a["l2_strengths"]
    has_dropout = "dropout_test_acc" in a
    heights = [len(variants), 1.6] if has_dropout else [len(variants)]
    fig = MplFigure(
        figsize=(1.25 * len(strengths) + 3.2, 0.75 * sum(heights) + 1.4),
        layout="constrained",
    )
    axes = fig.subplots(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    rows = [_row_label(str(v), 30) for v in variants]
    cols = [f"{s:g}" for s in strengths]
    im = _heat_table(axes[0], a["test_acc"], rows, cols, 0.5, 1.0)
    axes[0].set_xlabel("L2 strength $\\lambda_2$ (batch-sum row: sum units)")
    axes[0].xaxis.set_label_position("top")
    axes[0].xaxis.tick_top()
    fig.colorbar(im, ax=axes, label="clean test accuracy (seed mean)", shrink=0.6)
    if has_dropout:
        acc = a["dropout_test_acc"][:, None, :]  # (S, 1, 3)
        _heat_table(axes[1], acc, ["clean test\naccuracy"], DROPOUT_COLUMNS, 0.5, 1.0)
        p = result.config["p_drop"]
        axes[1].set_xlabel(f"section 3's dropout setting, p = {p:g} (Adam, 2-96-96-2)")
    n = len(a["seeds"])
    caption = (
        "Clean test accuracy of the final models: seed mean"
        + (f" ± half-width of its 95% t interval over {n} seeds" if n > 1 else "")
        + ". Rows: the reference and one changed choice each; last table: no dropout"
        " and dropout with one mask per batch (the post's) or per example."
    )
    return Figure("fig_choices_accuracy_table", fig, caption)


def _dropout_boundaries(result: Result) -> Figure:
    """No dropout, per-batch and per-example dropout: boundaries of one seed."""
    a = result.arrays
    lengths = boundary_lengths(result).mean(0)  # (3,)
    acc = a["dropout_test_acc"].mean(0)
    fig = MplFigure(figsize=(11.5, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for c, ax in enumerate(axes):
        cs = plot_probability(
            ax, a["dropout_grid_x"], a["dropout_grid_y"], a["dropout_prob"][0, c],
            a["dropout_x_train"], a["dropout_y_train"],
        )  # fmt: skip
        ax.set_title(
            f"{DROPOUT_COLUMNS[c]}\ntest acc {acc[c]:.3f}, boundary {lengths[c]:.1f}",
            fontsize=9,
        )
    fig.colorbar(cs, ax=axes, label="P(class 1)", shrink=0.85)
    caption = (
        f"Section 3's setting (p = {result.config['p_drop']:g}, dropout off at"
        " inference) with each kind of mask; titles: clean test accuracy and P = 0.5"
        " boundary length, seed means." + named_seed(a["seeds"])
    )
    return Figure("fig_choices_dropout_masks", fig, caption)


def _verdict_grid(ax, grid: list[list[Claim | None]], rows, cols) -> None:
    """Draw pass/fail cells with the seed mean and the seed agreement."""
    for i, row in enumerate(grid):
        for j, c in enumerate(row):
            if c is None:
                continue
            colour = PASS if c.passed else FAIL
            ax.add_patch(_rect(j, i, colour))
            agree = f"\n{c.holds_in} of {len(c.per_seed)} seeds" if c.per_seed else ""
            value = f"{c.measured:+.3f}" if c.threshold == 0 else f"{c.measured:.3f}"
            ax.text(j, i, f"{'pass' if c.passed else 'FAIL'} {value}{agree}",
                    ha="center", va="center", fontsize=8.5)  # fmt: skip
    ax.set_xlim(-0.5, len(cols) - 0.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xticks(range(len(cols)), cols, fontsize=9)
    ax.set_yticks(range(len(rows)), rows, fontsize=9)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)


def _rect(j, i, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.48, i - 0.46), 0.96, 0.92, color=colour)


def _verdicts(result: Result) -> Figure:
    """Which of the post's claims hold under which choice."""
    by_name = {c.name: c for c in claims(result)}
    variants = [str(v) for v in result["variants"]]
    kinds = ("zero_l2_fits_flips", "moderate_l2_beats_zero",
             "every_mid_l2_beats_zero", "strongest_l2_worse_than_best")  # fmt: skip
    strengths = result["l2_strengths"]
    m = strengths[strength_index(result, result.config["moderate"])]
    cols = [
        "$\\lambda_2$ = 0 fits the\nflipped labels (fraction)",
        f"$\\lambda_2$ = {m:g} beats 0\n(accuracy gain)",
        f"every $\\lambda_2$ up to {result.config['threads_up_to']:g}\nbeats 0"
        " (smallest gain)",
        f"strongest ({strengths.max():g}) worse\nthan best (accuracy gap)",
    ]
    has_dropout = "per_batch_dropout_not_worse" in by_name
    heights = [len(variants), 2] if has_dropout else [len(variants)]
    fig = MplFigure(figsize=(13, 0.62 * sum(heights) + 1.8), layout="constrained")
    axes = fig.subplots(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    grid = [[by_name[f"{v}_{k}"] for k in kinds] for v in variants]
    _verdict_grid(axes[0], grid, [_row_label(v, 30) for v in variants], cols)
    if has_dropout:
        grid = [
            [by_name[f"{kind}_dropout_boundary_smoother"],
             by_name[f"{kind}_dropout_not_worse"], None, None]
            for kind in ("per_batch", "per_example")
        ]  # fmt: skip
        _verdict_grid(
            axes[1], grid, ["dropout, per-batch\nmask (the post's)",
                            "dropout, per-\nexample mask"],
            ["boundary shorter than\nno dropout (length ratio)",
             "accuracy not worse\n(accuracy change)", "", ""],
        )  # fmt: skip
    caption = (
        "Which of the post's claims hold under which choice: each cell is one claim,"
        " decided on the seed mean (printed; a gain, gap or ratio) with the number of"
        " seeds in which it holds. Top: Figure 2's weight-decay statements; bottom:"
        " section 3's dropout statements per kind of mask."
    )
    return Figure("fig_choices_verdicts", fig, caption)


def figures(result: Result) -> list[Figure]:
    """Return the boundaries, the accuracy table, the verdicts and the dropout masks."""
    out = [_boundaries(result), _accuracy_table(result), _verdicts(result)]
    if "dropout_prob" in result.arrays:
        out.append(_dropout_boundaries(result))
    return out
