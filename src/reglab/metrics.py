"""Classification metrics: accuracy, NLL, Brier, confidence, calibration, temperature.

Every function takes logits of shape ``(..., N, K)`` (N points, K classes) and integer
labels that broadcast to ``(..., N)``; leading axes (ensemble members, time points) are
kept in the result. The calibration functions take probabilities instead with
``from_logits=False`` (an MC-dropout average, say): their confidence is then max_k p_k
as given, where log(p) would be perturbed by rounding. Work happens in float64 NumPy on
the host: calibration sorts and bins, which compiled code gains nothing from, and
float64 keeps confidences that round to 1.0 in float32 apart. Jax arrays are accepted.

Conventions (the post's section 4):

- confidence is the max softmax probability p_hat = max_k p_k; ties in the arg-max go
  to the lowest class index, as in ``numpy.argmax``.
- Brier score is sum_k (p_k - onehot_k)^2 averaged over points, in [0, 2]
  (not divided by K).
- ECE = sum_m |Q_m|/N |conf(Q_m) - acc(Q_m)| over equal-mass bins (the post's
  quantile bins, 15 by default: points sorted by log-confidence, split as
  ``numpy.array_split`` splits) or equal-width bins under a named edge rule:
  ``equal_width`` (m/M, (m+1)/M], ``equal_width_closed_last`` as ``numpy.histogram``,
  ``equal_width_torchmetrics`` as torchmetrics >= 1.0 (``reglab.calibration`` states
  each rule exactly). Bins with no points have NaN conf and acc.
- Points with exactly equal log-confidence (identical logit rows) are never merged:
  a stable sort splits them across equal-mass bins in input order, so the ECE then
  depends on that order; ``n_effective_bins`` < ``n_bins`` flags it.
"""

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from reglab.calibration import BINNINGS as BINNINGS
from reglab.calibration import Binning as Binning
from reglab.calibration import (
    Calibration,
    binned,
    check_binning,
    point_bins,
    ratio_or_nan,
)

# |sum_k p_k - 1| a row of probabilities may show: float32 softmax rounding, K ~ 1000
_SUM_ATOL = 1e-4

# (sqrt(5) - 1) / 2: each golden-section step keeps this fraction of the bracket.
_INV_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


# --- validation --------------------------------------------------------------------


def _check_shape(a: np.ndarray, name: str) -> None:
    """Raise unless a has shape (..., N, K) with N, K >= 1."""
    if a.ndim < 2 or a.shape[-1] < 1 or a.shape[-2] < 1:
        raise ValueError(
            f"{name} must have shape (..., N, K) with N >= 1 points and K >= 1 "
            f"classes, got shape {a.shape} — for a single point pass {name}[None, :]"
        )


def _first(bad: np.ndarray) -> tuple[int, ...]:
    """Return the index of the first True entry of bad."""
    return tuple(int(i) for i in np.argwhere(bad)[0])


def _validated_logits(logits: ArrayLike) -> np.ndarray:
    """Return logits as float64 of shape (..., N, K), or raise naming the problem."""
    z = np.asarray(logits, dtype=np.float64)
    _check_shape(z, "logits")
    bad = np.isnan(z) | np.isposinf(z)
    if bad.any():
        raise ValueError(
            f"logits must be finite (or -inf for a class of probability 0), got "
            f"{z[bad].flat[0]} at index {_first(bad)} "
            f"— the model has diverged; lower the learning rate or check the inputs"
        )
    if np.isneginf(z).all(axis=-1).any():
        raise ValueError(
            "every row of logits needs at least one finite entry, got a row of all "
            "-inf — a point must have some class with nonzero probability"
        )
    return z


