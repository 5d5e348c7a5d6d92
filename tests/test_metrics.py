"""Tests for reglab.metrics: hand-worked examples, plain-loop oracles, scikit-learn."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from reglab import metrics

LN3 = math.log(3.0)


def binary_logits(p_hat: list[float]) -> np.ndarray:
    """Return K=2 logits [0, logit(p)] that predict class 1 with confidence p > 1/2."""
    p = np.asarray(p_hat, dtype=np.float64)
    return np.stack([np.zeros_like(p), np.log(p / (1.0 - p))], axis=-1)


def random_problem(seed: int, n: int = 200, k: int = 10, scale: float = 3.0):
    """Return random logits (n, k) and labels (n,) drawn from one seed."""
    rng = np.random.default_rng(seed)
    return scale * rng.normal(size=(n, k)), rng.integers(0, k, size=n)


def plain_softmax(z: np.ndarray) -> np.ndarray:
    """Return softmax(z) row by row, written out without shared helpers."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- point metrics: hand-worked ----------------------------------------------------


def test_accuracy_hand_worked():
    logits = [[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 0.5], [0.0, 0.0, 5.0]]
    # predictions 0, 1, 0, 2 against labels 0, 1, 2, 2: three of four right
    assert metrics.accuracy(logits, [0, 1, 2, 2]) == pytest.approx(0.75, abs=1e-15)


def test_nll_hand_worked():
    # softmax([0, ln 3]) = [1/4, 3/4]; softmax([ln 3, 0]) = [3/4, 1/4]
    logits = [[0.0, LN3], [LN3, 0.0]]
    expected = (math.log(4 / 3) + math.log(4.0)) / 2  # -ln(3/4), -ln(1/4)
    assert metrics.nll(logits, [1, 1]) == pytest.approx(expected, rel=1e-14)


def test_nll_is_stable_for_huge_logits():
    # -log p = logsumexp(z) - z_y; exp(1000) would overflow a naive softmax
    assert metrics.nll([[1000.0, 0.0]], [1]) == pytest.approx(1000.0, rel=1e-15)
    assert metrics.nll([[1000.0, 0.0]], [0]) == pytest.approx(0.0, abs=1e-300)


def test_brier_hand_worked():
    # p = [1/4, 3/4]: label 1 gives (1/4)^2 + (1/4)^2 = 1/8, label 0 gives 9/8
    assert metrics.brier_score([[0.0, LN3]] * 2, [1, 0]) == pytest.approx(5 / 8)
    # uniform p over K classes: (1 - 1/K)^2 + (K - 1)/K^2 = 1 - 1/K
    assert metrics.brier_score(np.zeros((3, 4)), [0, 1, 3]) == pytest.approx(3 / 4)


def test_confidence_and_log_confidence_hand_worked():
    # softmax([0, ln 3]) = [1/4, 3/4]; softmax([ln 2, ln 2, 0]) = [2/5, 2/5, 1/5]
    logits = [[0.0, LN3, -np.inf], [math.log(2.0), math.log(2.0), 0.0]]
    np.testing.assert_allclose(metrics.confidence(logits), [0.75, 0.4], rtol=1e-14)
    expected = [math.log(0.75), math.log(0.4)]  # a tied arg-max is counted once
    np.testing.assert_allclose(metrics.log_confidence(logits), expected, rtol=1e-14)


def test_log_confidence_separates_points_whose_float32_confidence_is_one():
    margins = np.array([40.0, 50.0, 60.0])
    logits = np.stack([np.zeros(3), margins], axis=-1).astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert np.all((e / e.sum(axis=1, keepdims=True)).max(axis=1) == 1.0)  # premise
    # log p_max = -log(1 + exp(-margin)) = -exp(-margin) to 1e-17 relative
    log_conf = metrics.log_confidence(logits)
    np.testing.assert_allclose(log_conf, -np.exp(-margins), rtol=1e-12)
    assert np.all(np.diff(log_conf) > 0)


