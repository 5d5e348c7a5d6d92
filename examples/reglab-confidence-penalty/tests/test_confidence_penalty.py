"""The confidence penalty: its explicit gradient against jax.grad, and its effect."""

import jax
import jax.numpy as jnp
import numpy as np
from reglab_confidence_penalty import penalty

from reglab import nn, optim, settings
from reglab.ensemble import Ensemble
from reglab.train import TrainSpec, predict, train


def test_gradient_matches_jax_grad():
    logits = jax.random.normal(jax.random.PRNGKey(0), (6, 3)) * 3.0
    weights = jnp.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])  # two padded rows

    def value(z):
        return penalty(z, weights, 0.7)[0]

    _, grad = penalty(logits, weights, 0.7)
    np.testing.assert_allclose(grad, jax.grad(value)(logits), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(grad[4:]) == 0)  # padding rows get no gradient


def test_setting_is_in_the_table_and_zero_does_nothing():
    row = settings.BY_NAME["confidence_penalty"]
    assert row.default == 0.0
    loss, grad = penalty(jnp.ones((2, 3)), jnp.ones(2), 0.0)
    assert float(loss) == 0.0 and not np.any(np.asarray(grad))


def test_penalized_members_predict_with_more_entropy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)  # separable: a plain net grows confident
    model = nn.MLPSpec((2, 16, 2))
    spec = TrainSpec(model, optim.OptimizerSpec("adam"), epochs=60, batch_size=16)
    ens = Ensemble.grid(seeds=(0,), learning_rate=0.01, confidence_penalty=[0.0, 1.0])
    result = train(spec, ens, x, y)
    p = jax.nn.softmax(predict(model, result.params, x)[0], -1)  # (C, n, K)
    entropy = -(p * jnp.log(p)).sum(-1).mean(-1)
    assert entropy[1] > entropy[0] + 0.05