def _validated_probs(probs: ArrayLike) -> np.ndarray:
    """Return probabilities as float64 of shape (..., N, K), or raise."""
    p = np.asarray(probs, dtype=np.float64)
    _check_shape(p, "probs")
    bad = ~(p >= 0.0) | np.isposinf(p)  # NaN fails p >= 0
    if bad.any():
        raise ValueError(
            f"probs must be finite and >= 0, got {p[bad].flat[0]} at index "
            f"{_first(bad)} — pass softmax outputs, or from_logits=True for logits"
        )
    off = np.abs(p.sum(axis=-1) - 1.0) > _SUM_ATOL
    if off.any():
        raise ValueError(
            f"each row of probs must sum to 1 (within {_SUM_ATOL}), got "
            f"{p.sum(axis=-1)[off].flat[0]} for row {_first(off)} — normalize with "
            f"probs / probs.sum(-1, keepdims=True), or pass from_logits=True for logits"
        )
    return p


def _validated_labels(
    labels: ArrayLike, shape: tuple[int, ...], name: str = "logits"
) -> np.ndarray:
    """Return integer labels broadcast to shape[:-1] = (..., N), or raise."""
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be integer class indices, got dtype {y.dtype} — pass "
            f"labels.astype(int) (or argmax(one_hot, -1) for one-hot labels)"
        )
    try:
        fits = np.broadcast_shapes(y.shape, shape[:-1]) == shape[:-1]
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"labels of shape {y.shape} do not match {name} of shape {shape}: labels "
            f"must broadcast to {name}.shape[:-1] = {shape[:-1]} — pass one label "
            f"per point, shape (N,) or (..., N)"
        )
    n_classes = shape[-1]
    out_of_range = (y < 0) | (y >= n_classes)
    if out_of_range.any():
        raise ValueError(
            f"labels must be in [0, {n_classes}) for {n_classes} classes, got "
            f"{y[out_of_range].flat[0]} — relabel classes as 0..{n_classes - 1}"
        )
    return np.broadcast_to(y, shape[:-1])


def _validated(logits: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return float64 logits (..., N, K) and labels broadcast to (..., N), or raise."""
    z = _validated_logits(logits)
    return z, _validated_labels(labels, z.shape)


# --- point metrics -----------------------------------------------------------------


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """Return log softmax(z) along the last axis, stable for large logits."""
    # log p_k = (z_k - m) - log sum_j exp(z_j - m),  m = max_j z_j
    m = z.max(axis=-1, keepdims=True)
    return (z - m) - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def _log_confidence(z: np.ndarray) -> np.ndarray:
    """Return log max_k p_k for validated logits, shape (..., N)."""
    m = z.max(axis=-1, keepdims=True)
    e = np.exp(z - m)  # (..., N, K)
    np.put_along_axis(e, z.argmax(axis=-1)[..., None], 0.0, axis=-1)
    # log p_max = m - logsumexp(z) = -log(1 + sum_{k != argmax} exp(z_k - m));
    # log1p keeps gaps like exp(-60) vs exp(-70) apart where p_max rounds to 1.0
    return -np.log1p(e.sum(axis=-1))


def _mean_nll(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return mean_i -log p_{y_i} for validated logits and labels, shape (...)."""
    log_p = _log_softmax(z)
    return -np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0].mean(axis=-1)


