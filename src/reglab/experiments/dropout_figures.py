"""Figures 5 and 6 of the post: dropout's boundaries, off and on at inference."""

from __future__ import annotations

import matplotlib.figure

from reglab.experiments.base import Figure, Result
from reglab.experiments.moons import boundary_length
from reglab.experiments.plots import named_seed, plot_probability


def _panels(result: Result, panels, key: str, caption: str, cols: int) -> Figure:
    """Draw one P(class 1) panel per (title, p), cols per row, with the points."""
    a = result.arrays
    rows = -(-len(panels) // cols)
    fig = matplotlib.figure.Figure(
        figsize=(3.4 * cols + 0.9, 3.7 * rows), layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, p) in zip(axes, panels, strict=False):
        cs = plot_probability(
            ax, a["grid_x"], a["grid_y"], p, a["x_train"], a["y_train"]
        )
        length = boundary_length(p, a["grid_x"], a["grid_y"])
        ax.set_title(f"{title}\nboundary length {length:.1f}", fontsize=10)
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    fig.colorbar(cs, ax=axes, label="P(class 1)", shrink=0.8)
    return Figure(key, fig, caption)


def figures(result: Result) -> list[Figure]:
    """Return Figures 5 and 6 of the post and the mask-mode comparison."""
    a, p_drop = result.arrays, result.config["p_drop"]
    acc = a["test_acc"][0]  # (2,): the seed shown
    mean = a["test_acc"].mean(0)  # (2,)
    seed = named_seed(a["seeds"], 0)
    n_test = result.config["n_test"]
    no_dropout = (f"no dropout (test acc {acc[0]:.3f})", a["prob"][0, 0])
    dropout_off = (
        f"dropout $p = {p_drop:g}$, off at inference (test acc {acc[1]:.3f})",
        a["prob"][0, 1],
    )
    out = [
        _panels(
            result,
            [no_dropout, dropout_off],
            "fig5_dropout_boundaries",
            "Figure 5: P(class 1) of the 2-96-96-2 tanh MLP trained on 300 points of"
            " two overlapping moons, without dropout (left) and with dropout"
            f" p = {p_drop:g} after each hidden layer (one mask per minibatch, as the"
            " post's layer draws it), evaluated with dropout off (right). Black line:"
            " P = 0.5; dots: training points by class. Boundary length: the length of"
            " the P = 0.5 line. Test accuracy on"
            f" {n_test} fresh points: the seed shown; over"
            f" {len(a['seeds'])} seeds the mean is {mean[0]:.3f} without and"
            f" {mean[1]:.3f} with dropout." + seed,
            cols=2,
        )
    ]
    n_mc = a["mc_prob"].shape[1]
    mc = [
        (f"instantiation {k + 1} (test acc {a['mc_test_acc'][0, k]:.3f})", p)
        for k, p in enumerate(a["mc_prob"][0])
    ]
    average = (f"average of the {n_mc} instantiations", a["mc_mean"][0])
    out.append(
        _panels(
            result,
            [no_dropout, dropout_off, average] + mc,
            "fig6_mc_dropout",
            f"Figure 6: the dropout model of Figure 5 with dropout kept on at"
            f" inference. Bottom row: {n_mc} instantiations, each one fresh mask per"
            " hidden layer shared by the whole plane (as in training), i.e. one"
            " thinned network. Top row, for comparison: the model trained without"
            " dropout, the dropout model with dropout off, and the average of the"
            f" {n_mc} instantiations' probabilities. Boundary length: the"
            " length of the P = 0.5 line, longer for a rougher boundary." + seed,
            cols=3,
        )
    )
    if "prob_per_example" in a:
        acc_e = a["test_acc_per_example"][0, 0]
        out.append(
            _panels(
                result,
                [
                    (
                        f"one mask per minibatch (test acc {acc[1]:.3f})",
                        a["prob"][0, 1],
                    ),
                    (
                        f"one mask per example (test acc {acc_e:.3f})",
                        a["prob_per_example"][0, 0],
                    ),
                ],
                "fig_dropout_mask_modes",
                f"Beyond the post: dropout p = {p_drop:g} with one mask per minibatch"
                " (the post's layer, left) or one per example (the usual choice,"
                " right), both evaluated with dropout off. Test accuracy: the seed"
                " shown." + seed,
                cols=2,
            )
        )
    return out
