"""Schedules and regularizing optimizers, as optax transformations.

The backward pass hands over the likelihood gradient alone; every regularizer enters
here, as one small transformation named for what it does:

    add_l2_gradient   coupled L2:   g <- g + l2_strength * theta  (before the optimizer)
    add_l1_gradient   coupled L1:   g <- g + l1_strength * sign(theta)
    decoupled_l2      AdamW:        theta <- theta - s_t * l2_strength * theta
    decoupled_l1      its L1 twin:  theta <- theta - s_t * l1_strength * sign(theta)
    proximal_l1       soft-threshold theta after each step by s_t * l1_strength
    max_norm          project each unit's incoming weights onto |w| <= max_norm

The coupled gradients follow the post's optimizer code: L2 adds ``lambda * theta``, not
the ``2 * lambda * theta`` that differentiating ``lambda |theta|^2`` would give, so a
strength here means what it means in the post. ``s_t`` is the step size of the decay:
the learning rate ``lr_t`` (the post's formula, as PyTorch and optax do) or the schedule
multiplier ``lr_t / lr_0`` (Loshchilov & Hutter's AdamW), chosen by ``decay_scaling``.

Which parameters are penalized is a mask built from parameter names (``W*`` weights,
``b*`` biases); the post penalizes biases too, so that is the default.

Adam is ``scale_by_adam`` here, not optax's: in float32, optax's steps run ~6e-6 short.

The per-member values arrive as one ``reglab.settings.Member`` (traced in the program).
Which transformations a chain holds is the regularizers' business
(``reglab.regularizers``: weight_decay, max_norm, plug-ins): ``build_optimizer``
chains the ones they return around the base optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
Schedule = Callable[[Array], Array]

OPTIMIZERS = ("sgd", "adam")
PENALTIES = ("coupled", "decoupled", "proximal")
DECAY_SCALINGS = ("learning_rate", "schedule")


def power_law_schedule(
    learning_rate: Array | float, alpha: Array | float, tau: Array | float
) -> Schedule:
    """Return lr(count) = lr0 / (1 + t / tau)^alpha with t = count + 1.

    optax counts updates from 0; the post's optimizer increments t before its first
    step, so the first update already uses t = 1.
    """

    def schedule(count: Array) -> Array:
        t = count + 1
        return learning_rate / (1.0 + t / tau) ** alpha

    return schedule


class CountState(NamedTuple):
    """The number of updates applied so far."""

    count: Array


def _penalized(
    updates: optax.Updates,
    params: optax.Params,
    mask: Mapping[str, bool],
    fn: Callable[[Array, Array], Array],
) -> optax.Updates:
    """Apply fn(update, param) to the masked leaves; pass the others through."""
    return {k: fn(u, params[k]) if mask[k] else u for k, u in updates.items()}


def add_l2_gradient(
    l2_strength: Array | float, mask: Mapping[str, bool]
) -> optax.GradientTransformation:
    """Coupled L2: add l2_strength * theta to the gradient."""

    def update_fn(updates, state, params=None):
        # g_i <- g_i + lambda_2 theta_i
        return _penalized(
            updates, params, mask, lambda g, p: g + l2_strength * p
        ), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def add_l1_gradient(
    l1_strength: Array | float, mask: Mapping[str, bool]
) -> optax.GradientTransformation:
    """Coupled L1: add l1_strength * sign(theta) to the gradient (a subgradient)."""

    def update_fn(updates, state, params=None):
        # g_i <- g_i + lambda_1 sign(theta_i)
        return _penalized(
            updates, params, mask, lambda g, p: g + l1_strength * jnp.sign(p)
        ), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def _decay_step(schedule: Schedule, count: Array, scaling: str, lr0) -> Array:
    """Return s_t: lr_t, or lr_t / lr_0 for the AdamW paper's convention."""
    lr_t = schedule(count)
    return lr_t if scaling == "learning_rate" else lr_t / lr0


