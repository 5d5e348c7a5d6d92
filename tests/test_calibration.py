"""Tests for reglab.calibration's binning rules: hand-worked examples and oracles."""

import numpy as np
import pytest

from reglab import metrics

# confidences 0.5, 0.6, 0.75, 0.9, 1.0 (predicting 0, 1, 1, 1, 1): right, wrong, right,
# right, wrong against these labels; M = 4 puts 0.5 and 0.75 on an edge
PROBS = [[0.5, 0.5], [0.4, 0.6], [0.25, 0.75], [0.1, 0.9], [0.0, 1.0]]
LABELS = [0, 0, 1, 1, 0]
NAN = np.nan


@pytest.mark.parametrize(
    ("binning", "bins", "count", "conf", "acc", "ece"),
    [
        # (lo, hi]: 0.5 closes bin 1, 0.75 closes bin 2, 1.0 closes bin 3
        # ECE = (1 |0.5 - 1| + 2 |0.675 - 0.5| + 2 |0.95 - 0.5|) / 5 = 0.35
        (
            "equal_width",
            [1, 2, 2, 3, 3],
            [0, 1, 2, 2],
            [NAN, 0.5, 0.675, 0.95],
            [NAN, 1.0, 0.5, 0.5],
            0.35,
        ),
        # [lo, hi), last bin closed: 0.5 opens bin 2, 0.75 and 1.0 join bin 3
        # ECE = (2 |0.55 - 0.5| + 3 |2.65/3 - 2/3|) / 5 = 0.15
        (
            "equal_width_closed_last",
            [2, 2, 3, 3, 3],
            [0, 0, 2, 3],
            [NAN, NAN, 0.55, 2.65 / 3],
            [NAN, NAN, 0.5, 2 / 3],
            0.15,
        ),
        # [lo, hi) and p_hat = 1.0 alone in a fifth bin
        # ECE = (2 |0.55 - 0.5| + 2 |0.825 - 1| + 1 |1 - 0|) / 5 = 0.29
        (
            "equal_width_torchmetrics",
            [2, 2, 3, 3, 4],
            [0, 0, 2, 2, 1],
            [NAN, NAN, 0.55, 0.825, 1.0],
            [NAN, NAN, 0.5, 1.0, 0.0],
            0.29,
        ),
    ],
)
def test_each_equal_width_rule_hand_worked(binning, bins, count, conf, acc, ece):
    kw = dict(n_bins=4, binning=binning, from_logits=False)
    cal = metrics.calibration(PROBS, LABELS, **kw)
    np.testing.assert_array_equal(metrics.bin_index(PROBS, **kw), bins)
    np.testing.assert_array_equal(cal.count, count)
    np.testing.assert_allclose(cal.conf, conf, atol=1e-15)
    np.testing.assert_allclose(cal.acc, acc, atol=1e-15)
    assert cal.ece == pytest.approx(ece, abs=1e-15)


def test_torchmetrics_rule_puts_confidences_rounding_to_one_in_float32_apart():
    # 1 - 1e-9 rounds to 1.0 in float32, so torchmetrics' extra bin takes it;
    # the float64 rules keep it in the last ordinary bin with p_hat = 1.0
    probs = [[1e-9, 1.0 - 1e-9], [0.0, 1.0], [0.3, 0.7]]
    kw = dict(n_bins=2, from_logits=False)
    got = metrics.bin_index(probs, binning="equal_width_torchmetrics", **kw)
    np.testing.assert_array_equal(got, [2, 2, 1])
    cal = metrics.calibration(
        probs, [1, 1, 1], binning="equal_width_torchmetrics", **kw
    )
    assert cal.conf[2] == pytest.approx(1.0 - 0.5e-9, abs=1e-16)  # float64 means
    for binning in ("equal_width", "equal_width_closed_last"):
        np.testing.assert_array_equal(
            metrics.bin_index(probs, binning=binning, **kw), [1, 1, 1]
        )


# --- oracles, with points placed exactly on every edge -------------------------------


def torch_linspace_float32(n_bins):
    """Return torch.linspace(0, 1, n_bins + 1) in float32 as ATen's CPU kernel does."""
    # RangeFactoriesKernel.cpp linspace_kernel: step = (end - start) / (steps - 1) in
    # scalar_t; idx < steps / 2 gives start + step * idx, else end - step * (steps -
    # idx - 1)
    steps, f32 = n_bins + 1, np.float32
    step = (f32(1.0) - f32(0.0)) / f32(steps - 1)
    return [
        f32(0.0) + step * f32(idx)
        if idx < steps // 2
        else f32(1.0) - step * f32(steps - idx - 1)
        for idx in range(steps)
    ]


