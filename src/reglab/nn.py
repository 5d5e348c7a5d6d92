"""Layers with explicit forward/backward passes, the MLP that chains them, and losses.

Every layer is a pair of pure functions placed side by side:

    forward(params, x, ...)        -> (y, cache)
    backward(params, cache, delta) -> (grads, delta_in)

Backward passes return only the likelihood gradient; regularizer gradients belong to
the optimizer (``reglab.optim``), as the post argues. ``jax.grad`` is the oracle the
tests hold every backward against; the engine never calls it.

Conventions: activations are batch-major, ``x`` is ``(batch, fan_in)``, a Linear
layer's ``W`` is ``(fan_in, fan_out)`` so that ``z = x @ W + b``. Parameters of an MLP
live in one flat dict, ``{"W1", "b1", "W2", "b2", ...}``, layer 1 nearest the input,
so a mask over parameter names (which leaves a penalty touches) is a dict comprehension.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
Params = dict[str, Array]

ACTIVATIONS = ("tanh", "relu", "identity")
INITS = ("glorot_normal", "glorot_uniform", "lecun_normal", "he_normal")
DROPOUT_MODES = ("per_example", "per_batch")


# --- Linear ------------------------------------------------------------------------


def linear_forward(params: Params, a: Array) -> tuple[Array, Array]:
    """Return z = a W + b and the cache (the input a)."""
    z = a @ params["W"] + params["b"]  # (batch, fan_out)
    return z, a


def linear_backward(params: Params, a: Array, delta: Array) -> tuple[Params, Array]:
    """Return ({dW, db}, delta_in) for z = a W + b."""
    # dL/dW = a^T delta ; dL/db = sum_batch delta ; dL/da = delta W^T
    grads = {"W": a.T @ delta, "b": delta.sum(axis=0)}
    return grads, delta @ params["W"].T


# --- Activations: y = phi(z), delta_in = delta * phi'(z) ---------------------------


def tanh_forward(z: Array) -> tuple[Array, Array]:
    """Return tanh(z); the cache is the output, since tanh' = 1 - tanh^2."""
    a = jnp.tanh(z)
    return a, a


def tanh_backward(a: Array, delta: Array) -> Array:
    """Return delta * (1 - a^2)."""
    return delta * (1.0 - a * a)


def relu_forward(z: Array) -> tuple[Array, Array]:
    """Return max(z, 0); the cache is the input."""
    return jnp.maximum(z, 0.0), z


def relu_backward(z: Array, delta: Array) -> Array:
    """Return delta * 1[z > 0]."""
    return jnp.where(z > 0, delta, 0.0)


def identity_forward(z: Array) -> tuple[Array, Array]:
    """Return z unchanged."""
    return z, z


def identity_backward(z: Array, delta: Array) -> Array:
    """Return delta unchanged."""
    del z
    return delta


_ACTIVATION_PAIRS: dict[str, tuple[Callable, Callable]] = {
    "tanh": (tanh_forward, tanh_backward),
    "relu": (relu_forward, relu_backward),
    "identity": (identity_forward, identity_backward),
}


# --- Dropout (inverted) ------------------------------------------------------------


def _mix32(h: Array) -> Array:
    """Return murmur3's 32-bit finalizer of h: a bijection that scrambles every bit."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def hash_uniform(seed: Array, counter: Array | int, shape: tuple[int, ...]) -> Array:
    """Return uniforms in [0, 1) on a 2^-24 grid from a 64-bit seed and a counter.

    A counter-based generator: element i of stream (seed, counter) is two rounds of
    an integer mix of i, so a fresh stream per step and layer costs no key splitting.
    On CPU it is ~10x cheaper per element than threefry, which matters when a fresh
    (batch, width) dropout mask is drawn at every step.
    """
    stream = _mix32(jnp.asarray(counter, jnp.uint32) * jnp.uint32(0x9E3779B1) ^ seed[1])
    index = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)
    h = _mix32(_mix32(index * jnp.uint32(0x85EBCA77) ^ seed[0]) ^ stream)
    return (h >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def as_seed(key: Array) -> Array:
    """Return a PRNG key's two uint32 words: the 64-bit seed of its hash streams."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return key.reshape(-1)[:2].astype(jnp.uint32)


