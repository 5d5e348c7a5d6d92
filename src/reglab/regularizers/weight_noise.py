"""Gaussian weight noise: the training forward and backward see perturbed weights.

An, "The Effects of Adding Noise During Backpropagation Training on a Generalization
Performance", Neural Computation 8(3), 1996; Graves, "Practical Variational Inference
for Neural Networks", NeurIPS 2011. At every training step

    w' = w + sigma * eps,   eps ~ N(0, I), fresh at every step
    w <- w - lr * dL/dw (w')

the gradient is taken at the noisy weights and applied to the clean ones, and
evaluation uses the clean weights: the noise acts on the training pass only. Every
parameter is perturbed, biases included (a bias is the weight of a constant input).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reglab import nn
from reglab.regularizers.base import Context, Member, Regularizer, WeightHook
from reglab.settings import Setting

Array = jax.Array


def perturb_weights(key: Array, params: nn.Params, sigma: Array | float) -> nn.Params:
    """Return params + sigma * N(0, 1) noise, a fresh draw per parameter array."""
    names = sorted(params)  # a fixed order of the draws, whatever the dict's
    keys = jax.random.split(key, len(names))
    return {
        name: params[name]
        + jnp.asarray(sigma, params[name].dtype)
        * jax.random.normal(k, params[name].shape, params[name].dtype)
        for name, k in zip(names, keys, strict=True)
    }


def _weights(ctx: Context) -> WeightHook | None:
    """Return the weight hook, or None where no member adds weight noise."""
    if "weight_noise" not in ctx.used:
        return None

    def hook(key: Array, t: Array, params: nn.Params, member: Member) -> nn.Params:
        return perturb_weights(jax.random.fold_in(key, t), params, member.weight_noise)

    return hook


WEIGHT_NOISE = Regularizer(
    name="weight_noise",
    settings=(
        Setting(
            "weight_noise",
            0.0,
            "std sigma of Gaussian noise on every weight in the training forward"
            " and backward (never at evaluation); 0 turns it off",
            "use 0.0 to train with exact weights",
            low=0.0,
        ),
    ),
    summary="Gaussian weight noise on the training pass only (An 1996; Graves, "
    "NeurIPS 2011)",
    weights=_weights,
)
REGULARIZER = WEIGHT_NOISE  # the name the seam's built-ins loop registers
