"""Dropout: multiplicative masks on the activations of the model's dropout layers.

Inverted dropout (Srivastava et al. 2014), masks drawn by ``nn.dropout_masks`` from
the trainer's legacy "dropout" key stream, one fresh hash stream per step and layer.
A per-example program can give single members the post's one mask per batch
(``dropout_per_batch``).
"""

from __future__ import annotations

import jax.numpy as jnp

from reglab import nn
from reglab.regularizers.base import Context, Regularizer, Values
from reglab.settings import Setting


def check(ctx: Context, values: Values) -> None:
    """Refuse p_drop > 0 in a network without dropout layers."""
    p_drop = values["p_drop"]
    if not ctx.model.dropout_layers and (p_drop > 0).any():
        bad = float(p_drop[p_drop > 0][0])
        raise ValueError(
            f"p_drop={bad:g} needs dropout layers, but the MLPSpec has none — pass"
            " MLPSpec(..., dropout_layers=(1, 2)) (hidden layers to drop), or p_drop=0"
        )


def masks(ctx: Context):
    """Return the mask hook, or None where no layer drops or no member drops."""
    model = ctx.model
    if not model.dropout_layers or "p_drop" not in ctx.used:
        return None
    per_batch_members = model.dropout_mode == "per_example" and (
        "dropout_per_batch" in ctx.used
    )

    def hook(key, t, batch_size, member):
        drawn = nn.dropout_masks(key, model, batch_size, member.p_drop, t)
        if not per_batch_members:
            return drawn
        # row 0 of a per-example draw is exactly the per-batch draw (the hash is
        # indexed by flat position), so such members get the post's masks
        per_batch = member.dropout_per_batch
        return {l: jnp.where(per_batch, m[:1], m) for l, m in drawn.items()}

    return hook


REGULARIZER = Regularizer(
    name="dropout",
    settings=(
        Setting(
            "p_drop",
            0.0,
            "dropout rate at the network's dropout layers",
            "use 0.0 to turn dropout off",
            low=0.0,
            high=1.0,
            high_open=True,
        ),
        Setting(
            "dropout_per_batch",
            False,
            "one dropout mask per batch (the post's) in a per-example program",
            "use False for per-example masks",
            flag=True,
        ),
    ),  # fmt: skip
    summary="dropout at the model's dropout layers (Srivastava et al. 2014)",
    masks=masks,
    stream="dropout",
    check=check,
)
