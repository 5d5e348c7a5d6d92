"""Mixup: train on convex combinations of pairs of examples and of their targets.

Zhang, Cisse, Dauphin and Lopez-Paz, "mixup: Beyond Empirical Risk Minimization",
ICLR 2018 (arXiv:1710.09412). With lambda ~ Beta(alpha, alpha) and a random pairing
pi of the minibatch,

    x'_i = lambda x_i + (1 - lambda) x_pi(i)
    y'_i = lambda y_i + (1 - lambda) y_pi(i)

one lambda for the whole batch (the paper's), or one per example (``mixup_per_example``,
as timm's ``Mixup(mode="elem")``). Anchors: ``composer.functional.mixup_batch``,
``timm.data.Mixup``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reglab.regularizers.base import BatchHook, Context, Member, Regularizer
from reglab.settings import Setting

Array = jax.Array


def mix(inputs: Array, targets: Array, lam: Array, pairing: Array):
    """Return (x', y'): each row mixed with row pairing[i] by lam (scalar or (B,))."""
    lam = jnp.broadcast_to(jnp.asarray(lam, inputs.dtype), (inputs.shape[0],))[:, None]
    # x'_i = lam_i x_i + (1 - lam_i) x_pi(i), and the same for the targets
    mixed_x = lam * inputs + (1.0 - lam) * inputs[pairing]  # (B, D)
    mixed_y = lam * targets + (1.0 - lam) * targets[pairing]  # (B, K)
    return mixed_x, mixed_y


def sample_lambda(key: Array, alpha: Array, batch_size: int, per_example: Array):
    """Return lambda (B,): Beta(alpha, alpha) draws, one per example or one shared.

    At alpha = 0 every lambda is exactly 1 (mixup off).
    """
    on = alpha > 0
    # Beta(0, 0) is not a distribution: draw at alpha = 1 and discard below
    safe = jnp.where(on, alpha, 1.0)
    draws = jax.random.beta(key, safe, safe, (batch_size,))  # (B,)
    # the per-batch lambda is the first per-example draw: one draw serves both
    lam = jnp.where(per_example, draws, draws[0])
    return jnp.where(on, lam, 1.0)


def mixup_batch(
    key: Array,
    inputs: Array,
    targets: Array,
    alpha: Array | float,
    per_example: Array | bool = False,
) -> tuple[Array, Array]:
    """Return the minibatch mixed with a random pairing of itself (alpha 0: as is)."""
    k_lambda, k_pair = jax.random.split(key)
    B = inputs.shape[0]
    alpha = jnp.asarray(alpha, jnp.float32)
    lam = sample_lambda(k_lambda, alpha, B, jnp.asarray(per_example, bool))
    pairing = jax.random.permutation(k_pair, B)
    mixed_x, mixed_y = mix(inputs, targets, lam, pairing)
    # exactly the batch at alpha 0, whatever the arithmetic of 1 * x + 0 * x'
    off = alpha <= 0
    return jnp.where(off, inputs, mixed_x), jnp.where(off, targets, mixed_y)


def _batch(ctx: Context) -> BatchHook | None:
    """Return the batch hook, or None where no member mixes (the flag is inert)."""
    if "mixup" not in ctx.used:
        return None

    def hook(key: Array, t: Array, inputs: Array, targets: Array, member: Member):
        key = jax.random.fold_in(key, t)
        return mixup_batch(key, inputs, targets, member.mixup, member.mixup_per_example)

    return hook


MIXUP = Regularizer(
    name="mixup",
    settings=(
        Setting(
            "mixup",
            0.0,
            "mixup alpha: lambda ~ Beta(alpha, alpha) mixes pairs of examples and"
            " their targets; 0 turns mixup off",
            "use 0.0 to turn mixup off, e.g. 0.2 or 1.0 to mix",
            low=0.0,
        ),
        Setting(
            "mixup_per_example",
            False,
            "one mixup lambda per example instead of one per batch (inert while"
            " mixup is 0)",
            "use False for one lambda per batch",
            flag=True,
        ),
    ),
    summary="mixup: train on convex combinations of example pairs (Zhang et al., "
    "ICLR 2018)",
    batch=_batch,
)
REGULARIZER = MIXUP  # the name the seam's built-ins loop registers
