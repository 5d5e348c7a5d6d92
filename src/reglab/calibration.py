"""Calibration bins: equal-mass and equal-width binning rules, and the ECE over them.

Functions here take per-point arrays, already validated by ``reglab.metrics``: a sort
key (log-confidence for logits, p_hat for probabilities), the confidence p_hat and
whether the prediction was right, each of shape (..., N).

ECE = sum_m |Q_m|/N |conf(Q_m) - acc(Q_m)|. The binning rules, M = n_bins:

- ``equal_mass``: contiguous runs of points sorted by key (stably), split as
  ``numpy.array_split`` splits; the post's quantile bins.
- ``equal_width``: (m/M, (m+1)/M] on float64 edges; p_hat = 1 is in the last bin.
- ``equal_width_closed_last``: [m/M, (m+1)/M), the last bin closed, as
  ``numpy.histogram``; p_hat = 1 is in the last bin.
- ``equal_width_torchmetrics``: torchmetrics >= 1.0 (``_binning_bucketize``):
  ``bucketize(p32, edges32, right=True) - 1``, i.e. [lo, hi) between the float32
  edges ``torch.linspace(0, 1, M + 1)`` computes on CPU, on p_hat rounded to float32;
  a float32 p_hat of exactly 1.0 lands in an extra bin M, so this rule returns M + 1
  bins. Only the bin choice follows torchmetrics: means stay float64.

Bins with no points have NaN conf and acc.
"""

import math
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

Binning = Literal[
    "equal_mass", "equal_width", "equal_width_closed_last", "equal_width_torchmetrics"
]
BINNINGS = (
    "equal_mass",
    "equal_width",
    "equal_width_closed_last",
    "equal_width_torchmetrics",
)


def check_binning(n_bins: int, binning: str) -> None:
    """Raise unless n_bins is an integer >= 1 and binning is a known scheme."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer):
        raise TypeError(
            f"n_bins must be an int, got {type(n_bins).__name__} {n_bins!r} — "
            f"pass e.g. n_bins=15"
        )
    if n_bins < 1:
        raise ValueError(
            f"n_bins must be >= 1, got {n_bins} — use 15, the post's choice"
        )
    if binning not in BINNINGS:
        raise ValueError(
            f"binning must be one of {BINNINGS}, got {binning!r} — use 'equal_mass' "
            f"for the post's quantile bins"
        )


class Calibration(NamedTuple):
    """ECE and reliability curve of a classifier over confidence bins."""

    # n_bins + 1 bins under equal_width_torchmetrics: its last holds p_hat = 1.0
    ece: np.ndarray  # (...)  sum_m |Q_m|/N |conf(Q_m) - acc(Q_m)|
    conf: np.ndarray  # (..., n_bins) mean confidence per bin, NaN where empty
    acc: np.ndarray  # (..., n_bins) mean accuracy per bin, NaN where empty
    count: np.ndarray  # (..., n_bins) |Q_m|, points per bin
    n_effective_bins: np.ndarray  # (...) non-empty bins after merging tied neighbours


def ratio_or_nan(total: ArrayLike, count: ArrayLike) -> np.ndarray:
    """Return total / count elementwise, NaN where count is 0 (without a warning)."""
    total, count = np.asarray(total, dtype=np.float64), np.asarray(count)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def _bin_sums(bin_index: np.ndarray, values: np.ndarray, n_bins: int) -> np.ndarray:
    """Return the sum of values in each bin along the last axis, (..., n_bins)."""
    lead, n = values.shape[:-1], values.shape[-1]
    rows = math.prod(lead)
    # one bincount over all rows: row r's bin m lands at r * n_bins + m
    bins = np.broadcast_to(bin_index, values.shape).reshape(rows, n)
    flat = np.arange(rows)[:, None] * n_bins + bins  # (rows, N)
    sums = np.bincount(
        flat.reshape(-1), weights=values.reshape(-1), minlength=rows * n_bins
    )
    return sums.reshape(*lead, n_bins)


def _torch_linspace_edges(n_bins: int) -> np.ndarray:
    """Return float32 torch.linspace(0, 1, n_bins + 1) as its CPU kernel computes it."""
    # step = 1/M in float32; i * step below the midpoint, 1 - (M - i) * step from it
    # (a build that fuses the multiply-add moves an upper edge by at most one ulp)
    step, i = np.float32(1.0) / np.float32(n_bins), np.arange(n_bins + 1)
    half = (n_bins + 1) // 2
    low = step * i[:half].astype(np.float32)
    high = np.float32(1.0) - step * (n_bins - i[half:]).astype(np.float32)
    return np.concatenate([low, high])  # (n_bins + 1,) float32


def _width_bins(p_hat: np.ndarray, n_bins: int, binning: str) -> np.ndarray:
    """Return each point's equal-width bin under the named edge rule, (..., N)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    if binning == "equal_width":
        # side="left": bin m holds edges[m] < p_hat <= edges[m + 1]
        return np.clip(np.searchsorted(edges, p_hat, side="left") - 1, 0, n_bins - 1)
    if binning == "equal_width_closed_last":
        # side="right": bin m holds edges[m] <= p_hat < edges[m + 1]; 1.0 joins the last
        return np.minimum(np.searchsorted(edges, p_hat, side="right") - 1, n_bins - 1)
    # torchmetrics: bucketize(p32, edges32, right=True) - 1; float32 p_hat = 1.0 lands
    # past the last edge, in an extra bin n_bins
    p32 = p_hat.astype(np.float32)
    return np.searchsorted(_torch_linspace_edges(n_bins), p32, side="right") - 1


