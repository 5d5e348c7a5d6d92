"""Sharpness-aware minimization: the gradient is taken at the worst nearby weights.

Foret, Kleiner, Mobahi and Neyshabur, "Sharpness-Aware Minimization for Efficiently
Improving Generalization", ICLR 2021 (arXiv:2010.01412), its first-order step:

    g    = dL/dw (w)
    e    = rho g / |g|          (|.| the L2 norm over every parameter)
    g_SAM = dL/dw (w + e)       applied to w by the optimizer as usual

Two forward and backward passes per step on the same minibatch (and, through the
``grad_fn`` the trainer hands over, the same hooks' draws). rho = 0 takes the
gradient at w itself. Anchors: ``optax.contrib.sam``, ``composer.algorithms.SAM``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from reglab import nn
from reglab.regularizers.base import Context, GradFn, Member, Regularizer, StepRule
from reglab.settings import Setting

Array = jax.Array


def ascent_point(params: nn.Params, grads: nn.Params, rho: Array | float) -> nn.Params:
    """Return w + rho g / |g|: the first-order worst point within radius rho."""
    norm = optax.tree.norm(grads)
    # a zero gradient has no ascent direction: stay at w (not 0/0)
    scale = jnp.where(norm > 0, rho / jnp.where(norm > 0, norm, 1.0), 0.0)
    return jax.tree.map(lambda w, g: w + scale.astype(w.dtype) * g, params, grads)


def sam_gradient(
    grad_fn: GradFn, params: nn.Params, rho: Array | float
) -> tuple[Array, nn.Params, Array]:
    """Return (loss, g_SAM, logits): loss and logits at w, the gradient at w + e."""
    loss, grads, logits = grad_fn(params)
    _, sam_grads, _ = grad_fn(ascent_point(params, grads, rho))
    return loss, sam_grads, logits


def _step(ctx: Context) -> StepRule | None:
    """Return the step rule, or None where no member uses SAM."""
    if "sam" not in ctx.used:
        return None

    def rule(
        grad_fn: GradFn, params: nn.Params, key: Array, t: Array, member: Member
    ) -> tuple[Array, Any, Array]:
        del key, t  # deterministic: both passes see the step's own draws
        return sam_gradient(grad_fn, params, member.sam)

    return rule


SAM = Regularizer(
    name="sam",
    settings=(
        Setting(
            "sam",
            0.0,
            "SAM radius rho: the gradient is taken at w + rho g/|g| (a second"
            " forward and backward per step); 0 turns it off",
            "use 0.0 for plain gradients, e.g. 0.05 as Foret et al.",
            low=0.0,
        ),
    ),
    summary="sharpness-aware minimization, the gradient at w + rho g/|g| (Foret et "
    "al., ICLR 2021)",
    step=_step,
)
REGULARIZER = SAM  # the name the seam's built-ins loop registers
