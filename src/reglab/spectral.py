"""Where the first layer learns: energy of its weight change along the inputs' PCs.

The post's section 5 asks whether Delta W(t) = W(t) - W(0) of the first layer lies
along the high-variance principal components of the training inputs (early training)
or the low-variance ones (late, memorising training).

Conventions:

- ``x`` is ``(N, D)``; the covariance is the sample covariance X_c^T X_c / (N - 1) of
  the centred inputs X_c.
- ``components[:, k]`` (a column) is the unit eigenvector v_{k+1} whose eigenvalue is
  the (k+1)-th largest: arrays are 0-based, while a count ``k`` such as the one in
  ``energy_fraction_top`` is 1-based, like the post's E_{<=k}. Each column's entry of
  largest magnitude is positive, so repeated runs agree in sign. Within a repeated
  eigenvalue (such as the null space of always-zero pixels) the basis is whatever
  ``numpy.linalg.eigh`` returns.
- reglab's first layer computes z = x @ W1 + b1 with W1 of shape (D, H) =
  (fan_in, fan_out), so Delta W is ``(..., D, H)`` and the post's |Delta W v_k|^2
  (written for its (H, D) layout) reads here as |v_k^T Delta W|^2.
- At t = 0, Delta W = 0 and E_{<=k} is 0/0; it is defined there as the isotropic
  curve k/D, the limit of a vanishing isotropic update, so a time series of cumulative
  energies is NaN-free.
"""

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike


class PrincipalComponents(NamedTuple):
    """Eigen-decomposition of a data covariance, largest eigenvalue first."""

    eigenvalues: np.ndarray  # (D,) lambda_1 >= ... >= lambda_D >= 0
    components: np.ndarray  # (D, D) column k is the unit eigenvector v_{k+1}


def principal_components(x: ArrayLike) -> PrincipalComponents:
    """Return the descending eigenvalues and unit eigenvectors (columns) of cov(x)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(
            f"x must have shape (N, D), got {x.shape} — flatten images first, "
            f"e.g. x.reshape(len(x), -1)"
        )
    n = x.shape[0]
    if n < 2:
        raise ValueError(
            f"x needs N >= 2 points for a covariance, got N = {n} — pass the "
            f"training inputs"
        )
    if not np.isfinite(x).all():
        raise ValueError(
            "x must be finite, got nan or inf — check the data pipeline that built it"
        )
    x_c = x - x.mean(axis=0)  # (N, D)
    # C = X_c^T X_c / (N - 1)
    cov = x_c.T @ x_c / (n - 1)  # (D, D)
    lam, V = np.linalg.eigh(cov)  # ascending
    lam, V = lam[::-1], V[:, ::-1]
    # round-off leaves eigenvalues like -1e-17 in a null space; variances are >= 0
    lam = np.clip(lam, 0.0, None)
    pivot = np.abs(V).argmax(axis=0)  # (D,) row of each column's largest |entry|
    V = V * np.sign(V[pivot, np.arange(V.shape[1])])
    return PrincipalComponents(lam, V)


def component_energy(delta_W: ArrayLike, components: ArrayLike) -> np.ndarray:
    """Return E_k = |v_k^T Delta W|^2 for every component k, shape (..., D)."""
    dW = np.asarray(delta_W, dtype=np.float64)
    V = np.asarray(components, dtype=np.float64)
    if V.ndim != 2 or V.shape[0] != V.shape[1]:
        raise ValueError(
            f"components must be a square (D, D) matrix, got shape {V.shape} — "
            f"pass principal_components(x).components"
        )
    d = V.shape[0]
    if dW.ndim < 2 or dW.shape[-2] != d:
        raise ValueError(
            f"delta_W must have shape (..., D, H) = (..., {d}, H) to match "
            f"components of shape {V.shape}, got {dW.shape} — reglab's W1 is "
            f"(fan_in, fan_out); turn an (H, D) matrix round with .swapaxes(-1, -2)"
        )
    # P[k, i] = v_k . Delta W[:, i], the change of hidden unit i along v_k
    P = V.T @ dW  # (..., D, H); matmul broadcasts over leading axes via BLAS
    # E_k = sum_i P[k, i]^2
    return (P**2).sum(axis=-1)


def isotropic_cumulative_energy(dim: int) -> np.ndarray:
    """Return k/D for k = 1..D: E_{<=k} expected for an isotropic Delta W."""
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r} — pass D = x.shape[1]")
    # i.i.d. entries stay i.i.d. under the orthogonal V, so every E_k has one mean
    return np.arange(1, dim + 1) / dim


def cumulative_energy(delta_W: ArrayLike, components: ArrayLike) -> np.ndarray:
    """Return E_{<=k} = sum_{l<=k} E_l / sum_m E_m for k = 1..D, shape (..., D)."""
    E = component_energy(delta_W, components)  # (..., D)
    total = E.sum(axis=-1, keepdims=True)  # (..., 1)
    moved = total > 0
    # E_{<=k} = sum_{l<=k} E_l / sum_m E_m, and k/D where Delta W = 0 (see module doc)
    ratio = np.cumsum(E, axis=-1) / np.where(moved, total, 1.0)
    return np.where(moved, ratio, isotropic_cumulative_energy(E.shape[-1]))


def energy_fraction_top(
    delta_W: ArrayLike, components: ArrayLike, k: int
) -> np.ndarray:
    """Return E_{<=k}, the fraction of |Delta W|^2 along the top k PCs, shape (...)."""
    d = np.shape(components)[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= d:
        raise ValueError(
            f"k must be an int in [1, {d}] (a count of components), got {k!r} — "
            f"e.g. k=10 for the top ten PCs"
        )
    return cumulative_energy(delta_W, components)[..., k - 1]


def rank_at_energy(
    delta_W: ArrayLike, components: ArrayLike, fraction: float
) -> np.ndarray:
    """Return the smallest k with E_{<=k} >= fraction, an int in [1, D], shape (...)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(
            f"fraction must be in (0, 1], got {fraction} — e.g. 0.5 for the rank "
            f"holding half the energy"
        )
    cum = cumulative_energy(delta_W, components)  # (..., D)
    # count the k still short of the fraction; min() guards fraction = 1 against a
    # final E_{<=D} that round-off left a hair below 1
    return np.minimum((cum < fraction).sum(axis=-1) + 1, cum.shape[-1])
