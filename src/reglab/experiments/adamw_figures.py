"""Figures of the adamw experiment: accuracy grids and the shrinkage scatter."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure as MplFigure

from reglab.experiments.adamw import LABELS, PENALTIES, best_strength_index, movement
from reglab.experiments.base import Figure, Result
from reglab.experiments.plots import named_seed


def figures(result: Result) -> list[Figure]:
    """Heatmaps side by side per dataset, and the shrinkage scatter."""
    cfg = result.config
    out = []
    for dname in ("moons", "mnist"):
        if f"{dname}_coupled_acc" not in result.arrays:
            continue
        fig = MplFigure(figsize=(11, 4.4), layout="constrained")
        axes = fig.subplots(1, 2)
        means = [result[f"{dname}_{p}_acc"].mean(0) for p in PENALTIES]
        lo, hi = min(m.min() for m in means), max(m.max() for m in means)
        for ax, penalty in zip(axes, PENALTIES, strict=True):
            acc = result[f"{dname}_{penalty}_acc"].mean(0)  # (lrs, strengths)
            strengths = cfg[
                "l2_strengths" if penalty == "coupled" else "decay_strengths"
            ]
            im = ax.imshow(
                acc, origin="lower", cmap="viridis", aspect="auto", vmin=lo, vmax=hi
            )  # one colour scale for both grids of a dataset
            best = best_strength_index(acc)
            ax.plot(best, np.arange(len(best)), "w*-", ms=10)  # the caption says what
            ax.set_xticks(range(len(strengths)), [f"{s:g}" for s in strengths])
            ax.set_yticks(
                range(len(cfg["learning_rates"])),
                [f"{v:g}" for v in cfg["learning_rates"]],
            )
            ax.set_xlabel(
                "strength λ" + (" (decoupled)" if penalty != "coupled" else "")
            )
            ax.set_ylabel("learning rate η₀")
            ax.set_title(f"{LABELS[penalty]}: moves {movement(acc):.1f} steps")
            fig.colorbar(im, ax=ax, label="clean test accuracy")
        title = {"moons": "two moons", "mnist": "MNIST"}[dname]
        fig.suptitle(f"{title}: clean test accuracy over learning rate × strength")
        out.append(
            Figure(
                f"fig_adamw_grid_{dname}",
                fig,
                f"Beyond the post: {title}, each cell one member of a single vmapped"
                f" program, the mean over {result[f'{dname}_coupled_acc'].shape[0]}"
                " seed(s) of its clean test accuracy, both grids on one colour"
                " scale. Stars mark, per learning rate,"
                " the strengths within 1 point of that row's best: a diagonal trail"
                " means the best strength depends on the learning rate; a vertical"
                " one means the two can be tuned apart.",
            )
        )
    if "coupled_nu_W2" in result.arrays:
        out.append(_shrinkage_figure(result))
    return out


def _shrinkage_figure(result: Result) -> Figure:
    cfg = result.config
    i_lr = len(cfg["learning_rates"]) // 2
    lr0 = cfg["learning_rates"][i_lr]
    fig = MplFigure(figsize=(6.5, 4.6), layout="constrained")
    ax = fig.subplots()
    for penalty, color in zip(PENALTIES, ("tab:red", "tab:blue"), strict=True):
        key = "l2_strengths" if penalty == "coupled" else "decay_strengths"
        j = len(cfg[key]) // 2
        lam = cfg[key][j]
        steps = float(result[f"{penalty}_steps"])
        lr_t = lr0 / (1 + steps / cfg["tau"]) ** cfg["alpha"]
        rms = np.sqrt(result[f"{penalty}_nu_W2"][0, i_lr, j])  # (64*64,)
        if penalty == "coupled":
            # the L2 gradient is divided by sqrt(v): lr_t lambda / (sqrt(v) + eps)
            pull = lr_t * lam / (rms + 1e-8)
        else:
            pull = np.full_like(rms, lr_t * lam)  # lr_t lambda for every weight
        ax.loglog(rms, pull, ".", ms=3, alpha=0.5, color=color,
                  label=f"{LABELS[penalty]}, λ={lam:g}")  # fmt: skip
    ax.set_xlabel("gradient RMS √v of each hidden-to-hidden weight")
    ax.set_ylabel("decay rate per step, linearized (η_t λ / √v or η_t λ)")
    ax.set_title(f"effective shrinkage per weight (η₀={lr0:g}, moons)")
    ax.legend(fontsize=8)
    return Figure(
        "fig_adamw_shrinkage",
        fig,
        "Beyond the post: how hard each weight of W2 is pulled toward zero per step at"
        " the end of"
        " training (the penalty's share of the update divided by the weight, to first"
        " order). AdamW pulls every weight by the same fraction; Adam + L2 divides"
        " the pull by the weight's gradient RMS, so weights with small gradients are"
        " decayed hardest and those with large gradients hardly at all."
        + named_seed(cfg["seeds"]),
    )