def _mass_sizes(n: int, n_bins: int) -> np.ndarray:
    """Return equal-mass bin sizes as numpy.array_split makes them, (n_bins,)."""
    # the first n % n_bins groups get one extra point
    return n // n_bins + (np.arange(n_bins) < n % n_bins)


def binned(
    key: np.ndarray, p_hat: np.ndarray, correct: np.ndarray, n_bins: int, binning: str
) -> Calibration:
    """Return the Calibration of per-point confidences and hits, (..., N) each."""
    n = p_hat.shape[-1]
    if binning == "equal_mass":
        # rank by key (log-confidence for logits), not p_hat: saturated p_hat = 1.0
        # ties would otherwise pile up and collapse quantile bins
        order = np.argsort(key, axis=-1, kind="stable")
        key = np.take_along_axis(key, order, axis=-1)  # (..., N) ascending
        p_hat = np.take_along_axis(p_hat, order, axis=-1)
        correct = np.take_along_axis(correct, order, axis=-1)
        sizes = _mass_sizes(n, n_bins)  # (n_bins,)
        bin_index = np.repeat(np.arange(n_bins), sizes)  # (N,)
        # neighbours sharing a key across their boundary hold one tied value between
        # them and count as one effective bin
        starts = np.cumsum(sizes)[: min(n, n_bins) - 1]
        tied = key[..., starts - 1] == key[..., starts]
        n_effective = min(n, n_bins) - tied.sum(axis=-1)
    else:
        bin_index = _width_bins(p_hat, n_bins, binning)  # (..., N)
    n_bins += binning == "equal_width_torchmetrics"  # its extra bin for p_hat = 1.0
    hit = correct.astype(np.float64)
    count = _bin_sums(bin_index, np.ones_like(p_hat), n_bins).astype(np.int64)
    if binning != "equal_mass":
        n_effective = (count > 0).sum(axis=-1)
    conf = ratio_or_nan(_bin_sums(bin_index, p_hat, n_bins), count)
    acc = ratio_or_nan(_bin_sums(bin_index, hit, n_bins), count)
    # ECE = sum_m |Q_m|/N |conf_m - acc_m| = (1/N) sum_m |sum_{i in Q_m} (p_i - c_i)|
    ece = np.abs(_bin_sums(bin_index, p_hat - hit, n_bins)).sum(axis=-1) / n
    return Calibration(ece, conf, acc, count, np.asarray(n_effective))


def point_bins(
    key: np.ndarray, p_hat: np.ndarray, n_bins: int, binning: str
) -> np.ndarray:
    """Return the bin of each point as binned assigns it, in input order, (..., N)."""
    if binning != "equal_mass":
        return _width_bins(p_hat, n_bins, binning)
    order = np.argsort(key, axis=-1, kind="stable")  # as binned ranks points
    in_order = np.repeat(np.arange(n_bins), _mass_sizes(p_hat.shape[-1], n_bins))
    index = np.empty(order.shape, dtype=np.int64)
    # the point at sorted position j is order[j]; it sits in bin in_order[j]
    np.put_along_axis(index, order, np.broadcast_to(in_order, order.shape), axis=-1)
    return index