def accuracy(logits: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Return the fraction of points whose arg-max logit is the label, shape (...)."""
    z, y = _validated(logits, labels)
    return (z.argmax(axis=-1) == y).mean(axis=-1)


def nll(logits: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Return the mean negative log-likelihood -log p_y over points, shape (...)."""
    z, y = _validated(logits, labels)
    return _mean_nll(z, y)


def brier_score(logits: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Return sum_k (p_k - onehot_k)^2 averaged over points, in [0, 2], shape (...)."""
    z, y = _validated(logits, labels)
    p = np.exp(_log_softmax(z))  # (..., N, K)
    onehot = y[..., None] == np.arange(z.shape[-1])  # (..., N, K)
    return ((p - onehot) ** 2).sum(axis=-1).mean(axis=-1)


def confidence(logits: ArrayLike) -> np.ndarray:
    """Return the max softmax probability of each point, shape (..., N)."""
    return np.exp(_log_confidence(_validated_logits(logits)))


def log_confidence(logits: ArrayLike) -> np.ndarray:
    """Return log of the max softmax probability, max_k z_k - logsumexp(z), (..., N)."""
    return _log_confidence(_validated_logits(logits))


# --- calibration -------------------------------------------------------------------


def _scored(
    scores: ArrayLike, from_logits: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the sort key, confidence p_hat and prediction per point, (..., N) each."""
    if not isinstance(from_logits, bool | np.bool_):
        raise TypeError(
            f"from_logits must be a bool, got {from_logits!r} — pass True for "
            f"logits, False for probabilities"
        )
    if from_logits:
        z = _validated_logits(scores)
        log_conf = _log_confidence(z)
        return log_conf, np.exp(log_conf), z.argmax(axis=-1)
    p = _validated_probs(scores)
    p_hat = p.max(axis=-1)
    return p_hat, p_hat, p.argmax(axis=-1)


def _calibration_inputs(
    scores: ArrayLike, labels: ArrayLike, from_logits: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the sort key, confidence and hit of each point, (..., N) each."""
    key, p_hat, prediction = _scored(scores, from_logits)
    shape = np.shape(scores)
    y = _validated_labels(labels, shape, "logits" if from_logits else "probs")
    return key, p_hat, prediction == y


def calibration(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: Binning = "equal_mass",
    from_logits: bool = True,
) -> Calibration:
    """Return the ECE and reliability curve over equal-mass or equal-width bins."""
    check_binning(n_bins, binning)
    key, p_hat, hit = _calibration_inputs(logits, labels, from_logits)
    return binned(key, p_hat, hit, n_bins, binning)


def bin_index(
    logits: ArrayLike,
    *,
    n_bins: int = 15,
    binning: Binning = "equal_mass",
    from_logits: bool = True,
) -> np.ndarray:
    """Return the bin each point falls in under calibration's rules, shape (..., N)."""
    check_binning(n_bins, binning)
    key, p_hat, _ = _scored(logits, from_logits)
    return point_bins(key, p_hat, n_bins, binning)


class Interval(NamedTuple):
    """A two-sided interval; low and high share the statistic's shape."""

    low: np.ndarray
    high: np.ndarray


def ece_bootstrap_interval(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: Binning = "equal_mass",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    from_logits: bool = True,
) -> Interval:
    """Return a percentile bootstrap interval for the ECE, resampling test points."""
    check_binning(n_bins, binning)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer):
        raise TypeError(f"n_boot must be an int, got {n_boot!r} — pass e.g. 1000")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot} — use 1000 or more")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level} — use 0.95 for 95%")
    key, p_hat, correct = _calibration_inputs(logits, labels, from_logits)  # (..., N)
    n = p_hat.shape[-1]
    # one (n_boot, N) draw shared by all leading axes: members are compared on the
    # same resampled points (a paired bootstrap)
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    chunk = max(1, 2**22 // (n * max(1, math.prod(p_hat.shape[:-1]))))
    eces = [
        binned(
            key[..., rows], p_hat[..., rows], correct[..., rows], n_bins, binning
        ).ece
        for rows in (draws[i : i + chunk] for i in range(0, n_boot, chunk))
    ]
    eces = np.concatenate(eces, axis=-1)  # (..., n_boot)
    low, high = np.quantile(eces, [(1.0 - level) / 2, (1.0 + level) / 2], axis=-1)
    return Interval(low, high)


# --- overconfidence ----------------------------------------------------------------


class ConfidenceCdf(NamedTuple):
    """Empirical CDF: sorted values and the fraction of points at or below each."""

    confidence: np.ndarray  # (n_wrong,) ascending
    cdf: np.ndarray  # (n_wrong,) i / n_wrong for i = 1..n_wrong


def wrong_confidence_cdf(logits: ArrayLike, labels: ArrayLike) -> ConfidenceCdf:
    """Return the sorted confidences of wrong predictions and their empirical CDF."""
    z, y = _validated(logits, labels)
    if z.ndim != 2:
        raise ValueError(
            f"wrong_confidence_cdf takes one model's logits of shape (N, K), got "
            f"{z.shape} — call it once per member, e.g. logits[m]"
        )
    wrong = z.argmax(axis=-1) != y
    p_hat = np.sort(np.exp(_log_confidence(z))[wrong])
    return ConfidenceCdf(p_hat, np.arange(1, p_hat.size + 1) / max(p_hat.size, 1))


def fraction_confident_wrong(
    logits: ArrayLike, labels: ArrayLike, *, threshold: float = 0.8
) -> np.ndarray:
    """Return the fraction of wrong predictions with confidence above threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(
            f"threshold must be in [0, 1], got {threshold} — it is a confidence, "
            f"e.g. 0.8 as in the post"
        )
    z, y = _validated(logits, labels)
    wrong = z.argmax(axis=-1) != y  # (..., N)
    confident = np.exp(_log_confidence(z)) > threshold
    # NaN where a model makes no mistakes: the fraction of nothing is undefined
    return ratio_or_nan((wrong & confident).sum(axis=-1), wrong.sum(axis=-1))


# --- temperature scaling -----------------------------------------------------------


class TemperatureFit(NamedTuple):
    """A fitted softmax temperature and the NLL of logits / temperature."""

    temperature: float
    nll: float


def _reject_probabilities(z: np.ndarray) -> None:
    """Raise if z looks like probabilities: all in [0, 1] with rows summing to 1."""
    in_unit = (z >= 0.0).all() and (z <= 1.0).all()
    if in_unit and np.allclose(z.sum(axis=-1), 1.0, rtol=0.0, atol=_SUM_ATOL):
        raise ValueError(
            "fit_temperature got probabilities (every value in [0, 1], rows summing "
            "to 1), which have no temperature — pass logits, not probabilities: use "
            "log(probs), whose softmax is probs again"
        )


def fit_temperature(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    bounds: tuple[float, float] = (0.05, 20.0),
) -> TemperatureFit:
    """Return the T in bounds minimizing the NLL of logits / T, and that NLL."""
    z, y = _validated(logits, labels)
    if z.ndim != 2:
        raise ValueError(
            f"fit_temperature fits one T to logits of shape (N, K), got {z.shape} — "
            f"call it once per member, e.g. logits[m]"
        )
    low, high = bounds
    if not 0.0 < low <= 1.0 <= high < math.inf:
        raise ValueError(
            f"bounds must satisfy 0 < low <= 1 <= high < inf, got {bounds} — keep "
            f"T = 1 inside, e.g. (0.05, 20.0)"
        )
    _reject_probabilities(z)

    def loss(log_t: float) -> float:
        return float(_mean_nll(z / math.exp(log_t), y))

    # NLL(z / T) is convex in beta = 1/T, so unimodal in log T: a grid finds the
    # bracket of the minimum, golden-section search narrows it
    grid = np.linspace(math.log(low), math.log(high), 81)
    values = [loss(s) for s in grid]
    best = int(np.argmin(values))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    c, d = b - _INV_GOLDEN * (b - a), a + _INV_GOLDEN * (b - a)
    f_c, f_d = loss(c), loss(d)
    while b - a > 1e-10:
        if f_c <= f_d:
            b, d, f_d = d, c, f_c
            c = b - _INV_GOLDEN * (b - a)
            f_c = loss(c)
        else:
            a, c, f_c = c, d, f_d
            d = a + _INV_GOLDEN * (b - a)
            f_d = loss(d)
    # keep the best point seen, T = 1 included, so the fit never loses to T = 1
    candidates = [(values[best], grid[best]), (f_c, c), (f_d, d), (loss(0.0), 0.0)]
    fitted_nll, log_t = min(candidates)
    # a fit at an end of the grid returns that bound itself: exp(log(0.05)) != 0.05
    temperature = {grid[0]: low, grid[-1]: high}.get(log_t, math.exp(log_t))
    return TemperatureFit(temperature, fitted_nll)
