"""Figures 2, 3 and 4 of section 2.1, the sparsity sweep and the sliders.

Drawn from a saved weight-decay Result; ``weight_decay.figures`` and ``.sliders`` hand
over to this module, so training never imports matplotlib.
"""

from __future__ import annotations

import math

import matplotlib.figure
import numpy as np
from matplotlib.colors import SymLogNorm

from reglab.experiments.base import Figure, Result, Slider
from reglab.experiments.plots import band, named_seed, plot_probability, seed_note
from reglab.experiments.weight_decay import (
    SWEEPS,
    dead_unit_fraction,
    near_zero_fraction,
    swept_index,
)

SYMBOL = {"l2": r"$\lambda_2$", "l1": r"$\lambda_1$", "prox": r"$\lambda_1$"}
WORD = {"l2": "λ₂", "l1": "λ₁", "prox": "λ₁"}  # captions are HTML: no mathtext there
LABEL = {"l2": "L2", "l1": "L1 (subgradient)", "prox": "L1 (proximal)"}
COLOR = {"l2": "tab:blue", "l1": "tab:orange", "prox": "tab:green"}


def _boundary_figure(result: Result, sweep: str) -> Figure:
    a = result.arrays
    strengths, p = a[f"{sweep}_strengths"], a[f"{sweep}_prob"][0]  # seed 0: (C, R, R)
    test_acc = a[f"{sweep}_test_acc"]  # (S, C)
    n, n_seeds = len(strengths), test_acc.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = matplotlib.figure.Figure(
        figsize=(3.2 * cols + 0.8, 3.1 * rows), layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False)
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.set_axis_off()
            continue
        cs = plot_probability(
            ax, a["grid_x"], a["grid_y"], p[c], a["x_train"], a["y_train"], a["flipped"]
        )
        mean = (
            f", mean of {n_seeds}: {test_acc[:, c].mean():.3f}" if n_seeds > 1 else ""
        )
        ax.set_title(
            f"{SYMBOL[sweep]} = {strengths[c]:g}\ntest acc {test_acc[0, c]:.3f}{mean}",
            fontsize=9,
        )
    fig.colorbar(cs, ax=axes, label="P(class 1)", shrink=0.8)
    number = {"l2": 2, "l1": 3}[sweep]
    caption = (
        f"Figure {number}: decision probability P(class 1) of the 2-64-64-2 tanh MLP"
        f" after SGD with coupled {sweep.upper()} strength {WORD[sweep]}; black line:"
        " P = 0.5; dots: training labels (red = 1, blue = 0) after 10% flips; crosses"
        " mark the flipped points. Titles give the clean test accuracy of the seed"
        " shown and the seed mean." + named_seed(a["seeds"])
    )
    return Figure(f"fig{number}_{sweep}_boundaries", fig, caption)


