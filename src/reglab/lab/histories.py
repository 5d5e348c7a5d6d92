"""A Result's metric histories, found by name and shape, as one seed's series.

An experiment's Result holds its curves as arrays ``(seeds, ..., R)``, declared with a
seed axis (``Result.seed_axis``), beside the epochs they were recorded at
(``record_epochs``, ``val_epochs``: names ending in ``epochs``, 1-D, length R). A
history is an array whose name says it is a loss or an accuracy and whose last axis is
R; the axes between seed and epoch (strengths, rates) become the series' index:
``l2_train_loss_curve/3`` is the fourth strength's curve. The store keeps only the
recorded epochs, so a run's histories are as small as its records (weight decay at the
post's scale: 27 series of 21 points per seed).
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from reglab.experiments.base import Result

METRIC = re.compile(r"(^|_)(loss|accuracy)(_|$)")  # test_loss, l2_train_loss_curve


def epoch_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return a Result's 1-D integer arrays of recorded epochs, by name."""
    return {
        k: v
        for k, v in arrays.items()
        if k.endswith("epochs") and v.ndim == 1 and np.issubdtype(v.dtype, np.integer)
    }


def epochs_of(name: str, length: int, epochs: dict[str, np.ndarray]) -> str | None:
    """Return the epochs array a history of this name and length was recorded at."""
    fits = [k for k, v in epochs.items() if v.size == length]
    if len(fits) > 1:  # same length: the one whose prefix the name carries
        fits = [k for k in fits if k.removesuffix("epochs").strip("_") in name] or [
            k for k in fits if k == "record_epochs"
        ]
    return fits[0] if len(fits) == 1 else None


def seed_histories(
    result: Result, n_seeds: int
) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Return, for each of n_seeds seeds, its histories: name -> (epochs, values)."""
    epochs = epoch_arrays(result.arrays)
    out: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in range(n_seeds)]
    for name in result.seed_axis:
        a = result.arrays[name]  # (n_seeds, ..., R) as declared
        if not METRIC.search(name) or a.ndim < 2:
            continue
        at = epochs_of(name, a.shape[-1], epochs)
        if at is None or not np.issubdtype(a.dtype, np.number):
            continue
        steps = epochs[at]  # (R,)
        for index in itertools.product(*(range(n) for n in a.shape[1:-1])):
            label = "/".join([name, *map(str, index)])
            for seed in range(n_seeds):
                out[seed][label] = (steps, a[(seed, *index)])  # (R,)
    return out
