"""Annealed Gaussian gradient noise, added to the raw gradient before the optimizer.

Neelakantan, Vilnis, Le, Sutskever, Kaiser, Kurach and Martens, "Adding Gradient
Noise Improves Learning for Very Deep Networks", arXiv:1511.06807, 2015:

    g_t <- g_t + N(0, sigma_t^2),   sigma_t^2 = eta / (1 + t)^gamma

with t the update's index from 0 (the paper's gamma = 0.55; set it, the setting's
default 0 keeps the variance constant). The same transformation
as ``optax.add_noise(eta, gamma, key)``, draw for draw (its state keeps the count and
splits its key the same way), written here so that eta and gamma are traced
per-member values and eta = 0 does nothing. The paper's claim is about optimizing
very deep networks, not about regularizing small ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from reglab.regularizers.base import Context, Member, Regularizer
from reglab.settings import Setting

Array = jax.Array


class GradientNoiseState(NamedTuple):
    """The number of updates so far and the key of the next draw."""

    count: Array  # int32
    rng_key: Array


def noise_std(eta: Array | float, gamma: Array | float, count: Array) -> Array:
    """Return sigma_t = sqrt(eta / (1 + t)^gamma) for t = count, from 0."""
    # (1 + t)^gamma in float32: an int32 count would overflow the power
    return jnp.sqrt(eta / (1.0 + count.astype(jnp.float32)) ** gamma)


def add_gradient_noise(
    eta: Array | float, gamma: Array | float, key: Array
) -> optax.GradientTransformation:
    """Return the transformation adding N(0, eta / (1 + t)^gamma) to each gradient."""

    def init_fn(params):
        del params
        return GradientNoiseState(jnp.zeros([], jnp.int32), key)

    def update_fn(updates, state: GradientNoiseState, params=None):
        del params
        std = noise_std(eta, gamma, state.count)
        rng_key, sample_key = jax.random.split(state.rng_key)
        # one normal draw per leaf, in the pytree's order, as optax.tree.random_like
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, len(leaves))
        noisy = [
            g + std.astype(g.dtype) * jax.random.normal(k, g.shape, g.dtype)
            for g, k in zip(leaves, keys, strict=True)
        ]
        updates = jax.tree.unflatten(treedef, noisy)
        return updates, GradientNoiseState(optax.safe_increment(state.count), rng_key)

    return optax.GradientTransformation(init_fn, update_fn)


def _gradient(
    ctx: Context, member: Member, key: Array, step_size: Callable[[Array], Array]
) -> optax.GradientTransformation | None:
    """Return the noise transformation, or None where no member adds gradient noise."""
    del step_size  # the variance schedule is the paper's own, not the learning rate
    if "gradient_noise" not in ctx.used:
        return None
    return add_gradient_noise(member.gradient_noise, member.gradient_noise_decay, key)


GRADIENT_NOISE = Regularizer(
    name="gradient_noise",
    settings=(
        Setting(
            "gradient_noise",
            0.0,
            "eta: Gaussian noise of variance eta / (1 + t)^gamma added to the"
            " gradient at update t; 0 turns it off",
            "use 0.0 to turn gradient noise off, e.g. 0.01 to add it",
            low=0.0,
        ),
        # default 0 (constant variance), not the paper's 0.55: the seam holds every
        # default to 0 / False (settings.add_rows); gamma alone does nothing anyway
        Setting(
            "gradient_noise_decay",
            0.0,
            "gamma, the decay power of the gradient-noise variance; 0 keeps it"
            " constant (does nothing while gradient_noise is 0)",
            "use 0.55 as Neelakantan et al., 0 for constant noise",
            low=0.0,
        ),
    ),
    summary="annealed Gaussian gradient noise, eta / (1 + t)^gamma (Neelakantan et "
    "al., 2015)",
    gradient=_gradient,
)
REGULARIZER = GRADIENT_NOISE  # the name the seam's built-ins loop registers
