"""Gaussian input noise: each training input is seen with fresh additive noise.

Bishop, "Training with Noise is Equivalent to Tikhonov Regularization", Neural
Computation 7(1), 1995: for small sigma, training on x + sigma * eps, eps ~ N(0, I),
adds to the loss a penalty on the network's input derivatives of order sigma^2.

    x'_i = x_i + sigma * eps_i,   eps_i ~ N(0, I), fresh at every step

Targets are unchanged. Evaluation sees the clean inputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reglab.regularizers.base import BatchHook, Context, Member, Regularizer
from reglab.settings import Setting

Array = jax.Array


def add_input_noise(key: Array, inputs: Array, sigma: Array | float) -> Array:
    """Return inputs + sigma * N(0, 1) noise of their shape (sigma 0: the inputs)."""
    eps = jax.random.normal(key, inputs.shape, inputs.dtype)  # (B, D)
    return inputs + jnp.asarray(sigma, inputs.dtype) * eps


def _batch(ctx: Context) -> BatchHook | None:
    """Return the batch hook, or None where no member adds input noise."""
    if "input_noise" not in ctx.used:
        return None

    def hook(key: Array, t: Array, inputs: Array, targets: Array, member: Member):
        noisy = add_input_noise(jax.random.fold_in(key, t), inputs, member.input_noise)
        return noisy, targets

    return hook


INPUT_NOISE = Regularizer(
    name="input_noise",
    settings=(
        Setting(
            "input_noise",
            0.0,
            "std sigma of Gaussian noise added to each training input at every"
            " step; 0 turns it off",
            "use 0.0 to train on clean inputs",
            low=0.0,
        ),
    ),
    summary="Gaussian input noise: fresh N(0, sigma^2) on each training input "
    "(Bishop, Neural Computation 1995)",
    batch=_batch,
)
REGULARIZER = INPUT_NOISE  # the name the seam's built-ins loop registers
