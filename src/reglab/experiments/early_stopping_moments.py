"""When things happen on the early-stopping curves, for its claims and figures.

The two moments of Figure 10's claim are defined here before looking at any run:
the test loss has flattened once it has made FLAT_FRACTION of its fall to its minimum,
and the energy has moved to low-variance components once the top-k fraction E_<=k has
made SHIFT_FRACTION of its fall from its peak.
"""

from __future__ import annotations

import numpy as np

FLAT_FRACTION = 0.9  # the test loss has flattened once 90% of its fall is done
SHIFT_FRACTION = 0.5  # the energy has moved once E_<=k has made half its fall


def test_optimum(curves: np.ndarray) -> np.ndarray:
    """Return the record index of each seed's test-loss minimum, (S,) from (S, R)."""
    return np.nanargmin(curves, axis=-1)


def falling_epoch(epochs, curve, level: float) -> float:
    """Return the first epoch at which curve falls to level, log-interpolated.

    Epoch 0 counts as 0.5 on the log scale; a curve already at level returns its
    first epoch, one that never reaches it NaN.
    """
    t = np.log(np.maximum(np.asarray(epochs, float), 0.5))
    below = np.flatnonzero(np.asarray(curve) <= level)
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    if i == 0:
        return float(np.exp(t[0]))
    # linear in log(epoch) between the records on either side of the crossing
    a, b = curve[i - 1], curve[i]
    w = (a - level) / (a - b) if a != b else 1.0
    return float(np.exp(t[i - 1] + w * (t[i] - t[i - 1])))


def flattening_epochs(epochs, test_loss: np.ndarray) -> np.ndarray:
    """Return per seed the epoch by which the test loss made FLAT_FRACTION of its fall.

    The fall is from epoch 0 to the curve's minimum; (S, R) in, (S,) out.
    """
    out = []
    for curve in test_loss:
        low, start = np.nanmin(curve), curve[0]
        out.append(falling_epoch(epochs, curve, start - FLAT_FRACTION * (start - low)))
    return np.asarray(out)


def shift_epochs(snapshot_epochs, energy_top: np.ndarray) -> np.ndarray:
    """Return per seed the epoch at which E_<=k made SHIFT_FRACTION of its fall.

    energy_top is (S, n_snap) with epoch 0 first (defined, not measured: skipped);
    the fall runs from the curve's peak to its last value, and is searched after
    the peak.
    """
    out = []
    for curve in energy_top[:, 1:]:
        peak = int(np.argmax(curve))
        level = curve[peak] - SHIFT_FRACTION * (curve[peak] - curve[-1])
        out.append(falling_epoch(snapshot_epochs[1:][peak:], curve[peak:], level))
    return np.asarray(out)


def doublings(a, b) -> np.ndarray:
    """Return |log2(a / b)|, counting epochs below 1 as 1."""
    return np.abs(np.log2(np.maximum(a, 1.0) / np.maximum(b, 1.0)))