def dropout_mask(
    seed: Array, counter: Array | int, shape: tuple[int, ...], p_drop: Array | float
) -> Array:
    """Return an inverted-dropout mask: 1/(1-p) with probability 1-p, else 0."""
    # m_i = Bernoulli(1 - p) / (1 - p); at p = 0 every entry is exactly 1.
    keep = hash_uniform(seed, counter, shape) < 1.0 - p_drop
    return keep.astype(jnp.float32) / (1.0 - p_drop)


def dropout_forward(a: Array, mask: Array) -> tuple[Array, Array]:
    """Return a * m; the cache is the mask, reused by the backward pass."""
    return a * mask, mask


def dropout_backward(mask: Array, delta: Array) -> Array:
    """Return delta * m: the same mask gates the gradient."""
    return delta * mask


# --- Initialization ----------------------------------------------------------------


def init_linear(key: Array, fan_in: int, fan_out: int, init: str) -> Params:
    """Return {W, b} for one Linear layer; biases start at zero."""
    if init == "glorot_normal":
        W = jax.random.normal(key, (fan_in, fan_out)) * math.sqrt(
            2 / (fan_in + fan_out)
        )
    elif init == "glorot_uniform":
        limit = math.sqrt(6 / (fan_in + fan_out))
        W = jax.random.uniform(key, (fan_in, fan_out), minval=-limit, maxval=limit)
    elif init == "lecun_normal":
        W = jax.random.normal(key, (fan_in, fan_out)) * math.sqrt(1 / fan_in)
    elif init == "he_normal":
        W = jax.random.normal(key, (fan_in, fan_out)) * math.sqrt(2 / fan_in)
    else:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return {"W": W.astype(jnp.float32), "b": jnp.zeros((fan_out,), jnp.float32)}


# --- The MLP -----------------------------------------------------------------------


@dataclass(frozen=True)
class MLPSpec:
    """The static shape of an MLP: what changes the compiled program.

    Dropout rates are not here: they are runtime values (one per ensemble member).
    """

    widths: tuple[int, ...]  # (inputs, hidden..., outputs), e.g. (2, 64, 64, 2)
    activation: str = "tanh"  # the post trains every network with tanh
    # LeCun normal, W ~ N(0, 1/fan_in): the post does not show its LinearLayer, and
    # randn(fan_in, fan_out) / sqrt(fan_in) is the common from-scratch choice. It
    # matters: Glorot's sqrt(2/(fan_in+fan_out)) gives the 2-wide moons input layer
    # std 0.17 instead of 0.71, and under the post's L2 strengths 7 of 9 such nets
    # collapse to a straight boundary (Figures 2-4 lose the post's picture).
    init: str = "lecun_normal"
    # Hidden layers (1-based) followed by Dropout: Linear -> activation -> Dropout.
    dropout_layers: tuple[int, ...] = ()
    # "per_example" draws a mask per example (standard); "per_batch" draws one mask of
    # shape (width,) shared by the whole batch, as the post's DropoutLayer does.
    dropout_mode: str = "per_example"

    def __post_init__(self) -> None:
        widths = tuple(self.widths)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "dropout_layers", tuple(self.dropout_layers))
        if len(widths) < 2:
            raise ValueError(
                f"widths must have at least 2 entries (inputs, outputs), got {widths!r}"
                " — e.g. widths=(2, 64, 64, 2)"
            )
        if any((not isinstance(w, int)) or w < 1 for w in widths):
            raise ValueError(
                f"widths must be positive integers, got {widths!r}"
                " — every layer needs at least one unit"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {ACTIVATIONS}, got {self.activation!r}"
            )
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.dropout_mode not in DROPOUT_MODES:
            raise ValueError(
                f"dropout_mode must be one of {DROPOUT_MODES},"
                f" got {self.dropout_mode!r}"
            )
        n_hidden = len(widths) - 2
        for l in self.dropout_layers:
            if not 1 <= l <= n_hidden:
                raise ValueError(
                    f"dropout_layers entries must be hidden layers in [1, {n_hidden}],"
                    f" got {l} in {self.dropout_layers!r}"
                    " — dropout follows a hidden activation, never the output"
                )

    @property
    def depth(self) -> int:
        """Number of Linear layers."""
        return len(self.widths) - 1

    @property
    def n_classes(self) -> int:
        """Width of the output layer."""
        return self.widths[-1]


