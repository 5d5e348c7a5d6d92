"""Figures 7 and 8 of the post, temperature scaling against smoothing, the ε slider.

Plots only: every number comes from a saved label-smoothing Result. matplotlib is
imported inside the functions, so importing the experiment never pulls it in.
"""

from __future__ import annotations

import numpy as np

from reglab.experiments.base import Figure, Result, Slider, mean_interval
from reglab.experiments.label_smoothing import crossing_smoothing


def _seed_note(result: Result) -> str:
    n = len(result["seeds"])
    if n < 2:
        return " One seed: no error bars (run --seeds 3 for them)."
    return (
        f" Points: mean over {n} seeds, bin by bin; bars: 95% t interval of that mean."
    )


def _reliability(ax, conf, acc, label, color, **style) -> None:
    """Plot seed-mean accuracy against confidence per bin, (S, M) each."""
    x, y = np.nanmean(conf, 0), np.nanmean(acc, 0)
    if conf.shape[0] > 1:
        bounds = np.array([mean_interval(a[np.isfinite(a)])[1:] for a in acc.T])
        # a mean of equal values can land an ulp outside them: clip the bar lengths
        below = np.maximum(y - bounds[:, 0], 0.0)
        above = np.maximum(bounds[:, 1] - y, 0.0)
        ax.errorbar(
            x, y, yerr=[below, above], color=color, lw=0, elinewidth=0.8, alpha=0.6
        )
    ax.plot(x, y, marker="o", ms=3, color=color, label=label, **style)


def _diagonal(ax, lo: float) -> None:
    ax.plot([lo, 1], [lo, 1], color="0.5", ls="--", lw=1, label="calibrated")
    ax.set_xlabel("mean confidence in bin")
    ax.set_ylabel("accuracy in bin")
    ax.grid(alpha=0.3)