def _counted(update_fn) -> optax.GradientTransformation:
    """Wrap update_fn(updates, count, params) in a transformation that counts steps."""

    def init_fn(params):
        del params
        return CountState(jnp.zeros([], jnp.int32))

    def wrapped(updates, state, params=None):
        new = update_fn(updates, state.count, params)
        return new, CountState(optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, wrapped)


def decoupled_l2(
    l2_strength: Array | float,
    step_size: Callable[[Array], Array],
    mask: Mapping[str, bool],
) -> optax.GradientTransformation:
    """Decoupled L2 (AdamW): add -s_t * l2_strength * theta after the optimizer."""

    def update_fn(updates, count, params):
        s = step_size(count)
        # theta <- theta - (lr_t m_t / sqrt(v_t)) - s_t lambda_2 theta
        return _penalized(updates, params, mask, lambda u, p: u - s * l2_strength * p)

    return _counted(update_fn)


def decoupled_l1(
    l1_strength: Array | float,
    step_size: Callable[[Array], Array],
    mask: Mapping[str, bool],
) -> optax.GradientTransformation:
    """Decoupled L1: add -s_t * l1_strength * sign(theta) after the optimizer."""

    def update_fn(updates, count, params):
        s = step_size(count)
        return _penalized(
            updates, params, mask, lambda u, p: u - s * l1_strength * jnp.sign(p)
        )

    return _counted(update_fn)


def proximal_l1(
    l1_strength: Array | float,
    step_size: Callable[[Array], Array],
    mask: Mapping[str, bool],
) -> optax.GradientTransformation:
    """Proximal L1: soft-threshold theta + u by s_t * l1_strength; exact zeros."""

    def update_fn(updates, count, params):
        threshold = step_size(count) * l1_strength

        def prox(u, p):
            # theta' = sign(theta + u) max(|theta + u| - s_t lambda_1, 0)
            moved = p + u
            shrunk = jnp.sign(moved) * jnp.maximum(jnp.abs(moved) - threshold, 0.0)
            return shrunk - p

        return _penalized(updates, params, mask, prox)

    return _counted(update_fn)


class ScaleByAdamState(NamedTuple):
    """Adam's step count and its first and second moments."""

    count: Array
    mu: optax.Updates
    nu: optax.Updates


def scale_by_adam(
    beta1: float, beta2: float, eps: float
) -> optax.GradientTransformation:
    """Return Adam's preconditioner m_hat / (sqrt(v_hat) + eps), accurate in float32."""
    # Each decay is held by its complement 1 - beta (0.001, not 0.999), so the moments
    # decay at the rate asked for. optax pairs 1 - 0.999 with beta2 = 0.99900001 (its
    # float32 value): its v_hat comes out 1.3e-5 large, every step ~6e-6 short.
    # They take the gradient's dtype: float32 in the trainer, float64 under x64.
    one_minus = (1.0 - beta1, 1.0 - beta2)

    def init_fn(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return ScaleByAdamState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update_fn(updates, state, params=None):
        del params
        dtype = jax.tree.leaves(updates)[0].dtype
        c1, c2 = (jnp.asarray(c, dtype) for c in one_minus)
        # m_t = m + (1 - beta1) (g - m) ; v_t = v + (1 - beta2) (g^2 - v)
        mu = jax.tree.map(lambda g, m: m + c1 * (g - m), updates, state.mu)
        nu = jax.tree.map(lambda g, v: v + c2 * (g * g - v), updates, state.nu)
        count = optax.safe_increment(state.count)
        t = count.astype(dtype)
        # 1 - beta^t = -expm1(t log1p(-(1 - beta))): a few ulp at every t, where
        # 1 - beta**t cancels (optax's is up to 7e-6 off in its first steps)
        k1, k2 = (-jnp.expm1(t * jnp.log1p(-c)) for c in (c1, c2))
        # u = (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 - beta2^t)) + eps)
        new = jax.tree.map(lambda m, v: (m / k1) / (jnp.sqrt(v / k2) + eps), mu, nu)
        return new, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


@dataclass(frozen=True)
class OptimizerSpec:
    """The static part of an optimizer: what changes the compiled program."""

    name: str = "sgd"  # "sgd" or "adam"
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8  # added to sqrt(v_hat), as optax and PyTorch do
    # "coupled": penalty gradients join the likelihood gradient (the post's SGD);
    # "decoupled": applied outside the adaptive scaling (AdamW);
    # "proximal": L1 by soft-thresholding, L2 decoupled.
    penalty: str = "coupled"
    decay_scaling: str = "learning_rate"  # the post's theta -= lr_t lambda theta
    penalize_biases: bool = True  # the post's optimizer decays b as well as W

    def __post_init__(self) -> None:
        for field, allowed in (
            ("name", OPTIMIZERS),
            ("penalty", PENALTIES),
            ("decay_scaling", DECAY_SCALINGS),
        ):
            value = getattr(self, field)
            if value not in allowed:
                raise ValueError(
                    f"optimizer {field} must be one of {allowed}, got {value!r}"
                )
        for field in ("beta1", "beta2"):
            value = getattr(self, field)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{field} must be in [0, 1), got {value}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps} — e.g. 1e-8")