def _hidden_weights_figure(result: Result) -> Figure:
    """Figure 4: W2 of three models, each on its own colour scale; |w| histograms."""
    a, rel = result.arrays, result.config["near_zero"]
    i2, i1 = swept_index(result, "l2", "l2_mid"), swept_index(result, "l1", "l1_mid")
    i0 = int(np.argmin(a["l2_strengths"]))
    panels = [
        ("unregularized", a["l2_W2"][0, i0], "0.4"),
        (f"L2, {SYMBOL['l2']} = {a['l2_strengths'][i2]:g}", a["l2_W2"][0, i2], "l2"),
        (f"L1, {SYMBOL['l1']} = {a['l1_strengths'][i1]:g}", a["l1_W2"][0, i1], "l1"),
    ]
    fig = matplotlib.figure.Figure(figsize=(13, 7.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.45, 1])
    mats, hists = top.subplots(1, 3), bottom.subplots(1, 3, sharex=True, sharey=True)
    tiny = min(float(np.abs(W[W != 0]).min()) for _, W, _ in panels)
    biggest = max(float(np.abs(W).max()) for _, W, _ in panels)
    bins = np.logspace(math.floor(math.log10(tiny)), math.log10(biggest) + 0.05, 61)
    for ax, hx, (title, W, key) in zip(mats, hists, panels, strict=True):
        thr = max(rel * float(W.std()), 1e-12)  # the claims' near-zero threshold
        vmax = max(float(np.abs(W).max()), 10 * thr)  # each matrix on its own scale
        # log colours above thr, white below: near zero by the claims' measure is
        # white, and one large weight cannot wash the rest of the matrix out
        norm = SymLogNorm(linthresh=thr, linscale=0.3, vmin=-vmax, vmax=vmax)
        im = ax.imshow(W, cmap="RdBu_r", norm=norm, interpolation="nearest")
        top.colorbar(
            im, ax=ax, shrink=0.85, label="weight (symmetric log)",
            ticks=_decade_ticks(thr, vmax),
        )  # fmt: skip
        frac = float(near_zero_fraction(W, rel))
        ax.set_title(f"{title}\n{frac:.1%} of |w| < {rel:g} × std", fontsize=10)
        ax.set_xlabel("hidden layer 2 unit")
        ax.set_ylabel("hidden layer 1 unit")
        hx.hist(np.abs(W).ravel(), bins=bins, color=COLOR.get(key, key), alpha=0.8)
        hx.axvline(thr, color="k", ls="--", lw=1, label=f"{rel:g} × std")
        hx.set_xscale("log")
        hx.set_yscale("log")  # the few large weights of a sparse matrix stay visible
        hx.set_xlabel("|w| (log scale)")
        hx.legend(fontsize=8, loc="upper left")
    hists[0].set_ylabel("entries of W2 (log scale)")
    caption = (
        "Figure 4: hidden-to-hidden weights W2 (64 x 64, rows: layer-1 units, columns:"
        " layer-2 units) of the unregularized model and of mid-sweep L2 and L1 models,"
        " each matrix on its own symmetric-log colour scale that is white below"
        f" {rel:g} × the matrix's standard deviation (the near-zero threshold of the"
        " titles and the claims); below, the histogram of |w|, both axes logarithmic,"
        " the dashed line at that threshold." + named_seed(a["seeds"])
    )
    return Figure("fig4_hidden_weights", fig, caption)


def _decade_ticks(thr: float, vmax: float, per_side: int = 3) -> list[float]:
    """Return +-10^k ticks from half a decade above thr to vmax, at most per_side."""
    lo, hi = math.ceil(math.log10(thr) + 0.5), math.floor(math.log10(vmax))
    step = max(1, math.ceil((hi - lo + 1) / per_side))
    decades = [10.0**k for k in range(hi, lo - 1, -step)]  # from the top down
    return [-d for d in decades] + decades[::-1]


def _spaced(values: np.ndarray, gap: float) -> list[float]:
    """Return values in order, skipping any closer than gap to the last one kept."""
    kept = [float(values[0])]
    for v in values[1:]:
        if v - kept[-1] >= gap:
            kept.append(float(v))
    return kept


def _sparsity_figure(result: Result) -> Figure:
    a, rel = result.arrays, result.config["near_zero"]
    sweeps = [s for s in SWEEPS if f"{s}_W2" in a]
    fig = matplotlib.figure.Figure(figsize=(11, 4.8), layout="constrained")
    ax2, ax1 = fig.subplots(1, 2, sharey=True)
    for sweep in sweeps:
        ax = ax2 if sweep == "l2" else ax1
        s, W = a[f"{sweep}_strengths"], a[f"{sweep}_W2"]  # (C,), (S, C, H, H)
        color, label = COLOR[sweep], LABEL[sweep]
        near = near_zero_fraction(W, rel)  # (S, C)
        band(ax, s, near, color=color, label=f"{label}: near zero", marker="o", ms=3)
        dead = dead_unit_fraction(W, rel)
        band(ax, s, dead, color=color, label=f"{label}: dead units", ls="-.",
             marker="s", ms=3)  # fmt: skip
        if sweep == "prox":
            exact = (W == 0).mean(axis=(-2, -1))
            band(ax, s, exact, color="k", label=f"{label}: w = 0", ls=":", marker="x")
    for ax, sweep in ((ax2, "l2"), (ax1, "l1")):
        s = a[f"{sweep}_strengths"]
        ticks = _spaced(s, (s.max() - s.min()) / 6)  # labels apart: none collide
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.set_xlabel(f"{sweep.upper()} strength {SYMBOL[sweep]}")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax2.set_ylabel("fraction of W2")
    caption = (
        "Beyond the post: sparsity of W2 against strength. Near zero: entries with"
        f" |w| < {rel:g} × the standard deviation of their own matrix; dead units: a"
        " layer-1 unit whose W2 row, or a layer-2 unit whose W2 column, is entirely"
        " near zero; proximal L1 (soft-thresholding, a second program) also shows"
        " exact zeros." + seed_note(a["l2_W2"].shape[0])
    )
    return Figure("fig_l1_sparsity", fig, caption)


