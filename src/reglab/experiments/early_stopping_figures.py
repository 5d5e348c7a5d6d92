"""Figures 9 and 10 of the post, the user run's figure and the training-time slider.

Plots only: every number comes from a saved early-stopping Result. matplotlib is
imported inside the functions, so importing the experiment never pulls it in.
"""

from __future__ import annotations

import numpy as np

from reglab.experiments.base import Figure, Result, Slider
from reglab.experiments.early_stopping_moments import (
    flattening_epochs,
    shift_epochs,
    test_optimum,
)
from reglab.experiments.plots import band, seed_note

TIME_COLORS = "coolwarm_r"  # early = red, late = blue, as in the post's Figure 10
DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}


def _epoch_axis(epochs) -> np.ndarray:
    """Return epochs as floats with epoch 0 drawn at 0.5, so a log axis can show it."""
    epochs = np.asarray(epochs)
    return np.where(epochs == 0, 0.5, epochs).astype(float)


def _geomean(epochs) -> float:
    """Return the geometric mean of epochs (they sit on a log axis)."""
    return float(np.exp(np.mean(np.log(np.maximum(epochs, 0.5)))))


def _loss_panel(ax, result: Result) -> None:
    t = _epoch_axis(result["record_epochs"])
    band(ax, t, result["train_loss"], color="tab:blue", label="train loss")
    band(ax, t, result["test_loss"], color="tab:orange", label="test loss")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (log scale; epoch 0 drawn at 0.5)")
    ax.set_ylabel("cross-entropy loss")
    ax.grid(alpha=0.3)


def _vline(ax, epoch: float, label: str, **style) -> None:
    ax.axvline(max(float(epoch), 0.5), label=label, **style)


def _outside_legend(fig, ax, ncols: int = 2) -> None:
    """Put ax's legend under the figure, where it covers no curve."""
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=ncols)


def _dataset(cfg) -> str:
    return DATASET_NAMES.get(cfg["dataset"], cfg["dataset"])


def _fig9(result: Result) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    cfg, epochs = result.config, result["record_epochs"]
    mean = result["test_loss"].mean(axis=0)  # (R,)
    i_opt = int(np.argmin(mean))
    fig = MplFigure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    _loss_panel(ax, result)
    _vline(ax, epochs[i_opt], f"lowest mean test loss (epoch {epochs[i_opt]})",
           color="grey", ls="--")  # fmt: skip
    hidden = " and ".join(str(w) for w in cfg["widths"][1:-1])
    ax.set_title(
        f"Train and test loss: {cfg['n_train']:,} {_dataset(cfg)} images,"
        f" hidden layers of {hidden}",
        fontsize=10,
    )
    _outside_legend(fig, ax, ncols=3)
    after = (
        f"rises to {mean[-1]:.3f} by epoch {epochs[-1]}"
        if i_opt < len(epochs) - 1
        else "is still falling at the last epoch"
    )
    caption = (
        f"Figure 9: train and test loss over {cfg['epochs']} epochs of SGD (log epoch"
        f" axis; test loss on {cfg['n_test']:,} test images). The mean test loss is"
        f" lowest ({mean[i_opt]:.3f}) at epoch {epochs[i_opt]} (dashed grey) and"
        f" {after}, while the train loss keeps falling."
        + seed_note(len(result["test_loss"]))
    )
    return Figure("fig9_early_stopping", fig, caption)


def _fig10(result: Result) -> Figure:
    import matplotlib as mpl
    from matplotlib.figure import Figure as MplFigure

    cfg = result.config
    epochs, snaps = result["record_epochs"], result["snapshot_epochs"]
    energy = result["cumulative_energy"]  # (S, n_snap, D)
    cum = energy.mean(axis=0)  # (n_snap, D)
    D = cum.shape[-1]
    k = np.arange(1, D + 1)
    cmap = mpl.colormaps[TIME_COLORS]
    norm = mpl.colors.LogNorm(vmin=max(snaps[1], 1), vmax=snaps[-1])
    fig = MplFigure(figsize=(12, 5), layout="constrained")
    left, right = fig.subplots(1, 2)
    for j in range(1, len(snaps)):  # epoch 0 has ΔW = 0: nothing to show
        left.plot(k, cum[j], color=cmap(norm(snaps[j])), lw=1.4)
    left.plot(k, result["isotropic_energy"], color="grey", ls="--",
              label="isotropic update (k / D)")  # fmt: skip
    left.set_xscale("log")
    left.set_xlim(1, D)
    left.set_xlabel("principal component rank k (1 = largest variance)")
    left.set_ylabel(r"cumulative energy $E_{\leq k}$ of $\Delta W_1$")
    left.set_ylim(0, 1.02)
    left.grid(alpha=0.3)
    left.legend(loc="lower right")
    bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=left)
    bar.set_label("epoch of the snapshot")

    _loss_panel(right, result)
    at = np.searchsorted(epochs, snaps)  # snapshot epochs are record epochs
    t, colors = _epoch_axis(snaps[1:]), cmap(norm(snaps[1:]))
    for name, marker in (("train_loss", "o"), ("test_loss", "s")):
        values = result[name].mean(axis=0)[at][1:]
        right.scatter(t, values, c=colors, marker=marker, edgecolor="k", zorder=3)
    k_top = cfg["energy_rank"]
    top = energy[..., k_top - 1].astype(float)  # (S, n_snap)
    shift = _geomean(shift_epochs(snaps, top))
    flat = _geomean(flattening_epochs(epochs, result["test_loss"]))
    _vline(right, shift, f"energy shift (epoch {shift:.0f})", color="purple", ls="-.")
    _vline(right, flat, f"test loss flattened (epoch {flat:.0f})", color="k", ls=":")
    _outside_legend(fig, right, ncols=2)
    caption = (
        "Figure 10: left, the fraction E≤k of |W₁(t) − W₁(0)|² lying along the top k"
        " principal components of the training inputs, one curve per snapshot epoch"
        " (red early, blue late); grey: what an isotropic update gives. Right: the"
        " loss curves, snapshot epochs marked in the same colours (circles train,"
        f" squares test). Dash-dot: when E≤{k_top} has made half of its fall from"
        " its peak (the energy moving to low-variance components); dotted: when the"
        " test loss has made 90% of its fall to its minimum (the flattening); both"
        " are geometric means over seeds, and the claim"
        " energy_shift_when_test_loss_flattens compares them seed by seed."
        + seed_note(len(energy))
    )
    return Figure("fig10_spectral", fig, caption)


