"""reglab.sharpness against a dense jax.hessian and numpy.linalg.eigvalsh.

The dense Hessian of a 2-3-2 tanh network (17 parameters) is built with jax.hessian
of a loss written with jax.nn alone, so the oracle shares nothing with the explicit
backward pass the Hessian-vector products go through.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from reglab import nn, sharpness

Z999 = 3.2905  # two-sided 99.9% normal quantile
SPEC = nn.MLPSpec((2, 3, 2))


def reference_loss(params, x, labels):
    a = x
    for l in (1, 2):
        z = a @ params[f"W{l}"] + params[f"b{l}"]
        a = jnp.tanh(z) if l == 1 else z
    return -(jax.nn.one_hot(labels, 2) * jax.nn.log_softmax(a)).sum(-1).mean()


def dense_hessians(members, x, labels):
    """Return each member's (17, 17) Hessian in float64 (one compiled program)."""
    thetas = jnp.stack([ravel_pytree(p)[0] for p in members])
    _, unravel = ravel_pytree(members[0])
    hessian = jax.hessian(lambda t: reference_loss(unravel(t), x, labels))
    H = np.asarray(jax.jit(jax.vmap(hessian))(thetas), np.float64)
    return list((H + H.transpose(0, 2, 1)) / 2)


@pytest.fixture(scope="module")
def problem():
    """Four members (scaled inits, so curvatures differ) on 20 shared examples."""
    x = jax.random.normal(jax.random.PRNGKey(1), (20, 2))
    labels = jax.random.randint(jax.random.PRNGKey(2), (20,), 0, 2)
    members = [nn.init_mlp(jax.random.PRNGKey(10 + i), SPEC) for i in range(4)]
    members = [{k: v * (1.0 + i) for k, v in p.items()} for i, p in enumerate(members)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *members)
    hessians = dense_hessians(members, x, labels)
    return x, labels, members, stacked, hessians


def test_hessian_vector_product_equals_the_dense_hessian_times_v(problem, getkey):
    x, labels, members, _, hessians = problem
    targets = jax.nn.one_hot(labels, 2)
    hvp = jax.jit(lambda p, v: sharpness.hessian_vector_product(p, v, x, targets, SPEC))
    for p, H in zip(members, hessians, strict=True):
        v = {k: jax.random.normal(getkey(), a.shape) for k, a in p.items()}
        Hv = hvp(p, v)
        flat_v, _ = ravel_pytree(v)
        flat_Hv, _ = ravel_pytree(Hv)
        # float32 forward-over-explicit-reverse vs float32 jax.hessian: 1e-5
        expect = H @ np.asarray(flat_v, np.float64)
        np.testing.assert_allclose(flat_Hv, expect, rtol=1e-5, atol=1e-5)


def test_top_eigenvalue_matches_eigvalsh_for_every_member(problem):
    x, labels, _, stacked, hessians = problem
    top = sharpness.top_eigenvalue(
        stacked, x, labels, SPEC, key=jax.random.PRNGKey(0), n_iterations=200
    )
    expect = [np.linalg.eigvalsh(H)[-1] for H in hessians]
    # eigen-gaps here are >= 14% (lambda_2 / lambda_1 <= 0.86): 200 iterations
    # converge far below float32's rounding; 1e-4 relative covers that rounding
    np.testing.assert_allclose(top, expect, rtol=1e-4)
    assert len(set(np.round(expect, 3))) == 4  # the members really differ


def test_largest_eigenvalue_is_the_top_one_when_a_negative_one_dominates(getkey):
    Q, _ = np.linalg.qr(np.asarray(jax.random.normal(getkey(), (6, 6)), np.float64))
    eigenvalues = np.array([-5.0, 3.0, 1.0, 0.5, -0.2, 0.1])
    H = jnp.asarray(Q @ np.diag(eigenvalues) @ Q.T, jnp.float32)

    def hvp(v):
        return {"w": H @ v["w"]}

    start = {"w": jax.random.normal(getkey(), (6,))}
    top = jax.jit(lambda s: sharpness.largest_eigenvalue(hvp, s, 300))(start)
    # the shifted operator's gap is 8 vs 6: 300 iterations reach float32 rounding
    np.testing.assert_allclose(top, 3.0, rtol=1e-4)


def test_hutchinson_trace_within_its_variance_band(problem):
    x, labels, _, stacked, hessians = problem
    n = 400
    trace, stderr = sharpness.hessian_trace(
        stacked, x, labels, SPEC, key=jax.random.PRNGKey(3), n_probes=n
    )
    for i, H in enumerate(hessians):
        # Var[z'Hz] for Rademacher z: 2 (|H|_F^2 - sum_i H_ii^2)
        var = 2 * ((H * H).sum() - (np.diag(H) ** 2).sum())
        sd = np.sqrt(var / n)
        assert abs(trace[i] - np.trace(H)) < Z999 * sd, (i, trace[i], np.trace(H), sd)
        # the reported standard error estimates that sd (400 probes: within 2x)
        assert 0.5 * sd < stderr[i] < 2.0 * sd, (stderr[i], sd)


def test_members_batched_equal_each_member_alone(problem):
    x, labels, members, stacked, _ = problem
    key = jax.random.PRNGKey(4)
    # the other tests' iteration and probe counts: their compiled programs again
    batched = sharpness.sharpness(stacked, x, labels, SPEC, key=key, n_iterations=200,
                                  n_probes=400)  # fmt: skip
    for i, p in enumerate(members):
        alone = jax.tree.map(lambda a: a[None], p)
        one = sharpness.sharpness(alone, x, labels, SPEC, key=key, n_iterations=200,
                                  n_probes=400)  # fmt: skip
        for got, expect in zip(batched, one, strict=True):
            np.testing.assert_allclose(got[i], expect[0], rtol=1e-5, atol=1e-6)


def test_bad_arguments_are_refused_with_the_fix(problem):
    x, labels, members, stacked, _ = problem
    key = jax.random.PRNGKey(0)
    with pytest.raises(
        ValueError, match=r"n_iterations must be an integer >= 1, got 0"
    ):
        sharpness.top_eigenvalue(stacked, x, labels, SPEC, key=key, n_iterations=0)
    with pytest.raises(ValueError, match=r"n_probes must be an integer >= 1, got 2.5"):
        sharpness.hessian_trace(stacked, x, labels, SPEC, key=key, n_probes=2.5)
    with pytest.raises(ValueError, match=r"leading member axis.*add \[None\]"):
        scalar_b = {**members[0], "b2": jnp.float32(0.0)}
        sharpness.top_eigenvalue(scalar_b, x, labels, SPEC, key=key)
    with pytest.raises(ValueError, match=r"loss must be one of .*got 'hinge'"):
        sharpness.hessian_trace(stacked, x, labels, SPEC, key=key, loss="hinge")