def penalty_mask(params: Mapping[str, Array], penalize_biases: bool) -> dict[str, bool]:
    """Return {name: penalized?}; names must start with W (weights) or b (biases)."""
    mask = {}
    for name in params:
        if name.startswith("W"):
            mask[name] = True
        elif name.startswith("b"):
            mask[name] = penalize_biases
        else:
            raise ValueError(
                f"parameter name {name!r} must start with 'W' (a weight) or 'b'"
                " (a bias) so the penalty mask knows what it is — rename it"
            )
    return mask


def max_norm(limit: Array | float) -> optax.GradientTransformation:
    """Return the max-norm constraint: each unit's incoming weights |w| <= limit.

    Applied after the step to every weight matrix W (fan_in, fan_out): column j, the
    weights into unit j, is scaled back onto the ball of radius limit when outside it
    (Srebro & Shraibman 2005; Srivastava et al. 2014 pair it with dropout). 0 is off.
    """

    def update_fn(updates, state, params):
        def project(u, p):
            W = p + u  # the weights after the step
            norm = jnp.sqrt((W * W).sum(axis=0, keepdims=True))  # (1, fan_out)
            over = (limit > 0) & (norm > limit)
            scale = limit / jnp.where(over, norm, 1.0)
            # the update that lands on the projection; units inside keep theirs exactly
            return jnp.where(over, W * scale - p, u)

        return {
            k: project(u, params[k]) if k.startswith("W") else u
            for k, u in updates.items()
        }, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def decay_step_size(spec: OptimizerSpec, member) -> Callable[[Array], Array]:
    """Return s_t(count), the step size of a decay: lr_t or lr_t / lr_0."""
    schedule = power_law_schedule(member.learning_rate, member.alpha, member.tau)

    def step_size(count: Array) -> Array:
        return _decay_step(schedule, count, spec.decay_scaling, member.learning_rate)

    return step_size


def build_optimizer(
    spec: OptimizerSpec,
    member,
    before: Sequence[optax.GradientTransformation] = (),
    after: Sequence[optax.GradientTransformation] = (),
) -> optax.GradientTransformation:
    """Return the chain: before, [Adam], -lr_t (the schedule), after.

    member: the (possibly traced) settings; before: transformations of the raw
    gradient (coupled penalties), after: of the scaled update (decoupled and proximal
    decay, max-norm), as ``reglab.regularizers.optimizer`` collects them.
    """
    schedule = power_law_schedule(member.learning_rate, member.alpha, member.tau)
    parts = list(before)
    if spec.name == "adam":
        parts.append(scale_by_adam(spec.beta1, spec.beta2, spec.eps))
    # theta <- theta - lr_t * (preconditioned) g
    parts.append(optax.scale_by_schedule(lambda count: -schedule(count)))
    return optax.chain(*parts, *after)
