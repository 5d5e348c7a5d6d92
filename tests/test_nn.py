"""Every hand-written backward pass against jax.grad; dropout; losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reglab import nn
from reglab.data.targets import SMOOTHING_CONVENTIONS, smooth_labels

RTOL, ATOL = 1e-5, 1e-6  # float32 tolerance for gradients of O(1) quantities


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def test_linear_backward_matches_jax_grad(getkey):
    params = nn.init_linear(getkey(), 5, 3, "glorot_normal")
    params["b"] = jax.random.normal(getkey(), (3,))
    a = jax.random.normal(getkey(), (7, 5))
    delta = jax.random.normal(getkey(), (7, 3))

    def scalar(p, a):  # <delta, z> has dL/dz = delta
        return (nn.linear_forward(p, a)[0] * delta).sum()

    g_params, g_a = jax.grad(scalar, argnums=(0, 1))(params, a)
    grads, delta_in = nn.linear_backward(params, a, delta)
    close(grads["W"], g_params["W"])
    close(grads["b"], g_params["b"])
    close(delta_in, g_a)


@pytest.mark.parametrize("name", nn.ACTIVATIONS)
def test_activation_backward_matches_jax_grad(name, getkey):
    forward, backward = nn._ACTIVATION_PAIRS[name]
    z = jax.random.normal(getkey(), (6, 4)) * 2
    delta = jax.random.normal(getkey(), (6, 4))
    expected = jax.grad(lambda z: (forward(z)[0] * delta).sum())(z)
    close(backward(forward(z)[1], delta), expected)


def test_dropout_backward_matches_jax_grad(getkey):
    mask = nn.dropout_mask(nn.as_seed(getkey()), 0, (6, 4), 0.3)
    a = jax.random.normal(getkey(), (6, 4))
    delta = jax.random.normal(getkey(), (6, 4))
    expected = jax.grad(lambda a: (nn.dropout_forward(a, mask)[0] * delta).sum())(a)
    close(nn.dropout_backward(mask, delta), expected)


@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
@pytest.mark.parametrize("dropout_mode", nn.DROPOUT_MODES)
def test_mlp_backward_matches_jax_grad_with_fixed_masks(
    activation, dropout_mode, getkey
):
    spec = nn.MLPSpec(
        (5, 8, 7, 3), activation, dropout_layers=(1, 2), dropout_mode=dropout_mode
    )
    params = nn.init_mlp(getkey(), spec)
    params = {
        k: v + 0.1 * jax.random.normal(getkey(), v.shape) for k, v in params.items()
    }
    x = jax.random.normal(getkey(), (9, 5))
    labels = jax.random.randint(getkey(), (9,), 0, 3)
    targets = smooth_labels(labels, 3, 0.1)
    masks = nn.dropout_masks(getkey(), spec, 9, 0.4)

    def loss(p):
        return nn.softmax_cross_entropy(nn.mlp_forward(p, x, spec, masks)[0], targets)[
            0
        ]

    logits, cache = nn.mlp_forward(params, x, spec, masks)
    _, delta = nn.softmax_cross_entropy(logits, targets)
    grads = nn.mlp_backward(params, cache, delta, spec)
    expected = jax.grad(loss)(params)
    assert grads.keys() == expected.keys()
    for name in grads:
        close(grads[name], expected[name])


def test_dropout_mask_values_and_keep_rate(getkey):
    p = 0.4
    mask = np.asarray(nn.dropout_mask(nn.as_seed(getkey()), 7, (200_000,), p))
    assert set(np.unique(mask)) <= {0.0, np.float32(1 / (1 - p))}
    keep = (mask > 0).mean()
    sigma = np.sqrt(p * (1 - p) / mask.size)
    assert abs(keep - (1 - p)) < 5 * sigma  # binomial, 5-sigma band
    assert abs(mask.mean() - 1.0) < 5 * sigma / (1 - p)  # inverted: E[m] = 1


def test_dropout_masks_differ_between_keys_and_not_within(getkey):
    spec = nn.MLPSpec((2, 16, 16, 2), dropout_layers=(1, 2))
    k = getkey()
    a = nn.dropout_masks(k, spec, 4, 0.5)
    b = nn.dropout_masks(k, spec, 4, 0.5)
    c = nn.dropout_masks(jax.random.fold_in(k, 1), spec, 4, 0.5)
    for l in (1, 2):
        np.testing.assert_array_equal(
            a[l], b[l]
        )  # a key is a value: same key, same mask
        assert not np.array_equal(a[l], c[l])
    assert not np.array_equal(a[1], a[2])  # layers draw from distinct streams


def test_per_batch_mask_is_shared_by_every_example(getkey):
    spec = nn.MLPSpec((2, 32, 2), dropout_layers=(1,), dropout_mode="per_batch")
    (mask,) = nn.dropout_masks(getkey(), spec, 6, 0.5).values()
    assert mask.shape == (32,)
    spec = nn.MLPSpec((2, 32, 2), dropout_layers=(1,))
    (mask,) = nn.dropout_masks(getkey(), spec, 6, 0.5).values()
    assert mask.shape == (6, 32)
    assert not all(np.array_equal(mask[0], mask[i]) for i in range(1, 6))


def test_zero_dropout_is_the_identity(getkey):
    spec = nn.MLPSpec((3, 8, 2), dropout_layers=(1,))
    params = nn.init_mlp(getkey(), spec)
    x = jax.random.normal(getkey(), (5, 3))
    masks = nn.dropout_masks(getkey(), spec, 5, 0.0)
    close(nn.mlp_forward(params, x, spec, masks)[0], nn.mlp_apply(params, x, spec))


def test_mc_dropout_moments_and_instantiations_differ(getkey):
    spec = nn.MLPSpec((2, 32, 32, 2), dropout_layers=(1, 2))
    params = nn.init_mlp(getkey(), spec)
    x = jax.random.normal(getkey(), (10, 2))
    mc = nn.mc_dropout_predict(params, x, spec, key=getkey(), p_drop=0.4, n_samples=5)
    assert mc.probs.shape == (5, 10, 2)
    close(mc.mean, mc.probs.mean(0))
    close(mc.var, mc.probs.var(0))
    assert not np.allclose(mc.probs[0], mc.probs[1])
    close(mc.probs.sum(-1), np.ones((5, 10)))


@pytest.mark.parametrize("convention", SMOOTHING_CONVENTIONS)
def test_smooth_labels_sum_to_one_and_match_formula(convention):
    t = np.asarray(smooth_labels(jnp.array([2, 0]), 4, 0.2, convention))
    close(t.sum(-1), [1.0, 1.0])
    if convention == "post":
        close(t[0], [0.2 / 3, 0.2 / 3, 0.8, 0.2 / 3])
    else:
        close(t[0], [0.05, 0.05, 0.85, 0.05])


def test_cross_entropy_is_stable_for_huge_logits():
    logits = jnp.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    targets = jax.nn.one_hot(jnp.array([0, 1]), 3)
    loss, delta = nn.softmax_cross_entropy(logits, targets)
    close(loss, np.log(3) / 2)  # first example contributes 0, second log 3
    assert np.isfinite(np.asarray(delta)).all()


def cross_entropy_oracle(z, t, w):  # jax.nn.log_softmax, differentiated by jax.grad
    def loss(z):
        return -(w * (t * jax.nn.log_softmax(z)).sum(-1)).sum() / w.sum()

    return loss(z), jax.grad(loss)(z)


@pytest.mark.parametrize("convention", SMOOTHING_CONVENTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_delta_matches_jax_grad_of_log_softmax(
    smoothing, convention, getkey
):
    z = jax.random.normal(getkey(), (9, 5)) * 3  # p far from 0 and 1
    labels = jax.random.randint(getkey(), (9,), 0, 5)
    t = smooth_labels(labels, 5, smoothing, convention)
    w = jnp.array([1, 1, 1, 1, 1, 1, 1, 0, 1], jnp.float32)
    loss, delta = nn.softmax_cross_entropy(z, t, w)
    expected_loss, expected_delta = cross_entropy_oracle(z, t, w)
    close(loss, expected_loss)
    close(delta, expected_delta)


def saturated_logits():
    # rows whose top class has p = 1 in float32: fitted (top = label), fitted with a
    # tie below, misfitted (top != label); and one with p = 1 - 1.2e-7, 2 ulp below 1
    return jnp.array(
        [
            [25.0, 3.0, 0.0, -4.0],
            [0.0, 22.0, 2.0, 2.0],
            [30.0, 0.0, 1.0, 0.0],
            [17.0, 0.0, 0.0, 0.0],
        ]
    ), jnp.array([0, 1, 2, 0])


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_delta_matches_float64_when_p_rounds_to_one(smoothing):
    z, labels = saturated_logits()
    t = smooth_labels(labels, 4, smoothing)
    loss, delta = nn.softmax_cross_entropy(z, t)
    z64, t64 = np.asarray(z, np.float64), np.asarray(t, np.float64)
    p64 = np.exp(z64 - z64.max(-1, keepdims=True))
    p64 /= p64.sum(-1, keepdims=True)
    # every entry to float32 precision of its own size, the tiny ones included:
    # p - 1 at the top class would be 0 in float32, 100 % off
    np.testing.assert_allclose(np.asarray(delta), (p64 - t64) / 4, rtol=1e-5, atol=0)
    exact_loss = -(t64 * np.log(p64)).sum() / 4
    np.testing.assert_allclose(loss, exact_loss, rtol=1e-5)


def test_cross_entropy_delta_rows_sum_to_zero_when_saturated():
    z, labels = saturated_logits()
    _, delta = nn.softmax_cross_entropy(z, jax.nn.one_hot(labels, 4))
    d = np.asarray(delta, np.float64)  # summed in float64: no rounding of the test's
    # zero up to the float32 rounding of the largest entry, which before was the size
    # of the row's smallest entries (a residue that always pushed the same way)
    row_sum = np.abs(d.sum(-1))
    assert (row_sum <= 2 * np.spacing(np.abs(d).max(-1).astype(np.float32))).all()


def test_log_softmax_keeps_the_tiny_loss_of_a_fitted_example():
    z = jnp.array([[25.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    log_p, top = nn.log_softmax(z)
    exact = -np.log1p(2 * np.exp(-25.0))  # -2.8e-11: z - logsumexp(z) gives 0
    np.testing.assert_allclose(log_p[0, 0], exact, rtol=1e-6)
    close(log_p[1], [-np.log(3)] * 3)
    np.testing.assert_array_equal(top, [[1, 0, 0], [1, 0, 0]])  # ties: the first


def test_weighted_losses_ignore_padding_and_match_jax_grad(getkey):
    z = jax.random.normal(getkey(), (6, 3))
    t = smooth_labels(jax.random.randint(getkey(), (6,), 0, 3), 3, 0.1)
    w = jnp.array([1, 1, 1, 1, 0, 0], jnp.float32)
    for loss_fn in nn.LOSSES.values():
        loss, delta = loss_fn(z, t, w)
        close(loss, loss_fn(z[:4], t[:4])[0])
        close(delta, jax.grad(lambda z, f=loss_fn: f(z, t, w)[0])(z))
        assert np.all(np.asarray(delta[4:]) == 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": (2,)}, "at least 2 entries"),
        ({"widths": (2, 0, 2)}, "positive integers"),
        ({"widths": (2, 4, 2), "activation": "gelu"}, "activation must be one of"),
        ({"widths": (2, 4, 2), "init": "zeros"}, "init must be one of"),
        ({"widths": (2, 4, 2), "dropout_layers": (2,)}, r"hidden layers in \[1, 1\]"),
        ({"widths": (2, 4, 2), "dropout_mode": "per_row"}, "dropout_mode must be"),
    ],
)
def test_bad_spec_raises_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.MLPSpec(**kwargs)


def test_init_scales_follow_their_rule(getkey):
    for init, var in [
        ("glorot_normal", 2 / (400 + 300)),
        ("lecun_normal", 1 / 400),
        ("he_normal", 2 / 400),
        ("glorot_uniform", 2 / (400 + 300)),
    ]:
        W = np.asarray(nn.init_linear(getkey(), 400, 300, init)["W"])
        assert abs(W.var() / var - 1) < 0.02  # 120k samples: relative s.e. ~0.4%


def test_hash_uniforms_are_uniform_and_independent_across_streams(getkey):
    # 2^18 draws: bin counts within 5 binomial sigmas, correlations ~ N(0, 1/n)
    n = 1 << 18
    seed = nn.as_seed(getkey())
    u = np.asarray(nn.hash_uniform(seed, 0, (n,)))
    assert u.min() >= 0 and u.max() < 1
    counts = np.histogram(u, bins=16, range=(0, 1))[0]
    expected = n / 16
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected * 15 / 16)
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / np.sqrt(n)
    # neighbouring counters (steps) and neighbouring keys give unrelated streams
    others = [
        nn.hash_uniform(seed, 1, (n,)),
        nn.hash_uniform(seed, 64, (n,)),
        nn.hash_uniform(nn.as_seed(jax.random.fold_in(getkey(), 1)), 0, (n,)),
    ]
    for v in map(np.asarray, others):
        assert abs(np.corrcoef(u, v)[0, 1]) < 5 / np.sqrt(n)
        assert (u == v).mean() < 1e-3


def test_dropout_masks_differ_between_steps(getkey):
    spec = nn.MLPSpec((2, 16, 2), dropout_layers=(1,))
    k = getkey()
    steps = [
        np.asarray(nn.dropout_masks(k, spec, 8, 0.5, step)[1]) for step in range(4)
    ]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(steps[i], steps[j])