def torchmetrics_ece_loop(p_hat, hit, n_bins):
    """Return bins and ECE as torchmetrics 1.x _binning_bucketize and _ce_compute do."""
    conf = np.asarray(p_hat, dtype=np.float32)  # confidences.float()
    edges = torch_linspace_float32(n_bins)
    # torch.bucketize(x, edges, right=True) is the i with edges[i-1] <= x < edges[i],
    # i.e. the number of edges <= x; minus 1 gives the bin, n_bins for x = 1.0
    bins = np.array([sum(e <= x for e in edges) - 1 for x in conf])
    ece = np.float32(0.0)
    for m in range(n_bins + 1):  # count_bin has len(bin_boundaries) entries
        in_bin = bins == m
        if in_bin.any():
            gap = abs(hit[in_bin].astype(np.float32).mean() - conf[in_bin].mean())
            ece += gap * np.float32(in_bin.mean())
    return bins, float(ece)


def right_closed_loop(p_hat, n_bins):
    """Return the bin of each point when bin m is (m/M, (m+1)/M], float64 edges."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = []
    for x in p_hat:
        bins.append(next(m for m in range(n_bins) if edges[m] < x <= edges[m + 1]))
    return np.array(bins)


def on_edge_probs(seed, edges):
    """Return K=20 probabilities whose confidences sit on, just below and off edges."""
    k = 20
    targets = [float(e) for e in edges]  # each edge exactly, as float64
    targets += [float(np.nextafter(np.float32(t), np.float32(0))) for t in targets]
    targets += [1.0 - 1e-9, 1.0 - 1e-6]
    targets += list(np.random.default_rng(seed).uniform(0.0, 1.0, 200))
    # class 0 holds c and is the arg-max only when c > (1 - c) / 19, i.e. c > 1/20
    c = np.array([t for t in targets if t > 1 / k])
    probs = np.empty((c.size, k))  # max_k p_k = c exactly
    probs[:, 0] = c
    probs[:, 1:] = ((1.0 - c) / (k - 1))[:, None]
    return probs


@pytest.mark.parametrize("n_bins", [1, 3, 4, 10, 15, 20])
def test_torchmetrics_rule_matches_a_loop_of_torchmetrics_code(n_bins):
    probs = on_edge_probs(n_bins, torch_linspace_float32(n_bins))
    rng = np.random.default_rng(n_bins)
    labels = rng.integers(0, 2, size=probs.shape[0])  # right where label is 0
    kw = dict(n_bins=n_bins, binning="equal_width_torchmetrics", from_logits=False)
    bins, ece = torchmetrics_ece_loop(probs[:, 0], labels == 0, n_bins)
    np.testing.assert_array_equal(metrics.bin_index(probs, **kw), bins)
    cal = metrics.calibration(probs, labels, **kw)
    np.testing.assert_array_equal(cal.count, np.bincount(bins, minlength=n_bins + 1))
    # torchmetrics averages in float32, reglab in float64: agree to float32 rounding
    assert cal.ece == pytest.approx(ece, abs=1e-6)


@pytest.mark.parametrize("n_bins", [1, 3, 4, 10, 15, 20])
def test_closed_last_rule_matches_numpy_histogram(n_bins):
    probs = on_edge_probs(n_bins, np.linspace(0.0, 1.0, n_bins + 1))
    labels = np.random.default_rng(n_bins).integers(0, 2, size=probs.shape[0])
    p_hat, hit = probs[:, 0], (labels == 0).astype(float)
    count, _ = np.histogram(p_hat, bins=n_bins, range=(0.0, 1.0))
    conf_sum, _ = np.histogram(p_hat, bins=n_bins, range=(0.0, 1.0), weights=p_hat)
    hit_sum, _ = np.histogram(p_hat, bins=n_bins, range=(0.0, 1.0), weights=hit)
    cal = metrics.calibration(
        probs,
        labels,
        n_bins=n_bins,
        binning="equal_width_closed_last",
        from_logits=False,
    )
    np.testing.assert_array_equal(cal.count, count)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(cal.conf, conf_sum / count, rtol=1e-12)
        np.testing.assert_allclose(cal.acc, hit_sum / count, rtol=1e-12)


@pytest.mark.parametrize("n_bins", [1, 3, 4, 10, 15, 20])
def test_right_closed_rule_matches_a_plain_loop_on_the_edges(n_bins):
    probs = on_edge_probs(n_bins, np.linspace(0.0, 1.0, n_bins + 1))
    got = metrics.bin_index(
        probs, n_bins=n_bins, binning="equal_width", from_logits=False
    )
    np.testing.assert_array_equal(got, right_closed_loop(probs[:, 0], n_bins))