def init_mlp(key: Array, spec: MLPSpec) -> Params:
    """Return the flat parameter dict {W1, b1, ..., WL, bL} of a fresh MLP."""
    params: Params = {}
    keys = jax.random.split(key, spec.depth)
    for l in range(1, spec.depth + 1):
        layer = init_linear(keys[l - 1], spec.widths[l - 1], spec.widths[l], spec.init)
        params[f"W{l}"], params[f"b{l}"] = layer["W"], layer["b"]
    return params


def dropout_masks(
    key: Array, spec: MLPSpec, batch: int, p_drop: Array | float, step: Array | int = 0
) -> dict[int, Array]:
    """Return one mask per dropout layer, shaped for the spec's dropout_mode.

    Masks for different ``step`` values and layers come from distinct hash streams
    of the key's seed, so a step needs no key splitting.
    """
    seed = as_seed(key)
    masks = {}
    for l in spec.dropout_layers:
        width = spec.widths[l]
        shape = (batch, width) if spec.dropout_mode == "per_example" else (width,)
        counter = jnp.asarray(step, jnp.uint32) * jnp.uint32(64) + jnp.uint32(l)
        masks[l] = dropout_mask(seed, counter, shape, p_drop)
    return masks


class MLPCache(NamedTuple):
    """What the backward pass needs: each layer's input, activation cache and mask."""

    inputs: tuple[Array, ...]  # a_{l-1}, the input of Linear layer l
    act: tuple[Array, ...]  # activation caches of hidden layers
    masks: dict[int, Array]


def mlp_forward(
    params: Params, x: Array, spec: MLPSpec, masks: dict[int, Array] | None = None
) -> tuple[Array, MLPCache]:
    """Return the logits and the cache; ``masks=None`` is inference (no dropout)."""
    phi, _ = _ACTIVATION_PAIRS[spec.activation]
    masks = masks or {}
    a, inputs, act = x, [], []
    for l in range(1, spec.depth + 1):
        inputs.append(a)
        z, _ = linear_forward({"W": params[f"W{l}"], "b": params[f"b{l}"]}, a)
        if l == spec.depth:
            return z, MLPCache(tuple(inputs), tuple(act), masks)
        a, cache = phi(z)
        act.append(cache)
        if l in masks:
            a, _ = dropout_forward(a, masks[l])
    raise AssertionError("unreachable: the loop returns at the output layer")


def mlp_backward(
    params: Params, cache: MLPCache, delta: Array, spec: MLPSpec
) -> Params:
    """Return dL/dparams given delta = dL/dlogits: the likelihood gradient only."""
    _, phi_backward = _ACTIVATION_PAIRS[spec.activation]
    grads: Params = {}
    for l in range(len(cache.inputs), 0, -1):
        layer = {"W": params[f"W{l}"], "b": params[f"b{l}"]}
        g, delta = linear_backward(layer, cache.inputs[l - 1], delta)
        grads[f"W{l}"], grads[f"b{l}"] = g["W"], g["b"]
        if l > 1:
            # delta_{l-1} = (delta_l W_l^T) * m_{l-1} * phi'(z_{l-1})
            if l - 1 in cache.masks:
                delta = dropout_backward(cache.masks[l - 1], delta)
            delta = phi_backward(cache.act[l - 2], delta)
    return grads


def mlp_apply(params: Params, x: Array, spec: MLPSpec) -> Array:
    """Return the logits in inference mode (dropout off)."""
    return mlp_forward(params, x, spec)[0]


