"""Target-side regularizers: label smoothing, as a function and as a batch hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array
SMOOTHING_CONVENTIONS = ("post", "uniform")
# (key, inputs (B, D), targets (B, K), settings) -> (inputs, targets)
BatchHook = Callable[[Array, Array, Array, Any], tuple[Array, Array]]


def smooth_targets(targets: Array, smoothing: Array | float, convention: str) -> Array:
    """Return one-hot targets (batch, K) smoothed by smoothing (epsilon).

    "post": 1 - eps on the true class and eps / (K - 1) on each other class.
    "uniform": (1 - eps) one_hot + eps / K, as PyTorch and Keras define it.
    """
    K = targets.shape[-1]
    if convention == "post":
        # y'_k = (1 - eps) if k is the label else eps / (K - 1)
        return targets * (1.0 - smoothing) + (1.0 - targets) * smoothing / (K - 1)
    if convention == "uniform":
        # y'_k = (1 - eps) y_k + eps / K
        return targets * (1.0 - smoothing) + smoothing / K
    raise ValueError(
        f"smoothing convention must be one of {SMOOTHING_CONVENTIONS},"
        f" got {convention!r}"
    )


def smooth_labels(
    labels: Array, n_classes: int, smoothing: Array | float, convention: str = "post"
) -> Array:
    """Return label-smoothed one-hot targets (batch, classes) for integer labels."""
    one_hot = jax.nn.one_hot(labels, n_classes, dtype=jnp.float32)
    return smooth_targets(one_hot, smoothing, convention)


def label_smoothing(convention: str = "post") -> BatchHook:
    """Return the batch hook smoothing each member's targets by settings.smoothing."""
    if convention not in SMOOTHING_CONVENTIONS:
        raise ValueError(
            f"smoothing convention must be one of {SMOOTHING_CONVENTIONS},"
            f" got {convention!r}"
        )

    def hook(key: Array, inputs: Array, targets: Array, settings: Any):
        del key  # deterministic
        return inputs, smooth_targets(targets, settings.smoothing, convention)

    return hook
