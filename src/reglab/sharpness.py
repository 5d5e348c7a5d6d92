"""Sharpness of the training loss: its top Hessian eigenvalue and its Hessian trace.

Both come from Hessian-vector products taken through the explicit backward pass:
the gradient g(w) = ``nn.mlp_backward`` of ``nn.mlp_forward`` and the loss's
dL/dlogits is a function of w, and its forward-mode derivative along v is

    H v = d/de g(w + e v) |_{e=0}     (jax.jvp of g: forward over explicit reverse)

so no dense Hessian is ever formed. Then

    top eigenvalue   power iteration v <- H v / |H v| and the Rayleigh quotient v'Hv,
                     a second run on H - s I (s the first run's value where it is
                     negative) so the largest eigenvalue is found, not the largest
                     in magnitude (Keskar et al., ICLR 2017; Foret et al., ICLR 2021)
    trace            Hutchinson's estimator tr H = E[z'Hz], z Rademacher
                     (Hutchinson, 1989), with its standard error over the probes

Everything is batched over ensemble members: params carry a leading member axis and
the training set is shared. The loss is the likelihood alone (the mean over the set),
without any regularizer's term.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from reglab import nn

Array = jax.Array
HVP = Callable[[nn.Params], nn.Params]  # v -> H v, H symmetric


class Sharpness(NamedTuple):
    """Per-member sharpness of the training loss, each (members,)."""

    top_eigenvalue: Array
    trace: Array  # Hutchinson's estimate
    trace_stderr: Array  # its standard error over the probes


def _check_loss(loss: str) -> None:
    if loss not in nn.LOSSES:
        raise ValueError(
            f"loss must be one of {tuple(nn.LOSSES)}, got {loss!r} — the training"
            " loss the network was fitted with"
        )


def _targets(labels: Array, spec: nn.MLPSpec) -> Array:
    """Return target rows (N, K): integer labels one-hot, probability rows as is."""
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        return jax.nn.one_hot(labels, spec.n_classes, dtype=jnp.float32)
    return labels.astype(jnp.float32)


def training_gradient(
    params: nn.Params, inputs: Array, targets: Array, spec: nn.MLPSpec, loss: str
) -> nn.Params:
    """Return the likelihood gradient of one network through the explicit backward."""
    logits, cache = nn.mlp_forward(params, inputs, spec)
    _, delta = nn.LOSSES[loss](logits, targets)
    return nn.mlp_backward(params, cache, delta, spec)


def hessian_vector_product(
    params: nn.Params,
    vector: nn.Params,
    inputs: Array,
    targets: Array,
    spec: nn.MLPSpec,
    loss: str = "cross_entropy",
) -> nn.Params:
    """Return H v for one network: jax.jvp of the explicit gradient along v."""

    def gradient(p: nn.Params) -> nn.Params:
        return training_gradient(p, inputs, targets, spec, loss)

    return jax.jvp(gradient, (params,), (vector,))[1]


def _dot(a: nn.Params, b: nn.Params) -> Array:
    return sum(jnp.vdot(a[k], b[k]) for k in a)


def _normalized(v: nn.Params) -> nn.Params:
    norm = jnp.sqrt(_dot(v, v))
    # a zero H v (a flat direction) keeps v rather than dividing 0 by 0
    safe = jnp.where(norm > 0, norm, 1.0)
    return {k: jnp.where(norm > 0, x / safe, x) for k, x in v.items()}


def _random_like(key: Array, params: nn.Params, sampler) -> nn.Params:
    names = sorted(params)
    keys = jax.random.split(key, len(names))
    return {k: sampler(kk, params[k].shape) for k, kk in zip(names, keys, strict=True)}


def largest_eigenvalue(hvp: HVP, start: nn.Params, n_iterations: int) -> Array:
    """Return the largest eigenvalue of a symmetric operator by power iteration.

    Two runs of n_iterations each, in one loop (one H v per step): power iteration
    finds the eigenvalue largest in magnitude; where that is negative, the second
    run iterates on H - lambda I (every eigenvalue >= 0) from the start again and
    finds the top one; where it is not, the second run goes on refining.
    """

    def body(i, carry):
        v, shift, rayleigh = carry
        # halfway: shift by the first run's value if it is negative, restart there
        halfway = i == n_iterations
        new_shift = jnp.where(halfway, jnp.minimum(rayleigh, 0.0), shift)
        restart = halfway & (new_shift < 0)
        v = jax.tree.map(lambda a, b: jnp.where(restart, a, b), unit, v)
        w = {k: x - new_shift * v[k] for k, x in hvp(v).items()}  # (H - s I) v
        return _normalized(w), new_shift, _dot(v, w)  # v'(H - s I)v, |v| = 1

    unit = _normalized(start)
    zero = jnp.float32(0.0)
    _, shift, rayleigh = jax.lax.fori_loop(
        0, 2 * n_iterations, body, (unit, zero, zero)
    )
    return rayleigh + shift


def hutchinson_trace(
    hvp: HVP, like: nn.Params, key: Array, n_probes: int
) -> tuple[Array, Array]:
    """Return Hutchinson's estimate of a symmetric operator's trace and its stderr."""

    def rademacher(k: Array, shape: tuple[int, ...]) -> Array:
        return jax.random.rademacher(k, shape, jnp.float32)

    def probe(j, sums):
        z = _random_like(jax.random.fold_in(key, j), like, rademacher)
        value = _dot(z, hvp(z))  # z' H z: one unbiased draw of tr H
        return sums[0] + value, sums[1] + value * value

    zero = jnp.float32(0.0)
    total, squares = jax.lax.fori_loop(0, n_probes, probe, (zero, zero))
    mean = total / n_probes
    # the probes' sample variance (n - 1), over n for the mean's
    var = jnp.maximum(squares - n_probes * mean * mean, 0.0) / max(n_probes - 1, 1)
    return mean, jnp.sqrt(var / n_probes)


def _check(n: int, what: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {n!r} — e.g. 20")


def _member_axis(params: nn.Params) -> int:
    sizes = {k: v.shape[0] if v.ndim else None for k, v in params.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(
            f"params must carry one leading member axis on every array, got leading"
            f" sizes {sizes} — stack the members' params, or add [None] for one net"
        )
    return next(iter(sizes.values()))


@functools.partial(jax.jit, static_argnames=("spec", "n_iterations", "loss"))
def _top_eigenvalues(params, inputs, targets, key, spec, n_iterations, loss):
    def one(p: nn.Params) -> Array:
        def hvp(v):
            return hessian_vector_product(p, v, inputs, targets, spec, loss)

        start = _random_like(key, p, jax.random.normal)
        return largest_eigenvalue(hvp, start, n_iterations)

    return jax.vmap(one)(params)


@functools.partial(jax.jit, static_argnames=("spec", "n_probes", "loss"))
def _traces(params, inputs, targets, key, spec, n_probes, loss):
    def one(p: nn.Params) -> tuple[Array, Array]:
        def hvp(v):
            return hessian_vector_product(p, v, inputs, targets, spec, loss)

        return hutchinson_trace(hvp, p, key, n_probes)

    return jax.vmap(one)(params)


def top_eigenvalue(
    params: nn.Params,
    inputs: Array,
    labels: Array,
    spec: nn.MLPSpec,
    *,
    key: Array,
    n_iterations: int = 100,
    loss: str = "cross_entropy",
) -> Array:
    """Return each member's largest Hessian eigenvalue of the training loss (M,)."""
    _check(n_iterations, "n_iterations")
    _check_loss(loss)
    _member_axis(params)
    targets = _targets(labels, spec)
    return _top_eigenvalues(params, inputs, targets, key, spec, n_iterations, loss)