class MCDropout(NamedTuple):
    """Monte-Carlo dropout predictions: each instantiation, and their moments."""

    probs: Array  # (n_samples, batch, classes)
    mean: Array  # (batch, classes)
    var: Array  # (batch, classes)


def mc_dropout_predict(
    params: Params,
    x: Array,
    spec: MLPSpec,
    *,
    key: Array,
    p_drop: Array | float,
    n_samples: int,
) -> MCDropout:
    """Return class probabilities with dropout kept on, one fresh mask per sample."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")

    def one(k: Array) -> Array:
        masks = dropout_masks(k, spec, x.shape[0], p_drop)
        return jax.nn.softmax(mlp_forward(params, x, spec, masks)[0], axis=-1)

    probs = jax.vmap(one)(jax.random.split(key, n_samples))
    return MCDropout(probs, probs.mean(axis=0), probs.var(axis=0))


# --- Losses: (loss, dL/doutput), averaged over the weighted examples ----------------


def _weights(n: int, weight: Array | None) -> tuple[Array, Array]:
    w = jnp.ones((n,), jnp.float32) if weight is None else weight.astype(jnp.float32)
    return w, jnp.maximum(w.sum(), 1.0)


def log_softmax(z: Array) -> tuple[Array, Array]:
    """Return log softmax(z) and the one-hot mask of each row's largest logit."""
    # Written around the top class m, the one whose p float32 rounds: the others are
    # exp of exact differences, and log p_m = -log1p(their sum) keeps the tiny loss
    # of a fitted example, which z - logsumexp(z) rounds to 0.
    top = jax.nn.one_hot(z.argmax(-1), z.shape[-1], dtype=bool)  # (batch, K)
    shifted = z - z.max(-1, keepdims=True)  # z_k - z_m <= 0, exactly 0 at m
    rest = jnp.where(top, 0.0, jnp.exp(shifted)).sum(-1, keepdims=True)
    # log p_k = (z_k - z_m) - log(1 + sum_{k != m} exp(z_k - z_m))
    return shifted - jnp.log1p(rest), top


def softmax_cross_entropy(
    logits: Array, targets: Array, weight: Array | None = None
) -> tuple[Array, Array]:
    """Return (mean cross-entropy, dL/dlogits) against target distributions.

    ``weight`` (batch,) of 0/1 marks the examples that count (padding is 0); the mean
    is over the counted examples. Each row of dL/dlogits sums to zero, as softmax's
    invariance to a shift of the logits requires, however saturated the row is.
    """
    w, n = _weights(logits.shape[0], weight)
    log_p, top = log_softmax(logits)  # (batch, K)
    loss = -(w * (targets * log_p).sum(axis=-1)).sum() / n
    # dL/dz_k = p_k sum_j t_j - t_k ; targets sum to 1, so p - t
    delta = jnp.exp(log_p) * targets.sum(-1, keepdims=True) - targets
    # At the top class m, p_m - t_m loses everything below p_m's rounding (p_m
    # rounds to 1 once an example is fitted, and p_m - 1 to 0 while the others are
    # not 0): take it from the others instead, delta_m = -sum_{k != m} delta_k.
    # A row that does not sum to zero pushes every logit one way, and Adam scales
    # that residue up to full steps until a fitted model falls apart.
    rest = jnp.where(top, 0.0, delta).sum(-1, keepdims=True)
    delta = jnp.where(top, -rest, delta)
    return loss, delta * (w[:, None] / n)


def mean_squared_error(
    outputs: Array, targets: Array, weight: Array | None = None
) -> tuple[Array, Array]:
    """Return (mean over examples of 1/2 |o - t|^2, dL/doutputs)."""
    w, n = _weights(outputs.shape[0], weight)
    diff = outputs - targets  # (batch, outputs)
    loss = 0.5 * (w * (diff * diff).sum(axis=-1)).sum() / n
    return loss, diff * (w[:, None] / n)


LOSSES: dict[str, Callable[..., tuple[Array, Array]]] = {
    "cross_entropy": softmax_cross_entropy,
    "mse": mean_squared_error,
}
