"""Two interleaved half circles with Gaussian position noise and flipped labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# independent random streams of one seed: a training draw never shares
# points with the test draw of the same seed
_TRAIN_STREAM, _TEST_STREAM = 0, 1


class Moons(NamedTuple):
    """A two-moons sample: inputs, the labels to train on, the true labels, flips."""

    x: np.ndarray  # (n, 2) float32
    y: np.ndarray  # (n,) int32, after label flips
    y_clean: np.ndarray  # (n,) int32, the moon each point was drawn from
    flipped: np.ndarray  # (n,) bool, y != y_clean


def _check(n: int, noise: float, flip_fraction: float) -> None:
    """Raise on arguments outside their ranges."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n must be an int >= 2 (one point per moon), got {n!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(
            f"noise must be a finite std >= 0, got {noise}; use 0 for none"
        )
    if not 0.0 <= flip_fraction <= 1.0:
        raise ValueError(
            f"flip_fraction must be in [0, 1], got {flip_fraction}; 0 keeps labels"
        )


def _draw(
    n: int, noise: float, flip_fraction: float, rng: np.random.Generator
) -> Moons:
    """Draw n points: half on each moon at uniform angles, then noise, then flips."""
    y_clean = np.zeros(n, dtype=np.int32)
    y_clean[n // 2 :] = 1  # n // 2 on the upper moon, the rest on the lower one
    y_clean = rng.permutation(y_clean)
    t = rng.uniform(0.0, np.pi, size=n)
    # upper moon: (cos t, sin t); lower moon: (1 - cos t, 1/2 - sin t)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(y_clean[:, None] == 0, upper, lower)  # (n, 2)
    x = x + noise * rng.standard_normal((n, 2))
    # each label flips independently with probability flip_fraction, as in the post
    flipped = rng.random(n) < flip_fraction
    y = np.where(flipped, 1 - y_clean, y_clean).astype(np.int32)
    return Moons(x.astype(np.float32), y, y_clean, flipped)


def make_moons(n: int, *, noise: float, flip_fraction: float, seed: int) -> Moons:
    """Return n noisy two-moons points whose labels flip with prob. flip_fraction."""
    _check(n, noise, flip_fraction)
    rng = np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(_TRAIN_STREAM,))
    )
    return _draw(n, noise, flip_fraction, rng)


def make_moons_test(n: int, *, noise: float, seed: int) -> Moons:
    """Return a clean test set from the training distribution, independent of it."""
    _check(n, noise, 0.0)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_TEST_STREAM,)))
    return _draw(n, noise, 0.0, rng)


@dataclass(frozen=True)
class MoonsPreset:
    """The two-moons data of one experiment: size, position noise and label flips."""

    n: int
    noise: float
    flip_fraction: float

    def __post_init__(self) -> None:
        _check(self.n, self.noise, self.flip_fraction)

    def train(self, seed: int) -> Moons:
        """Return this preset's training sample for seed."""
        return make_moons(
            self.n, noise=self.noise, flip_fraction=self.flip_fraction, seed=seed
        )

    def test(self, n: int, seed: int) -> Moons:
        """Return n clean test points from this preset's distribution."""
        return make_moons_test(n, noise=self.noise, seed=seed)


# Section 2.1: N=250, each label flipped with probability 10%. Noise 0.1 keeps the
# moons apart (Bayes error ~0.1% at this noise), so the only disorder an
# unregularized net can chase is the flipped labels - the jagged boundary of the
# post's figure 2 - while a regularized one can still thread the moons cleanly.
WEIGHT_DECAY_MOONS = MoonsPreset(n=250, noise=0.1, flip_fraction=0.10)

# Section 3: N=300, no flips, "larger variance so the classes are not cleanly
# separated". Noise 0.3 makes the moons overlap (Bayes error ~8.5%, about 25 of 300
# points on the wrong side of the best boundary): enough for an unregularized net
# to draw islands around them, not so much that the moon shape is lost.
DROPOUT_MOONS = MoonsPreset(n=300, noise=0.3, flip_fraction=0.0)