def hessian_trace(
    params: nn.Params,
    inputs: Array,
    labels: Array,
    spec: nn.MLPSpec,
    *,
    key: Array,
    n_probes: int = 100,
    loss: str = "cross_entropy",
) -> tuple[Array, Array]:
    """Return each member's Hutchinson estimate of tr H and its standard error (M,)."""
    _check(n_probes, "n_probes")
    _check_loss(loss)
    _member_axis(params)
    return _traces(params, inputs, _targets(labels, spec), key, spec, n_probes, loss)


def sharpness(
    params: nn.Params,
    inputs: Array,
    labels: Array,
    spec: nn.MLPSpec,
    *,
    key: Array,
    n_iterations: int = 100,
    n_probes: int = 100,
    loss: str = "cross_entropy",
) -> Sharpness:
    """Return each member's top Hessian eigenvalue and Hessian trace (M,)."""
    k_power, k_trace = jax.random.split(key)
    top = top_eigenvalue(params, inputs, labels, spec, key=k_power,
                         n_iterations=n_iterations, loss=loss)  # fmt: skip
    trace, stderr = hessian_trace(params, inputs, labels, spec, key=k_trace,
                                  n_probes=n_probes, loss=loss)  # fmt: skip
    return Sharpness(top, trace, stderr)
