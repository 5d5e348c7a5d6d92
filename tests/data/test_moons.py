"""Tests for reglab.data.moons: the two-moons generator and the experiment presets."""

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.datasets import make_moons as sklearn_make_moons
from sklearn.neighbors import KNeighborsClassifier

from reglab.data.moons import (
    DROPOUT_MOONS,
    WEIGHT_DECAY_MOONS,
    MoonsPreset,
    make_moons,
    make_moons_test,
)


@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_clean_moons_match_sklearn_make_moons_in_distribution(noise):
    # sklearn places points on an even grid of angles, we draw angles uniformly: the
    # two distributions agree, so every 1-d projection of each class must pass a
    # two-sample KS test (p > 1e-4 each, 2 classes x 4 projections x 2 noises)
    n = 20_000
    ours = make_moons(n, noise=noise, flip_fraction=0.0, seed=3)
    x_ref, y_ref = sklearn_make_moons(n, noise=noise, random_state=3)
    angles = np.linspace(0, np.pi, 4, endpoint=False)
    directions = np.stack([np.cos(angles), np.sin(angles)])  # (2, 4)
    for label in (0, 1):
        a = ours.x[ours.y_clean == label] @ directions
        b = x_ref[y_ref == label] @ directions
        assert len(a) == len(b) == n // 2
        for k in range(directions.shape[1]):
            assert ks_2samp(a[:, k], b[:, k]).pvalue > 1e-4, (label, k)


def test_moons_shifted_by_a_tenth_fail_the_sklearn_comparison():
    # the KS check above is sharp enough to see a small geometric error
    ours = make_moons(20_000, noise=0.1, flip_fraction=0.0, seed=0)
    x_ref, y_ref = sklearn_make_moons(20_000, noise=0.1, random_state=0)
    a = ours.x[ours.y_clean == 1, 1] + 0.1
    assert ks_2samp(a, x_ref[y_ref == 1, 1]).pvalue < 1e-6


def test_flip_rate_is_within_five_sigma_and_flipped_marks_exactly_the_changes():
    n, p = 50_000, 0.1
    m = make_moons(n, noise=0.1, flip_fraction=p, seed=1)
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(m.flipped.mean() - p) < 5 * sigma
    np.testing.assert_array_equal(m.flipped, m.y != m.y_clean)
    np.testing.assert_array_equal(m.y[m.flipped], 1 - m.y_clean[m.flipped])


def test_dtypes_shapes_and_exact_class_balance():
    m = make_moons(251, noise=0.1, flip_fraction=0.1, seed=0)
    assert m.x.shape == (251, 2) and m.x.dtype == np.float32
    assert m.y.dtype == m.y_clean.dtype == np.int32 and m.flipped.dtype == bool
    assert np.bincount(m.y_clean).tolist() == [125, 126]


def test_noiseless_points_lie_exactly_on_their_half_circles():
    m = make_moons(1000, noise=0.0, flip_fraction=0.0, seed=0)
    upper, lower = m.x[m.y_clean == 0], m.x[m.y_clean == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0, atol=1e-6)
    assert (upper[:, 1] >= 0).all()
    np.testing.assert_allclose(
        np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, atol=1e-6
    )
    assert (lower[:, 1] <= 0.5 + 1e-6).all()


def test_same_seed_is_bitwise_reproducible_and_other_seeds_differ():
    a = make_moons(100, noise=0.2, flip_fraction=0.1, seed=7)
    b = make_moons(100, noise=0.2, flip_fraction=0.1, seed=7)
    c = make_moons(100, noise=0.2, flip_fraction=0.1, seed=8)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.x, c.x)


def test_test_set_is_clean_and_independent_of_the_training_draw():
    train = make_moons(500, noise=0.1, flip_fraction=0.1, seed=0)
    test = make_moons_test(500, noise=0.1, seed=0)
    assert not test.flipped.any()
    np.testing.assert_array_equal(test.y, test.y_clean)
    assert len(np.intersect1d(train.x[:, 0], test.x[:, 0])) == 0


def test_presets_have_the_posts_sizes_and_flip_rates():
    assert (WEIGHT_DECAY_MOONS.n, WEIGHT_DECAY_MOONS.flip_fraction) == (250, 0.10)
    assert (DROPOUT_MOONS.n, DROPOUT_MOONS.flip_fraction) == (300, 0.0)
    assert DROPOUT_MOONS.noise > WEIGHT_DECAY_MOONS.noise
    train = WEIGHT_DECAY_MOONS.train(seed=0)
    assert len(train.x) == 250 and train.flipped.any()
    assert not DROPOUT_MOONS.train(seed=0).flipped.any()
    assert len(DROPOUT_MOONS.test(1000, seed=0).x) == 1000


def _bayes_error_estimate(noise):
    """Return the test error of a large-sample 101-NN, a near-Bayes classifier."""
    train = make_moons(20_000, noise=noise, flip_fraction=0.0, seed=0)
    test = make_moons_test(10_000, noise=noise, seed=0)
    knn = KNeighborsClassifier(101).fit(train.x, train.y)
    return 1.0 - knn.score(test.x, test.y)


def test_weight_decay_moons_are_separable_and_dropout_moons_overlap():
    # the post: the section 2.1 moons separate cleanly once flips are ignored; the
    # section 3 moons are "not cleanly separated"
    assert _bayes_error_estimate(WEIGHT_DECAY_MOONS.noise) < 0.01
    assert _bayes_error_estimate(DROPOUT_MOONS.noise) > 0.05


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n=1, noise=0.1, flip_fraction=0.1), r"n must be an int >= 2.*got 1"),
        (dict(n=10, noise=-0.1, flip_fraction=0.1), r"noise must be .*>= 0, got -0.1"),
        (
            dict(n=10, noise=0.1, flip_fraction=1.5),
            r"flip_fraction .*\[0, 1\], got 1.5",
        ),
        (dict(n=10, noise=0.1, flip_fraction=float("nan")), r"flip_fraction"),
    ],
)
def test_bad_arguments_raise_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_moons(**kwargs, seed=0)
    with pytest.raises(ValueError, match=match):
        MoonsPreset(**kwargs)