# --- point metrics: scikit-learn and leading axes ----------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_point_metrics_match_scikit_learn(seed):
    logits, labels = random_problem(seed, k=2)
    p = plain_softmax(logits)
    assert metrics.accuracy(logits, labels) == accuracy_score(labels, p.argmax(1))
    expected_nll = log_loss(labels, p, labels=[0, 1])
    assert metrics.nll(logits, labels) == pytest.approx(expected_nll, rel=1e-12)
    # our Brier sums over both classes; scikit-learn's binary one scores p_1 only,
    # and (p_0 - y_0)^2 = (p_1 - y_1)^2, so ours is exactly twice theirs
    expected_brier = 2 * brier_score_loss(labels, p[:, 1])
    assert metrics.brier_score(logits, labels) == pytest.approx(expected_brier)


def test_metrics_keep_leading_axes_and_broadcast_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 40, 5))  # (seeds, strengths, N, K)
    labels = rng.integers(0, 5, size=40)  # shared by every member
    for fn in (metrics.accuracy, metrics.nll, metrics.brier_score):
        batched = fn(logits, labels)
        assert batched.shape == (2, 3)
        looped = [[fn(logits[i, j], labels) for j in range(3)] for i in range(2)]
        np.testing.assert_allclose(batched, looped, rtol=1e-14)
    assert metrics.confidence(logits).shape == (2, 3, 40)


def test_metrics_accept_jax_arrays():
    logits, labels = random_problem(3, n=20, k=4)
    got = metrics.nll(jnp.asarray(logits, jnp.float32), jnp.asarray(labels))
    want = metrics.nll(logits.astype(np.float32), labels)
    assert got == pytest.approx(want, rel=1e-12)


# --- calibration: hand-worked ------------------------------------------------------


def test_equal_mass_ece_hand_worked():
    # confidences 0.6, 0.7, 0.8, 0.9, right/wrong/right/right; two bins of two:
    # bin 1 conf 0.65 acc 0.5, bin 2 conf 0.85 acc 1.0; ECE = 0.5*0.15 + 0.5*0.15
    logits = binary_logits([0.8, 0.6, 0.9, 0.7])  # order must not matter
    cal = metrics.calibration(logits, [1, 1, 1, 0], n_bins=2)
    assert cal.ece == pytest.approx(0.15, abs=1e-14)
    np.testing.assert_allclose(cal.conf, [0.65, 0.85], atol=1e-14)
    np.testing.assert_allclose(cal.acc, [0.5, 1.0], atol=1e-14)
    np.testing.assert_array_equal(cal.count, [2, 2])
    assert cal.n_effective_bins == 2


def test_equal_width_ece_hand_worked():
    # bins (0, .2], ..., (.8, 1]: 0.55 right -> bin 3; 0.65 wrong, 0.75 right -> bin 4;
    # 0.95 right -> bin 5. ECE = 1/4*0.45 + 2/4*|0.7 - 0.5| + 1/4*0.05 = 0.225
    logits = binary_logits([0.55, 0.65, 0.75, 0.95])
    cal = metrics.calibration(logits, [1, 0, 1, 1], n_bins=5, binning="equal_width")
    assert cal.ece == pytest.approx(0.225, abs=1e-14)
    np.testing.assert_array_equal(cal.count, [0, 0, 1, 2, 1])
    np.testing.assert_allclose(cal.conf, [np.nan, np.nan, 0.55, 0.7, 0.95], atol=1e-14)
    np.testing.assert_allclose(cal.acc, [np.nan, np.nan, 1.0, 0.5, 1.0], atol=1e-14)
    assert cal.n_effective_bins == 3


def test_equal_width_bins_are_closed_on_the_right():
    # p_hat = 0.5 exactly belongs to (0, 0.5]; p_hat = 1.0 exactly to (0.5, 1]
    cal = metrics.calibration(
        [[0.0, 0.0], [0.0, 800.0]], [0, 1], n_bins=2, binning="equal_width"
    )
    np.testing.assert_array_equal(cal.count, [1, 1])
    np.testing.assert_array_equal(cal.conf, [0.5, 1.0])