def _fig7(result: Result) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    threshold = float(result.config["confident"])
    fig = MplFigure(figsize=(11, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    shades = ("C0", "C9", "C4", "C1", "C2")
    for s, seed in enumerate(result["seeds"]):
        conf = result["wrong_confidence"][s]
        conf = conf[np.isfinite(conf)]
        cdf = np.arange(1, conf.size + 1) / max(conf.size, 1)
        left.step(conf, cdf, where="post", color=shades[s % len(shades)], alpha=0.9,
                  label=f"seed {seed}")  # fmt: skip
    left.axvline(threshold, color="C3", ls=":", lw=1)
    above = float(np.mean(result["fraction_confident_wrong"][:, 0]))
    left.text(
        threshold, 0.9, f"{above:.0%} of wrong answers\nhave confidence > "
        f"{threshold:g} ", color="C3", ha="right",
    )  # fmt: skip
    left.set_xlabel("confidence of a wrong test prediction")
    left.set_ylabel("cumulative fraction of wrong predictions")
    left.set_xlim(0, 1.01)
    left.set_ylim(0, 1.01)
    left.grid(alpha=0.3)
    left.legend(loc="upper left")
    conf, acc = result["test_rel_conf"][:, 0], result["test_rel_acc"][:, 0]
    _reliability(right, conf, acc, "ε = 0 (no smoothing)", "C0")
    _diagonal(right, min(np.nanmin(conf), np.nanmin(acc)))
    right.legend(loc="upper left")
    n_bins = conf.shape[-1]
    acc0, ece0 = result["test_accuracy"][:, 0].mean(), result["test_ece_mass"][:, 0]
    caption = (
        f"Figure 7: MNIST, {result.config['n_train']:,} training images, no label"
        f" smoothing, scored on {result.config['n_test']:,} test images (accuracy"
        f" {acc0:.4f}). Left: cumulative distribution of the confidence (the largest"
        " predicted probability) over the wrong predictions, one curve per seed."
        f" Right: mean accuracy against mean confidence in {n_bins} equal-mass"
        " confidence bins; points below the dashed diagonal are overconfident"
        f" (equal-mass ECE {ece0.mean():.4f})." + _seed_note(result)
    )
    return Figure("fig7_calibration", fig, caption)


def _fig8(result: Result) -> Figure:
    import matplotlib as mpl
    from matplotlib.figure import Figure as MplFigure

    eps = result["smoothings"]
    fig = MplFigure(figsize=(12, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    colors = mpl.colormaps["viridis"](np.linspace(0, 0.95, len(eps)))
    for c, e in enumerate(eps):
        _reliability(
            left, result["test_rel_conf"][:, c], result["test_rel_acc"][:, c],
            f"ε = {e:g}", colors[c], lw=1.2,
        )  # fmt: skip
    _diagonal(left, min(np.nanmin(result["test_rel_conf"]), 0.5))
    # the curves run along the diagonal: the key goes beside the panel, not on it
    left.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5),
                title="label smoothing")  # fmt: skip
    ece = result["test_ece_mass"].mean(0)  # (C,)
    low, high = result["test_ece_low"].mean(0), result["test_ece_high"].mean(0)
    # ECE's bootstrap is biased upward, so the percentile interval need not contain
    # the estimate: draw it as a segment, not as error bars around the point.
    right.vlines(eps, low, high, color="C0", alpha=0.6, lw=3)
    right.plot(
        eps, ece, marker="o", ms=4, color="C0",
        label=f"equal-mass ECE; bars: {result.config['n_boot']}-resample"
        " bootstrap 95% interval",
    )  # fmt: skip
    right.plot(
        eps, result["test_ece_width"].mean(0), marker="s", ms=3, ls="--",
        color="C2", label="equal-width ECE",
    )  # fmt: skip
    best = int(np.argmin(ece))
    right.plot(
        eps[best], ece[best], marker="*", ms=16, color="C3", ls="none",
        label=f"lowest at ε = {eps[best]:g}",
    )  # fmt: skip
    gap = result["test_mean_confidence"] - result["test_accuracy"]  # (S, C)
    cross = crossing_smoothing(eps, gap)  # (S,)
    if np.isfinite(cross).any():
        at = float(np.nanmean(cross))
        right.axvline(at, color="0.4", ls=":", lw=1.2,
                      label=f"confidence = accuracy at ε ≈ {at:.3g}")  # fmt: skip
    right.set_xscale("symlog", linthresh=float(eps[1]))
    # label every other swept value: 0.005 ... 0.02 sit too close on this axis
    right.set_xticks(eps, [f"{e:g}" if c % 2 == 0 or c == len(eps) - 1 else ""
                           for c, e in enumerate(eps)])  # fmt: skip
    right.minorticks_off()
    right.set_xlabel("label smoothing ε (symlog axis; ticks at the swept values)")
    right.set_ylabel("ECE on test")
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="upper left")
    caption = (
        "Figure 8: the label-smoothing sweep, one model per ε trained together"
        " (shared initial weights and batch order). Left: reliability curves over"
        f" {result['test_rel_conf'].shape[-1]} equal-mass bins, one colour per ε;"
        " above the diagonal is underconfident. Right: expected calibration error"
        " against ε; the star marks the lowest equal-mass ECE"
        f" ({ece[best]:.4f} at ε = {eps[best]:g}; ε = 0 gives {ece[0]:.4f}), bars"
        " are bootstrap intervals over the test points (seed means of their ends),"
        " the dotted line is where mean confidence equals accuracy. ε is the post's"
        " convention (1 − ε on the label, ε/(K − 1) elsewhere); the same targets in"
        " the (1 − e)·one_hot + e/K convention have e = εK/(K − 1)."
        + _seed_note(result)
    )
    return Figure("fig8_smoothing_sweep", fig, caption)


def _fig_temperature(result: Result) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    eps = result["smoothings"]
    fig = MplFigure(figsize=(13, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
    choice = result["val_choice"]  # (S,)
    seeds = np.arange(len(choice))
    T = result["temperature"][:, 0]
    picked = ", ".join(sorted({f"{eps[c]:g}" for c in choice}))
    curves = (
        ("test_rel", 0, "ε = 0", "C0"),
        ("ts_rel", 0, f"ε = 0, temperature T = {T.mean():.2f}", "C1"),
        ("test_rel", choice, f"ε = {picked} (lowest validation ECE)", "C2"),
    )
    for prefix, col, label, color in curves:
        conf = result[f"{prefix}_conf"][seeds, col]
        _reliability(left, conf, result[f"{prefix}_acc"][seeds, col], label, color)
    _diagonal(left, min(np.nanmin(result["test_rel_conf"][:, 0]), 0.5))
    left.legend(loc="upper left", fontsize=9)
    table = result["table"].mean(0)  # (rows, columns)
    right.axis("off")
    cells = [[f"{v:.4f}" for v in row] for row in table]
    rows = [r.replace("eps", "ε") for r in result["table_rows"]]
    grid = right.table(
        cellText=cells,
        rowLabels=rows,
        colLabels=list(result["table_columns"]),
        loc="center",
    )
    grid.auto_set_font_size(False)
    grid.set_fontsize(9)
    grid.scale(1, 1.8)
    right.set_title(
        "test-set scores, seed mean (lower is better, except accuracy)", y=0.8
    )
    caption = (
        "Beyond the post: temperature scaling against label smoothing. T is fitted"
        f" by NLL on {result.config['n_val']:,} bundled training images the models"
        " never trained on; the smoothing ε is the one with the lowest equal-mass"
        " ECE on the same images. Left: reliability curves on the test images."
        " Right: test scores; the last row picks ε by test ECE, as the sweep of"
        " Figure 8 does, and is optimistic for that reason." + _seed_note(result)
    )
    return Figure("fig_temperature_vs_smoothing", fig, caption)


def figures(result: Result) -> list[Figure]:
    """Return Figures 7 and 8, and temperature vs smoothing when it was measured."""
    out = [_fig7(result), _fig8(result)]
    if "table" in result.arrays:
        out.append(_fig_temperature(result))
    return out


def sliders(result: Result) -> list[Slider]:
    """Return one reliability diagram per ε, on fixed axes: the sweep as a slider."""
    from matplotlib.figure import Figure as MplFigure

    eps, panels = result["smoothings"], []
    lo = min(float(np.nanmin(result["test_rel_conf"])), 0.5)
    for c, e in enumerate(eps):
        fig = MplFigure(figsize=(4.6, 4.2), layout="constrained")
        ax = fig.subplots()
        _reliability(
            ax, result["test_rel_conf"][:, c], result["test_rel_acc"][:, c],
            f"ε = {e:g}", "C0", lw=1.5,
        )  # fmt: skip
        _diagonal(ax, lo)
        ece = result["test_ece_mass"][:, c].mean()
        acc = result["test_accuracy"][:, c].mean()
        ax.set_title(f"ε = {e:g}: ECE {ece:.4f}, accuracy {acc:.4f}", fontsize=10)
        ax.set_xlim(lo, 1.0)
        ax.set_ylim(lo, 1.0)
        panels.append(fig)
    return [
        Slider(
            "slider_smoothing",
            "label smoothing ε",
            [f"{e:g}" for e in eps],
            panels,
            "Mean confidence against mean accuracy over equal-mass bins of the test"
            " set for each ε (seed mean): below the diagonal is overconfident, above"
            " it underconfident.",
        )
    ]
