"""Weight decay: L2 and L1 penalties, coupled, decoupled (AdamW) or proximal.

Coupled terms join the raw gradient (``gradient``: ``optim.add_l2_gradient``,
``add_l1_gradient``) before the optimizer scales it, as the post's SGD does; decoupled
and proximal ones act on the scaled update (``update``: ``optim.decoupled_l2``,
``decoupled_l1``, ``proximal_l1``). The kind is the optimizer spec's ``penalty``; in a
coupled chain each member may pick its own with the flags ``decoupled`` and
``proximal``, so Adam + L2 and AdamW (or subgradient and proximal L1) train in one
program.
"""

from __future__ import annotations

import jax.numpy as jnp

from reglab import optim
from reglab.regularizers.base import Context, Regularizer, Values
from reglab.settings import Setting

KINDS = ("decoupled", "proximal")


def validate(values: Values) -> None:
    """Refuse a member that is both decoupled and proximal."""
    if (values["decoupled"] & values["proximal"]).any():
        raise ValueError(
            "a member cannot be both decoupled and proximal — pick one kind"
        )


def check(ctx: Context, values: Values) -> None:
    """Refuse per-member kinds in a chain whose spec already fixes the kind."""
    del values
    mixed = [k for k in KINDS if k in ctx.used]
    if mixed and ctx.spec.optimizer.penalty != "coupled":
        raise ValueError(
            f"members with {mixed[0]}=True need OptimizerSpec(penalty='coupled'), got"
            f" {ctx.spec.optimizer.penalty!r} — 'coupled' with {mixed[0]} per member"
            " mixes the kinds; without the setting every member follows the spec"
        )


def _shares(ctx: Context, member) -> tuple:
    """Return each member's (decoupled, proximal) flags as 0/1 floats."""
    flag = {k: jnp.asarray(getattr(member, k), jnp.float32) for k in KINDS}
    return tuple(flag[k] if k in ctx.used else 0.0 for k in KINDS)


def gradient(ctx: Context, member, key, step_size):
    """Return the coupled terms: g + l2 theta, g + l1 sign(theta)."""
    del key, step_size
    if ctx.spec.optimizer.penalty != "coupled":
        return None
    decoupled, proximal = _shares(ctx, member)
    coupled_share = 1.0 - decoupled - proximal  # 1 or 0 per member
    parts = []
    if "l2_strength" in ctx.used:
        parts.append(
            optim.add_l2_gradient(member.l2_strength * coupled_share, ctx.mask)
        )
    if "l1_strength" in ctx.used:
        parts.append(
            optim.add_l1_gradient(member.l1_strength * coupled_share, ctx.mask)
        )
    return parts or None


def update(ctx: Context, member, key, step_size):
    """Return the decoupled and proximal terms, in the order of their chains."""
    del key
    penalty, mask = ctx.spec.optimizer.penalty, ctx.mask
    l2, l1 = "l2_strength" in ctx.used, "l1_strength" in ctx.used
    mixed = [k for k in KINDS if k in ctx.used]
    parts = []
    if penalty == "decoupled":
        parts += [optim.decoupled_l2(member.l2_strength, step_size, mask)] * l2
        parts += [optim.decoupled_l1(member.l1_strength, step_size, mask)] * l1
    elif mixed:  # a coupled chain whose members pick their own kind
        decoupled, proximal = _shares(ctx, member)
        l2_share = decoupled + proximal
        parts += [
            optim.decoupled_l2(member.l2_strength * l2_share, step_size, mask)
        ] * l2
        if "decoupled" in mixed and l1:
            parts.append(
                optim.decoupled_l1(member.l1_strength * decoupled, step_size, mask)
            )
        if "proximal" in mixed and l1:
            parts.append(
                optim.proximal_l1(member.l1_strength * proximal, step_size, mask)
            )
    elif penalty == "proximal":
        parts += [optim.decoupled_l2(member.l2_strength, step_size, mask)] * l2
        parts += [optim.proximal_l1(member.l1_strength, step_size, mask)] * l1
    return parts or None


REGULARIZER = Regularizer(
    name="weight_decay",
    settings=(
        Setting(
            "l2_strength",
            0.0,
            "L2 weight decay lambda_2 (the post's lambda theta)",
            "use 0.0 to turn L2 off",
            low=0.0,
        ),
        Setting(
            "l1_strength",
            0.0,
            "L1 weight decay lambda_1 (lambda sign(theta))",
            "use 0.0 to turn L1 off",
            low=0.0,
        ),
        Setting(
            "decoupled",
            False,
            "decay outside the adaptive scaling (AdamW)",
            "use False for the coupled penalty",
            flag=True,
        ),
        Setting(
            "proximal",
            False,
            "L1 by soft-thresholding (exact zeros)",
            "use False for the subgradient L1",
            flag=True,
        ),
    ),  # fmt: skip
    summary="L2/L1 weight decay: coupled (the post's SGD), decoupled (AdamW,"
    " Loshchilov & Hutter 2019) or proximal L1",
    gradient=gradient,
    update=update,
    validate=validate,
    check=check,
)
