"""Adam and AdamW in float64 (jax.enable_x64) against NumPy float64 references.

The references follow PyTorch's documented updates (torch.optim.Adam with
weight_decay, torch.optim.AdamW), written independently of reglab.optim:

    Adam:   g <- g + lambda theta; m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2
            theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    AdamW:  theta <- theta - lr lambda theta, then the same step without lambda in g
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reglab import nn, regularizers
from reglab.ensemble import Ensemble
from reglab.optim import OptimizerSpec, penalty_mask
from reglab.regularizers.base import Context
from reglab.settings import Member
from reglab.specs import TrainSpec

B1, B2, EPS = 0.9, 0.999, 1e-8
STEPS = 200


def _problem():
    """Return a quadratic loss's matrix, target and start: grad = A theta - b."""
    rng = np.random.default_rng(18)
    q = rng.normal(size=(12, 12))
    a = q @ q.T / 12 + np.eye(12)  # (12, 12) well conditioned, positive definite
    return a, rng.normal(size=12), rng.normal(size=12)


def _reference(lr: float, decay: float, decoupled: bool) -> np.ndarray:
    """Return theta after STEPS of PyTorch's Adam (or AdamW), in NumPy float64."""
    a, b, theta = _problem()
    m, v = np.zeros(12), np.zeros(12)
    for t in range(1, STEPS + 1):
        g = a @ theta - b
        if decoupled:
            theta = theta - lr * decay * theta
        else:
            g = g + decay * theta
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g * g
        m_hat, v_hat = m / (1 - B1**t), v / (1 - B2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + EPS)
    return theta


def _reglab(lr: float, decay: float, decoupled: bool) -> tuple[np.ndarray, str]:
    """Return theta after STEPS of reglab's chain and the settings' dtype."""
    a, b, theta = _problem()
    members = Ensemble.grid((0,), learning_rate=lr, l2_strength=decay).members()
    member = Member((k, v[0]) for k, v in members.items())  # the one member's scalars
    spec = OptimizerSpec("adam", B1, B2, EPS, "decoupled" if decoupled else "coupled")
    params = {"W": jnp.asarray(theta)}  # one "weight" of 12
    # the chain the program builds: the registry's rules around spec's optimizer
    model = nn.MLPSpec((12, 1))
    mask = penalty_mask(params, True)
    ctx = Context(model, TrainSpec(model, spec), frozenset({"l2_strength"}), mask, 1)
    tx = regularizers.optimizer(ctx, member)
    state = tx.init(params)
    a_, b_ = jnp.asarray(a), jnp.asarray(b)

    @jax.jit
    def step(params, state):
        grads = {"W": a_ @ params["W"] - b_}
        updates, state = tx.update(grads, state, params)
        return {"W": params["W"] + updates["W"]}, state

    for _ in range(STEPS):
        params, state = step(params, state)
    return np.asarray(params["W"]), str(member.learning_rate.dtype)


@pytest.mark.parametrize("decoupled", [False, True], ids=["adam_l2", "adamw"])
def test_adam_and_adamw_match_a_float64_reference_to_1e_12_under_x64(decoupled):
    with jax.enable_x64(True):
        ours, dtype = _reglab(0.01, 0.05, decoupled)
        assert ours.dtype == np.float64 and dtype == "float64"
    exact = _reference(0.01, 0.05, decoupled)
    assert np.abs(exact - _reference(0.01, 0.0, decoupled)).max() > 1e-3  # it acts
    np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-12)


def test_settings_stay_float32_without_x64():
    ensemble = Ensemble.grid((0,), learning_rate=0.1, l2_strength=[0.0, 0.01])
    assert ensemble.values["learning_rate"].dtype == np.float32
    assert ensemble.values["l2_strength"].dtype == np.float32
    assert ensemble.values["decoupled"].dtype == bool
    with jax.enable_x64(True):
        inside = Ensemble.grid((0,), learning_rate=0.1, l2_strength=[0.0, 0.01])
    assert inside.values["l2_strength"].dtype == np.float64
    assert inside.values["l2_strength"][1] == 0.01  # exactly, not 0.0099999998
