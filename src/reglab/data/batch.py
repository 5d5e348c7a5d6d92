"""Data-side regularizers: what happens to a minibatch before the network sees it.

A batch hook is one function, ``(key, inputs, targets, settings) -> (inputs, targets)``:
inputs (B, D), targets (B, K) rows of class probabilities (one-hot to begin with),
settings the member's ``reglab.settings.Member``. The training step calls exactly one
hook, ``compose``d from named ones that live beside what they regularize:

    augmentation      reglab.data.augment.augmentation: inputs, where settings.augment
    label_smoothing   reglab.data.targets.label_smoothing: targets, by smoothing

A regularizer that changes both, such as mixup, is one more hook. Every hook receives
the same key: a hook that draws randomness folds its own constant into it first, so
hooks never share draws and adding one leaves the others' draws as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

Array = jax.Array
BatchHook = Callable[[Array, Array, Array, Any], tuple[Array, Array]]


def compose(*hooks: BatchHook) -> BatchHook:
    """Return the hook applying hooks in order (an empty compose changes nothing)."""

    def composed(key: Array, inputs: Array, targets: Array, settings: Any):
        for hook in hooks:
            inputs, targets = hook(key, inputs, targets, settings)
        return inputs, targets

    return composed