@pytest.mark.parametrize("binning", metrics.BINNINGS)
def test_one_bin_ece_is_gap_between_mean_confidence_and_accuracy(binning):
    logits, labels = random_problem(4)
    p = plain_softmax(logits)
    expected = abs(p.max(1).mean() - (p.argmax(1) == labels).mean())
    cal = metrics.calibration(logits, labels, n_bins=1, binning=binning)
    assert cal.ece == pytest.approx(expected, rel=1e-12)


# --- calibration: plain-loop oracles -----------------------------------------------


def ece_equal_width_loop(logits, labels, n_bins):
    """ECE over right-closed bins (lo, hi] of the max softmax probability."""
    p = plain_softmax(np.asarray(logits, dtype=np.float64))
    conf, hit = p.max(axis=1), (p.argmax(axis=1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.mean() > 0:
            ece += abs(conf[in_bin].mean() - hit[in_bin].mean()) * in_bin.mean()
    return ece


def ece_equal_mass_loop(logits, labels, n_bins):
    """ECE over contiguous equal-size groups of points sorted by confidence."""
    p = plain_softmax(np.asarray(logits, dtype=np.float64))
    conf, hit = p.max(axis=1), (p.argmax(axis=1) == labels).astype(float)
    ece = 0.0
    for group in np.array_split(np.argsort(conf), n_bins):
        if group.size:
            ece += abs(conf[group].mean() - hit[group].mean()) * group.size / conf.size
    return ece


@pytest.mark.parametrize("n_bins", [1, 7, 10, 15])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_width_ece_matches_right_closed_loop(seed, n_bins):
    logits, labels = random_problem(seed, n=300)
    cal = metrics.calibration(logits, labels, n_bins=n_bins, binning="equal_width")
    expected = ece_equal_width_loop(logits, labels, n_bins)
    assert cal.ece == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("n_bins", [1, 4, 15, 299, 400])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_mass_ece_matches_plain_loop(seed, n_bins):
    logits, labels = random_problem(seed, n=299)
    cal = metrics.calibration(logits, labels, n_bins=n_bins)
    expected = ece_equal_mass_loop(logits, labels, n_bins)
    assert cal.ece == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert cal.count.sum() == 299


def test_calibration_keeps_leading_axes():
    rng = np.random.default_rng(5)
    logits = 3 * rng.normal(size=(2, 3, 50, 4))
    labels = rng.integers(0, 4, size=(3, 50))  # one label set per strength
    for binning in metrics.BINNINGS:
        batched = metrics.calibration(logits, labels, n_bins=6, binning=binning)
        extra = binning == "equal_width_torchmetrics"  # its bin for p_hat = 1.0
        assert batched.conf.shape == (2, 3, 6 + extra)
        for i in range(2):
            for j in range(3):
                single = metrics.calibration(
                    logits[i, j], labels[j], n_bins=6, binning=binning
                )
                for got, want in zip(batched, single, strict=True):
                    np.testing.assert_allclose(got[i, j], want, rtol=1e-14)


# --- calibration: saturation and ties ----------------------------------------------


def test_equal_mass_bins_stay_distinct_when_float32_confidence_saturates():
    margins = np.linspace(40.0, 80.0, 150)
    logits = np.stack([np.zeros(150), margins], axis=-1).astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    conf32 = (e / e.sum(axis=1, keepdims=True)).max(axis=1)
    # premise: every float32 confidence is 1.0, so quantile edges all coincide
    assert np.unique(np.quantile(conf32, np.linspace(0, 1, 16))).size == 1
    cal = metrics.calibration(logits, np.ones(150, dtype=int))
    assert cal.n_effective_bins == 15
    np.testing.assert_array_equal(cal.count, np.full(15, 10))
    width = metrics.calibration(logits, np.ones(150, int), binning="equal_width")
    assert width.n_effective_bins == 1  # all 150 points in (14/15, 1]


def test_exactly_tied_points_count_as_one_effective_bin():
    logits = np.tile([[0.0, 2.0, 1.0]], (30, 1))  # 30 identical rows
    labels = np.array([1] * 20 + [0] * 10)
    cal = metrics.calibration(logits, labels, n_bins=15)
    assert cal.n_effective_bins == 1
    # a tie is split in input order (stable sort), never merged: bins 1-10 hold the
    # 20 right points, bins 11-15 the 10 wrong ones, so the ECE is
    # 20/30 |p - 1| + 10/30 |p - 0|; n_effective_bins = 1 is the warning sign
    np.testing.assert_array_equal(cal.acc, [1.0] * 10 + [0.0] * 5)
    p_hat = math.exp(2.0) / (1 + math.exp(1.0) + math.exp(2.0))
    assert cal.ece == pytest.approx(2 / 3 * (1 - p_hat) + p_hat / 3, rel=1e-12)


def test_fewer_points_than_bins_leaves_empty_bins_nan():
    cal = metrics.calibration(binary_logits([0.6, 0.7, 0.9]), [1, 0, 1], n_bins=5)
    np.testing.assert_array_equal(cal.count, [1, 1, 1, 0, 0])
    np.testing.assert_allclose(cal.conf, [0.6, 0.7, 0.9, np.nan, np.nan], atol=1e-14)
    assert cal.n_effective_bins == 3
    assert cal.ece == pytest.approx((0.4 + 0.7 + 0.1) / 3, abs=1e-14)


# --- calibration: probabilities and bin indices ---------------------------------------


def test_calibration_of_probabilities_hand_worked():
    # p_hat 0.7, 0.9, 1.0, 0.5 (a tie: class 0) predicting 1, 0, 0, 0; labels 1, 1, 0, 1
    # bins (0, .5], (.5, 1]: bin 0 conf .5 acc 0; bin 1 conf 2.6/3 acc 2/3
    # ECE = 1/4 * 0.5 + 3/4 * |2.6/3 - 2/3| = 0.275
    probs = [[0.3, 0.7], [0.9, 0.1], [1.0, 0.0], [0.5, 0.5]]
    cal = metrics.calibration(
        probs, [1, 1, 0, 1], n_bins=2, binning="equal_width", from_logits=False
    )
    assert cal.ece == pytest.approx(0.275, abs=1e-15)
    np.testing.assert_allclose(cal.conf, [0.5, 2.6 / 3], atol=1e-15)
    np.testing.assert_allclose(cal.acc, [0.0, 2 / 3], atol=1e-15)


def test_probabilities_keep_their_confidence_where_log_p_would_perturb_it():
    probs = np.random.default_rng(9).dirichlet(np.full(3, 0.05), size=500)  # peaked
    labels = probs.argmax(axis=1)
    # one point per member, one bin: conf is that point's confidence
    kw = dict(n_bins=1, binning="equal_width")
    via_probs = metrics.calibration(
        probs[:, None], labels[:, None], from_logits=False, **kw
    ).conf[:, 0]
    np.testing.assert_array_equal(via_probs, probs.max(axis=1))  # exactly
    with np.errstate(divide="ignore"):  # log(0) = -inf: a class of probability 0
        log_p = np.log(probs[:, None])
    via_log = metrics.calibration(log_p, labels[:, None], **kw)
    assert (via_log.conf[:, 0] != probs.max(axis=1)).any()  # why from_logits exists
    np.testing.assert_allclose(via_log.conf[:, 0], probs.max(axis=1), rtol=1e-14)


@pytest.mark.parametrize("binning", metrics.BINNINGS)
def test_probabilities_and_their_logits_give_the_same_calibration(binning):
    logits, labels = random_problem(10, n=300)
    kw = dict(n_bins=10, binning=binning)
    want = metrics.calibration(logits, labels, **kw)
    got = metrics.calibration(plain_softmax(logits), labels, from_logits=False, **kw)
    np.testing.assert_array_equal(got.count, want.count)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    boot = dict(n_boot=20, seed=3, **kw)
    np.testing.assert_allclose(
        metrics.ece_bootstrap_interval(
            plain_softmax(logits), labels, from_logits=False, **boot
        ),
        metrics.ece_bootstrap_interval(logits, labels, **boot),
        rtol=1e-12,
    )


def test_equal_mass_bin_index_hand_worked():
    # sorted confidences 0.6, 0.7 | 0.8, 0.9 -> bins 0 | 1, reported in input order
    logits = binary_logits([0.8, 0.6, 0.9, 0.7])
    np.testing.assert_array_equal(metrics.bin_index(logits, n_bins=2), [1, 0, 1, 0])
    # identical rows split in input order, as calibration splits them
    ties = metrics.bin_index(np.zeros((5, 3)), n_bins=2)
    np.testing.assert_array_equal(ties, [0, 0, 0, 1, 1])


@pytest.mark.parametrize("binning", metrics.BINNINGS)
def test_bin_index_reproduces_calibration_counts_and_means(binning):
    rng = np.random.default_rng(11)
    logits, labels = 3 * rng.normal(size=(2, 80, 4)), rng.integers(0, 4, size=80)
    index = metrics.bin_index(logits, n_bins=7, binning=binning)  # (2, 80)
    cal = metrics.calibration(logits, labels, n_bins=7, binning=binning)
    p_hat = metrics.confidence(logits)
    for m in range(2):
        count = np.bincount(index[m], minlength=cal.count.shape[-1])
        np.testing.assert_array_equal(count, cal.count[m])
        sums = np.bincount(index[m], weights=p_hat[m], minlength=count.size)
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(sums / count, cal.conf[m], rtol=1e-12)


# --- bootstrap ---------------------------------------------------------------------


@pytest.mark.parametrize("binning", metrics.BINNINGS)
def test_bootstrap_matches_plain_resampling_loop(binning):
    logits, labels = random_problem(6, n=120, k=3)
    members = np.stack([logits, 0.5 * logits])  # (2, N, K): paired resamples
    got = metrics.ece_bootstrap_interval(
        members, labels, n_bins=8, binning=binning, n_boot=64, level=0.9, seed=11
    )
    # the documented draw: default_rng(seed).integers(0, N, size=(n_boot, N))
    draws = np.random.default_rng(11).integers(0, 120, size=(64, 120))
    for m in range(2):
        eces = [
            metrics.calibration(members[m][d], labels[d], n_bins=8, binning=binning).ece
            for d in draws
        ]
        np.testing.assert_allclose(
            [got.low[m], got.high[m]], np.quantile(eces, [0.05, 0.95]), rtol=1e-12
        )


def test_bootstrap_is_reproducible_and_seed_dependent():
    logits, labels = random_problem(7, n=100)
    a = metrics.ece_bootstrap_interval(logits, labels, n_boot=50, seed=1)
    b = metrics.ece_bootstrap_interval(logits, labels, n_boot=50, seed=1)
    c = metrics.ece_bootstrap_interval(logits, labels, n_boot=50, seed=2)
    assert a == b
    assert a != c
    assert a.low <= a.high


def test_bootstrap_collapses_when_every_point_is_the_same():
    logits, labels = np.tile([[0.0, LN3]], (40, 1)), np.ones(40, dtype=int)
    got = metrics.ece_bootstrap_interval(logits, labels, n_boot=30)
    assert got.low == pytest.approx(0.25, abs=1e-14)  # |3/4 - 1| on every resample
    assert got.high == pytest.approx(0.25, abs=1e-14)


# --- overconfidence ----------------------------------------------------------------


def test_wrong_confidence_cdf_and_fraction_hand_worked():
    # wrong predictions at confidences 0.9 and 0.65
    logits, labels = binary_logits([0.9, 0.55, 0.65, 0.75]), [0, 1, 0, 1]
    cdf = metrics.wrong_confidence_cdf(logits, labels)
    np.testing.assert_allclose(cdf.confidence, [0.65, 0.9], atol=1e-14)
    np.testing.assert_array_equal(cdf.cdf, [0.5, 1.0])
    assert metrics.fraction_confident_wrong(logits, labels) == 0.5  # 0.9 > 0.8
    assert metrics.fraction_confident_wrong(logits, labels, threshold=0.6) == 1.0


def test_a_model_without_mistakes_has_empty_cdf_and_nan_fraction():
    logits, labels = binary_logits([0.9, 0.7]), [1, 1]
    assert metrics.wrong_confidence_cdf(logits, labels).confidence.size == 0
    assert np.isnan(metrics.fraction_confident_wrong(logits, labels))


def test_fraction_confident_wrong_keeps_leading_axes():
    rng = np.random.default_rng(8)
    logits, labels = 4 * rng.normal(size=(3, 60, 5)), rng.integers(0, 5, size=60)
    got = metrics.fraction_confident_wrong(logits, labels)
    for m in range(3):
        cdf = metrics.wrong_confidence_cdf(logits[m], labels)
        assert got[m] == pytest.approx((cdf.confidence > 0.8).mean(), abs=1e-15)


# --- temperature scaling -----------------------------------------------------------


def test_fit_temperature_hand_worked_binary():
    # every point has logits [0, 2]; 3 of 4 labels are 1, so the best p_1 is 3/4:
    # sigmoid(2 / T) = 3/4 -> T = 2 / ln 3, and the NLL is the entropy H(3/4)
    logits, labels = np.tile([[0.0, 2.0]], (4, 1)), [1, 1, 1, 0]
    fit = metrics.fit_temperature(logits, labels)
    # the NLL is flat (quadratic) at its minimum, so comparing NLL values pins T
    # down to about sqrt(float64 eps) ~ 1e-8 relative
    assert fit.temperature == pytest.approx(2 / LN3, rel=1e-7)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert fit.nll == pytest.approx(entropy, rel=1e-12)


def test_fit_temperature_stops_at_the_lower_bound_for_separable_data():
    # every prediction right: sharper is always better, down to T = 0.05
    fit = metrics.fit_temperature(binary_logits([0.6, 0.8, 0.9]), [1, 1, 1])
    assert fit.temperature == 0.05
    fit = metrics.fit_temperature(binary_logits([0.6, 0.8]), [0, 0])
    assert fit.temperature == 20.0  # every prediction wrong: flatten to T = 20


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    k=st.integers(2, 6),
    scale=st.floats(0.01, 30.0),
)
def test_fitted_nll_is_never_above_nll_at_t_one_nor_at_any_grid_t(seed, n, k, scale):
    rng = np.random.default_rng(seed)
    logits, labels = scale * rng.normal(size=(n, k)), rng.integers(0, k, size=n)
    fit = metrics.fit_temperature(logits, labels)
    assert 0.05 <= fit.temperature <= 20.0
    assert fit.nll <= metrics.nll(logits, labels)  # T = 1, exactly
    assert fit.nll == pytest.approx(metrics.nll(logits / fit.temperature, labels))
    for t in np.geomspace(0.05, 20.0, 33):
        assert fit.nll <= metrics.nll(logits / t, labels) + 1e-9


def test_fit_temperature_accepts_log_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.25, 0.25]])
    fit = metrics.fit_temperature(np.log(probs), [0, 2, 1])
    assert fit.nll <= metrics.nll(np.log(probs), [0, 2, 1])


