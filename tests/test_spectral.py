"""Tests for reglab.spectral: synthetic inputs and weight changes with known answers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA

from reglab import spectral


def random_orthogonal(d: int, seed: int) -> np.ndarray:
    """Return a (d, d) orthogonal matrix from the QR of a Gaussian matrix."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def data_with_covariance(variances, rotation, n: int, seed: int) -> np.ndarray:
    """Return x (n, D) whose sample covariance is exactly R diag(variances) R^T."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, len(variances)))
    u, _ = np.linalg.qr(a - a.mean(axis=0))  # centred orthonormal columns
    scale = np.sqrt((n - 1) * np.asarray(variances))
    return (u * scale) @ rotation.T + rng.normal(size=len(variances))  # + offset


# --- principal components ----------------------------------------------------------


def test_principal_components_recover_a_known_rotated_covariance():
    variances = np.array([9.0, 5.0, 3.0, 2.0, 1.0, 0.5])
    rotation = random_orthogonal(6, seed=0)
    x = data_with_covariance(variances, rotation, n=200, seed=1)
    pcs = spectral.principal_components(x)
    np.testing.assert_allclose(pcs.eigenvalues, variances, rtol=1e-10)
    # v_k = +-(k-th column of the rotation): |V^T R| is the identity
    overlap = np.abs(pcs.components.T @ rotation)
    np.testing.assert_allclose(overlap, np.eye(6), atol=1e-9)


def test_principal_components_match_scikit_learn_pca():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))  # correlated features
    pcs = spectral.principal_components(x)
    pca = PCA(n_components=8).fit(x)
    np.testing.assert_allclose(pcs.eigenvalues, pca.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(
        np.abs(np.sum(pcs.components.T * pca.components_, axis=1)), 1.0, atol=1e-10
    )


def test_components_are_orthonormal_with_largest_entry_positive():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 7)) @ rng.normal(size=(7, 7))
    V = spectral.principal_components(x).components
    np.testing.assert_allclose(V.T @ V, np.eye(7), atol=1e-12)
    assert np.all(V[np.abs(V).argmax(axis=0), np.arange(7)] > 0)
    # x -> -x keeps the covariance, so the sign convention must give the same V
    np.testing.assert_array_equal(spectral.principal_components(-x).components, V)


def test_principal_components_ignore_a_constant_shift():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 5)) * [3.0, 2.0, 1.5, 1.0, 0.5]
    shifted = spectral.principal_components(x + 100.0)
    base = spectral.principal_components(x)
    np.testing.assert_allclose(shifted.eigenvalues, base.eigenvalues, rtol=1e-9)
    np.testing.assert_allclose(shifted.components, base.components, atol=1e-9)


def test_fewer_points_than_dimensions_gives_zero_not_negative_eigenvalues():
    x = np.random.default_rng(5).normal(size=(4, 10))
    lam = spectral.principal_components(x).eigenvalues
    assert np.all(lam >= 0.0)
    assert np.all(lam[3:] < 1e-12)  # rank <= N - 1 = 3 after centring
    assert np.all(np.diff(lam) <= 0.0)


# --- energy of Delta W -------------------------------------------------------------


def test_delta_w_along_v3_puts_all_energy_in_component_3():
    V = random_orthogonal(10, seed=6)
    a = np.random.default_rng(7).normal(size=16)  # one weight per hidden unit
    delta_W = np.outer(V[:, 2], a)  # (D, H), every unit moves along v_3
    E = spectral.component_energy(delta_W, V)
    expected = np.zeros(10)
    expected[2] = a @ a
    np.testing.assert_allclose(E, expected, atol=1e-12 * (a @ a))
    cumulative = spectral.cumulative_energy(delta_W, V)
    np.testing.assert_allclose(cumulative, [0, 0] + [1] * 8, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 12),
    h=st.integers(1, 12),
    lead=st.lists(st.integers(1, 3), max_size=2),
)
def test_energies_summed_over_components_equal_frobenius_norm(seed, d, h, lead):
    V = random_orthogonal(d, seed)
    delta_W = np.random.default_rng(seed).normal(size=(*lead, d, h))
    E = spectral.component_energy(delta_W, V)
    assert E.shape == (*lead, d)
    # sum_k |v_k^T dW|^2 = |V^T dW|_F^2 = |dW|_F^2 since V is orthogonal
    np.testing.assert_allclose(E.sum(axis=-1), (delta_W**2).sum(axis=(-2, -1)))


def test_isotropic_gaussian_delta_w_follows_k_over_d():
    d, h = 50, 4000
    V = random_orthogonal(d, seed=8)
    delta_W = np.random.default_rng(9).normal(size=(d, h))
    cumulative = spectral.cumulative_energy(delta_W, V)
    iso = spectral.isotropic_cumulative_energy(d)
    np.testing.assert_array_equal(iso, np.arange(1, d + 1) / d)
    # each E_k / mean is chi^2_H / H, relative sd sqrt(2/H) = 0.022; the largest
    # deviation, at k = D/2, has sd 0.022 / (2 sqrt(D)) = 0.0016; 0.01 is ~6 sd
    assert np.max(np.abs(cumulative - iso)) < 0.01


def test_zero_delta_w_at_t0_gives_the_isotropic_curve_without_nan():
    V = random_orthogonal(6, seed=10)
    rng = np.random.default_rng(11)
    W = np.cumsum(rng.normal(size=(4, 6, 3)), axis=0)  # W(t) for t = 0..3
    W[0] = 0.0
    delta_W = W - W[0]  # (times, D, H); the t = 0 slice is exactly zero
    cumulative = spectral.cumulative_energy(delta_W, V)
    assert np.all(np.isfinite(cumulative))
    np.testing.assert_array_equal(cumulative[0], np.arange(1, 7) / 6)
    np.testing.assert_allclose(
        cumulative[1:], spectral.cumulative_energy(delta_W[1:], V)
    )
    np.testing.assert_allclose(cumulative[1:, -1], 1.0, rtol=1e-14)


def test_cumulative_energy_keeps_leading_axes():
    V = random_orthogonal(5, seed=12)
    delta_W = np.random.default_rng(13).normal(size=(3, 2, 5, 4))  # (times, members)
    batched = spectral.cumulative_energy(delta_W, V)
    for t in range(3):
        for m in range(2):
            single = spectral.cumulative_energy(delta_W[t, m], V)
            np.testing.assert_allclose(batched[t, m], single, rtol=1e-14)


def test_top_fraction_and_rank_at_energy_hand_worked():
    # with V = I, E_k is the squared norm of row k: 5, 2, 2, 1 (total 10), so
    # E_{<=k} = 0.5, 0.7, 0.9, 1.0
    delta_W = np.array([[2.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    V = np.eye(4)
    np.testing.assert_array_equal(spectral.component_energy(delta_W, V), [5, 2, 2, 1])
    assert spectral.energy_fraction_top(delta_W, V, 2) == pytest.approx(0.7)
    ranks = [spectral.rank_at_energy(delta_W, V, f) for f in (0.5, 0.6, 0.9, 1.0)]
    assert ranks == [1, 2, 3, 4]
    # rotating the basis and Delta W together changes nothing
    R = random_orthogonal(4, seed=14)
    rotated = spectral.energy_fraction_top(R @ delta_W, R, 2)
    assert rotated == pytest.approx(0.7, rel=1e-12)


def test_gradient_descent_on_least_squares_learns_top_components_first():
    # linear regression from W = 0: v_k^T W(t) = (1 - (1 - lr lambda_k)^t) v_k^T W*
    # with lambda_k the eigenvalues of X_c^T X_c / N; the top PCs converge first
    variances = np.array([4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.05, 0.02])
    rotation = random_orthogonal(8, seed=15)
    n = 400
    x = data_with_covariance(variances, rotation, n=n, seed=16)
    x_c = x - x.mean(axis=0)
    W_star = np.random.default_rng(17).normal(size=(8, 3))
    y = x_c @ W_star
    W, lr = np.zeros((8, 3)), 0.2
    for _ in range(20):
        W -= lr * x_c.T @ (x_c @ W - y) / n
    pcs = spectral.principal_components(x)
    lam = pcs.eigenvalues * (n - 1) / n
    gain = 1.0 - (1.0 - lr * lam) ** 20
    expected = gain**2 * ((pcs.components.T @ W_star) ** 2).sum(axis=1)
    E = spectral.component_energy(W, pcs.components)
    np.testing.assert_allclose(E, expected, rtol=1e-8, atol=1e-12)
    top = spectral.energy_fraction_top(W, pcs.components, 2)
    assert top > spectral.isotropic_cumulative_energy(8)[1] + 0.3


# --- input validation --------------------------------------------------------------

V4 = np.eye(4)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: spectral.principal_components(np.zeros((5, 2, 2))), r"reshape"),
        (lambda: spectral.principal_components(np.zeros((1, 3))), r"got N = 1"),
        (lambda: spectral.principal_components([[np.nan, 0], [0, 0]]), r"finite"),
        (
            lambda: spectral.component_energy(np.zeros((4, 2)), V4[:3]),
            r"square.*got shape \(3, 4\)",
        ),
        (
            lambda: spectral.component_energy(np.zeros((2, 4)), V4),
            r"\(\.\.\., 4, H\).*got \(2, 4\).*swapaxes",
        ),
        (lambda: spectral.energy_fraction_top(np.ones((4, 2)), V4, 0), r"\[1, 4\]"),
        (lambda: spectral.energy_fraction_top(np.ones((4, 2)), V4, 5), r"got 5"),
        (lambda: spectral.rank_at_energy(np.ones((4, 2)), V4, 0.0), r"\(0, 1\]"),
        (lambda: spectral.isotropic_cumulative_energy(0), r"dim must be an int >= 1"),
    ],
)
def test_bad_inputs_raise_naming_value_rule_and_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()