def _fig_user(result: Result) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    cfg, epochs = result.config, result["record_epochs"]
    n_fit = cfg["n_train"] - cfg["n_val"]
    own = result["own_test_loss"]  # (S, R)
    own_epoch = epochs[test_optimum(own)]  # (S,)
    fig = MplFigure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    val_label = f"validation loss ({cfg['n_val']} held out)"
    band(ax, _epoch_axis(result["val_epochs"]), result["user_val_loss"],
         color="tab:green", label=val_label)  # fmt: skip
    own_label = f"test loss, same {n_fit} images, never stopped"
    band(ax, _epoch_axis(epochs), own, color="tab:orange", label=own_label)
    best = _geomean(result["user_best_epoch"])
    stop = _geomean(result["user_stopped_epoch"])
    opt = _geomean(own_epoch)
    # drawn wide and pale: the best validation epoch often falls right on it
    _vline(ax, opt, f"test minimum (epoch {opt:.0f})", color="0.6", ls="-", lw=4,
           alpha=0.6)  # fmt: skip
    _vline(ax, best, f"best validation epoch ({best:.0f})", color="tab:green", ls=":")
    _vline(ax, stop, f"training stopped ({stop:.0f})", color="tab:red", ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (log scale; epoch 0 drawn at 0.5)")
    ax.set_ylabel("cross-entropy loss")
    ax.grid(alpha=0.3)
    ax.set_title("Early stopping on a validation split", fontsize=10)
    _outside_legend(fig, ax, ncols=2)
    stopped = (
        f"training stopped at epoch {stop:.0f} after {cfg['patience']} epochs without"
        " a new validation minimum,"
        if stop < cfg["epochs"]
        else f"patience ({cfg['patience']} epochs) never ran out,"
    )
    caption = (
        f"Beyond the post: early stopping as a user runs it. {n_fit} images trained"
        f" on, {cfg['n_val']} held out; {stopped} and the best epoch ({best:.0f}) was"
        f" restored. Its test loss is {result['user_test_loss'].mean():.3f}, against"
        f" {own[np.arange(len(own)), test_optimum(own)].mean():.3f} at the minimum of"
        " the test curve of the same images, seeds and batch order trained without"
        f" stopping. Vertical lines: geometric means over seeds." + seed_note(len(own))
    )
    return Figure("fig_early_stopping_user", fig, caption)


def figures(result: Result) -> list[Figure]:
    """Return Figure 9 (losses), Figure 10 (spectral energy) and the user run's."""
    return [_fig9(result), _fig10(result), _fig_user(result)]


def sliders(result: Result) -> list[Slider]:
    """Return training time as a slider: energy and loss curves at each snapshot."""
    from matplotlib.figure import Figure as MplFigure

    epochs, snaps = result["record_epochs"], result["snapshot_epochs"]
    cum = result["cumulative_energy"].mean(axis=0)  # (n_snap, D)
    k = np.arange(1, cum.shape[-1] + 1)
    at = np.searchsorted(epochs, snaps)
    panels = []
    for j in range(1, len(snaps)):  # epoch 0 has ΔW = 0
        fig = MplFigure(figsize=(9, 3.8), layout="constrained")
        left, right = fig.subplots(1, 2)
        left.plot(k, result["isotropic_energy"], color="grey", ls="--",
                  label="isotropic (k / D)")  # fmt: skip
        for i in range(1, j):  # earlier times, faint, for reference
            left.plot(k, cum[i], color="0.75", lw=0.8)
        left.plot(k, cum[j], color="tab:red", lw=2, label=f"epoch {snaps[j]}")
        left.set_xscale("log")
        left.set_ylim(0, 1.02)
        left.set_xlabel("principal component rank k")
        left.set_ylabel(r"$E_{\leq k}$")
        left.legend(fontsize="small", loc="lower right")
        _loss_panel(right, result)
        right.axvline(_epoch_axis(snaps[j : j + 1])[0], color="tab:red", lw=1.5)
        right.scatter(
            _epoch_axis(snaps[j : j + 1]),
            result["test_loss"].mean(axis=0)[at][j : j + 1],
            color="tab:red", zorder=3,
        )  # fmt: skip
        right.legend(fontsize="small", loc="lower left")
        panels.append(fig)
    return [
        Slider(
            "slider_time",
            "training time (epoch)",
            [str(int(e)) for e in snaps[1:]],
            panels,
            "Move through training: where the first layer's weight change lies among"
            " the principal components of the inputs (left; earlier times in grey),"
            " and the same moment on the loss curves (right).",
        )
    ]
