"""Plotting helpers shared by the experiments' figures: seed bands and seed notes.

Figures show seed means with a band over seeds; boundary panels show one seed, named.
Only figure code imports this module (it imports matplotlib's pieces lazily through the
axes it is handed), so training never pulls in plotting.
"""

from __future__ import annotations

import numpy as np

from reglab.experiments.base import mean_interval


def band(ax, x, curves, *, color, label=None, alpha=0.2, **line) -> None:
    """Plot the seed mean of curves (S, T) over x with a 95% t band when S > 1.

    NaN entries (a curve that ended early) are left out of the mean and the band.
    """
    curves = np.atleast_2d(np.asarray(curves, np.float64))  # (S, T)
    x = np.asarray(x)
    seen = ~np.isnan(curves).all(axis=0)  # (T,)
    x, curves = x[seen], curves[:, seen]
    mean = np.nanmean(curves, axis=0)
    ax.plot(x, mean, color=color, label=label, **line)
    n = np.sum(~np.isnan(curves), axis=0)  # (T,) seeds present at each point
    if curves.shape[0] > 1 and (n > 1).any():
        lo, hi = np.empty_like(mean), np.empty_like(mean)
        for t in range(mean.size):
            _, lo[t], hi[t] = mean_interval(curves[~np.isnan(curves[:, t]), t])
        ax.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0)


def seed_note(n_seeds: int) -> str:
    """Return the caption sentence that says what the curves and bands are."""
    if n_seeds < 2:
        return " One seed: no band (run --seeds 3 for one)."
    return f" Curves: mean over {n_seeds} seeds; band: 95% t interval of the mean."


def named_seed(seeds, s: int = 0) -> str:
    """Return the caption phrase naming the seed a boundary panel shows."""
    seeds = [int(v) for v in np.atleast_1d(seeds)]
    if len(seeds) == 1:
        return f" Seed {seeds[s]}."
    return (
        f" Panels show seed {seeds[s]} of {len(seeds)} ({', '.join(map(str, seeds))})."
    )


def plot_probability(ax, gx, gy, p, x, y, flipped=None) -> object:
    """Draw P(class 1) filled contours, the p=0.5 boundary and the labelled points."""
    levels = np.linspace(0.0, 1.0, 11)
    cs = ax.contourf(gx, gy, p, levels=levels, cmap="RdBu_r", alpha=0.8)
    ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.2)
    ax.scatter(*x[y == 0].T, s=7, c="tab:blue", edgecolors="w", linewidths=0.3)
    ax.scatter(*x[y == 1].T, s=7, c="tab:red", edgecolors="w", linewidths=0.3)
    if flipped is not None and flipped.any():
        ax.scatter(*x[flipped].T, s=40, marker="x", c="k", linewidths=0.9)
    ax.set_xticks([])
    ax.set_yticks([])
    return cs