def figures(result: Result) -> list[Figure]:
    """Return figures 2, 3 and 4 of the post and the sparsity-vs-strength figure."""
    return [
        _boundary_figure(result, "l2"),
        _boundary_figure(result, "l1"),
        _hidden_weights_figure(result),
        _sparsity_figure(result),
    ]


def _strength_panel(result: Result, sweep: str, c: int, seed: int = 0):
    """One member: its decision probability and its W2, side by side."""
    a, rel = result.arrays, result.config["near_zero"]
    fig = matplotlib.figure.Figure(figsize=(7.2, 3.2), layout="constrained")
    ax_p, ax_w = fig.subplots(1, 2)
    plot_probability(
        ax_p, a["grid_x"], a["grid_y"], a[f"{sweep}_prob"][seed, c], a["x_train"],
        a["y_train"], a["flipped"],
    )  # fmt: skip
    acc = a[f"{sweep}_test_acc"][seed, c]
    ax_p.set_title(f"boundary (clean test acc {acc:.3f})", fontsize=9)
    W = a[f"{sweep}_W2"][seed, c]
    vmax = float(np.abs(a[f"{sweep}_W2"][seed]).max())  # one scale along the slider
    # symmetric log: shrunken L2 weights stay visible, white below vmax / 1000
    norm = SymLogNorm(linthresh=1e-3 * vmax, linscale=0.3, vmin=-vmax, vmax=vmax)
    ax_w.imshow(W, cmap="RdBu_r", norm=norm, interpolation="nearest")
    frac = float(near_zero_fraction(W, rel))
    ax_w.set_title(f"W2: {frac:.1%} of |w| < {rel:g} × std", fontsize=9)
    ax_w.set_xticks([])
    ax_w.set_yticks([])
    return fig


def sliders(result: Result) -> list[Slider]:
    """One panel per strength of each sweep (and per seed when there are several)."""
    a, out = result.arrays, []
    names = {"l2": "L2", "l1": "L1", "prox": "proximal L1"}
    for sweep, label in names.items():
        if f"{sweep}_prob" not in a:
            continue
        strengths = a[f"{sweep}_strengths"]
        out.append(
            Slider(
                f"slider_{sweep}",
                f"{label} strength {WORD[sweep]}",
                [f"{v:g}" for v in strengths],
                [_strength_panel(result, sweep, c) for c in range(len(strengths))],
                f"Move through the {label} sweep: the decision boundary of the model"
                " trained at that strength and its hidden-to-hidden weights W2, on one"
                " symmetric-log colour scale along the sweep, white below a thousandth"
                " of its largest weight." + named_seed(a["seeds"]),
            )
        )
    n_seeds = a["l2_prob"].shape[0] if "l2_prob" in a else 1
    if n_seeds > 1:
        i = swept_index(result, "l2", "l2_moderate")
        out.append(
            Slider(
                "slider_seed",
                "seed",
                [str(int(s)) for s in a["seeds"]],
                [_strength_panel(result, "l2", i, s) for s in range(n_seeds)],
                f"The L2 model at λ₂ = {a['l2_strengths'][i]:g} for each seed: same"
                " data, different initial weights and batch order.",
            )
        )
    return out
