"""Figure of the mlm_masking experiment: measured masking rates against BERT's."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure as MplFigure

from reglab.experiments.base import Figure, Result
from reglab.experiments.mlm_masking import counts, rates


def figures(result: Result) -> list[Figure]:
    """Each rate's deviation from its rule, in binomial standard deviations."""
    cfg = result.config
    k = cfg["band_sigmas"]
    fig = MplFigure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    ax.axhspan(-k, k, color="0.9", label=f"rule ± {k:g} σ")
    ax.axhline(0, color="0.4", lw=1)
    n_p = len(cfg["p_selects"])
    for i, p in enumerate(cfg["p_selects"]):
        rows = rates(result, i)
        z = [(m - e) / s for _, m, e, s in rows]
        x = np.arange(len(rows)) + (i - (n_p - 1) / 2) * 0.15
        ax.plot(x, z, "o", label=f"p_select = {p:g}")
        for xi, zi, (_, m, _, _) in zip(x, z, rows, strict=True):
            ax.annotate(f"{m:.4f}", (xi, zi), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)  # fmt: skip
    rules = [f"{w}\n(rule {e:g})" for w, _, e, _ in rates(result, 0)]
    rules[0] = "selected\n(rule p_select)"
    ax.set_xticks(range(len(rules)), rules)
    ax.set_ylabel("(measured − rule) / binomial σ")
    ax.set_ylim(-1.5 * k, 1.5 * k)
    ax.legend(fontsize=8)
    ax.set_title("BERT masking on a real token batch")
    n_tok = int(counts(result, 0)["eligible"])
    return [
        Figure(
            "fig_mlm_masking",
            fig,
            f"Selection rate among {n_tok:,} eligible token positions (non-special"
            " tokens over all draws) and, of the selected, the fractions masked,"
            " replaced by a random token and kept, as deviations from BERT's rule in"
            " binomial standard deviations (labels: the measured fractions). Inside"
            f" the grey band (± {k:g} σ) the masking follows the rule.",
        )
    ]