# --- input validation --------------------------------------------------------------

LOGITS = binary_logits([0.6, 0.7, 0.9])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: metrics.nll(LOGITS, [1, 0]), ValueError, r"labels of shape \(2,\)"),
        (lambda: metrics.accuracy(LOGITS, [0, 2, 1]), ValueError, r"in \[0, 2\).*2"),
        (lambda: metrics.brier_score(LOGITS, [0, -1, 1]), ValueError, r"got -1"),
        (lambda: metrics.nll(LOGITS, [0.0, 1.0, 1.0]), TypeError, r"astype\(int\)"),
        (lambda: metrics.confidence([0.1, 0.9]), ValueError, r"logits\[None, :\]"),
        (lambda: metrics.nll([[np.nan, 0.0]], [0]), ValueError, r"got nan"),
        (lambda: metrics.nll([[np.inf, 0.0]], [0]), ValueError, r"got inf"),
        (lambda: metrics.nll([[-np.inf, -np.inf]], [0]), ValueError, r"all -inf"),
        (
            lambda: metrics.calibration(LOGITS, [1, 1, 1], n_bins=0),
            ValueError,
            r"n_bins must be >= 1, got 0",
        ),
        (
            lambda: metrics.calibration(LOGITS, [1, 1, 1], n_bins=2.5),
            TypeError,
            r"n_bins must be an int",
        ),
        (
            lambda: metrics.calibration(LOGITS, [1, 1, 1], binning="quantile"),
            ValueError,
            r"binning must be one of .*'quantile'",
        ),
        (
            lambda: metrics.ece_bootstrap_interval(LOGITS, [1, 1, 1], n_boot=0),
            ValueError,
            r"n_boot must be >= 1, got 0",
        ),
        (
            lambda: metrics.ece_bootstrap_interval(LOGITS, [1, 1, 1], level=1.0),
            ValueError,
            r"level must be in \(0, 1\), got 1.0",
        ),
        (
            lambda: metrics.fraction_confident_wrong(LOGITS, [1, 1, 1], threshold=80),
            ValueError,
            r"threshold must be in \[0, 1\], got 80",
        ),
        (
            lambda: metrics.wrong_confidence_cdf(LOGITS[None], [1, 1, 1]),
            ValueError,
            r"once per member",
        ),
        (
            lambda: metrics.fit_temperature(LOGITS, [1, 1, 1], bounds=(2.0, 5.0)),
            ValueError,
            r"bounds must satisfy 0 < low <= 1 <= high.*\(2.0, 5.0\)",
        ),
        (
            lambda: metrics.fit_temperature(plain_softmax(LOGITS), [1, 1, 1]),
            ValueError,
            r"pass logits, not probabilities: use log\(probs\)",
        ),
        (
            lambda: metrics.calibration([[0.5, -0.1]], [0], from_logits=False),
            ValueError,
            r"probs must be finite and >= 0, got -0.1 at index \(0, 1\).*from_logits",
        ),
        (
            lambda: metrics.calibration([[0.5, np.nan]], [0], from_logits=False),
            ValueError,
            r"probs must be finite and >= 0, got nan",
        ),
        (
            lambda: metrics.bin_index([[0.2, 0.1], [0.5, 0.5]], from_logits=False),
            ValueError,
            r"sum to 1 \(within 0.0001\), got 0.3.* for row \(0,\).*probs.sum",
        ),
        (
            lambda: metrics.calibration([0.5, 0.5], [0], from_logits=False),
            ValueError,
            r"probs must have shape .*got shape \(2,\).*probs\[None, :\]",
        ),
        (
            lambda: metrics.calibration([[0.5, 0.5]], [0, 1], from_logits=False),
            ValueError,
            r"do not match probs of shape \(1, 2\)",
        ),
        (
            lambda: metrics.calibration(LOGITS, [1, 1, 1], from_logits="yes"),
            TypeError,
            r"from_logits must be a bool, got 'yes'",
        ),
    ],
)
def test_bad_inputs_raise_naming_value_rule_and_fix(call, error, match):
    with pytest.raises(error, match=match):
        call()
