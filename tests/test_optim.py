"""Each optimizer update against the formula written out by hand, and against optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from reglab import nn, optim, regularizers
from reglab.ensemble import Ensemble
from reglab.regularizers.base import Context
from reglab.settings import member
from reglab.specs import TrainSpec

LR, ALPHA, TAU = 0.15, 1.0, 50.0  # a short tau so the schedule visibly moves


def hp(**values):  # the schedule above, with the given per-member settings
    return member(learning_rate=LR, alpha=ALPHA, tau=TAU, **values)


def lr_at(t):  # the post's schedule, t = 1 at the first update
    return LR / (1 + t / TAU) ** ALPHA


def make_params(key):
    k1, k2 = jax.random.split(key)
    return {
        "W1": jax.random.normal(k1, (3, 4)),
        "b1": jnp.array([0.5, -0.2, 0.0, 1e-3]),
        "W2": jax.random.normal(k2, (4, 2)),
        "b2": jnp.array([0.3, -0.7]),
    }


def grads_at(params, step):  # a fixed, step-dependent "likelihood gradient"
    return jax.tree.map(lambda p: jnp.cos(p * (step + 1)) * 0.3, params)


STRENGTHS = frozenset({"l2_strength", "l1_strength", "max_norm"})


def build_optimizer(spec, hyper, mask, used=STRENGTHS):
    """The chain the program builds: the registry's rules around spec's optimizer."""
    model = nn.MLPSpec((3, 4, 2))
    ctx = Context(model, TrainSpec(model, spec), frozenset(used), mask, 1)
    return regularizers.optimizer(ctx, hyper)


def run(spec, hyper, params, n_steps, penalize_biases=True, used=STRENGTHS):
    mask = optim.penalty_mask(params, penalize_biases)
    opt = build_optimizer(spec, hyper, mask, used)
    state = opt.init(params)
    for step in range(n_steps):
        updates, state = opt.update(grads_at(params, step), state, params)
        params = optax.apply_updates(params, updates)
    return params


def close(a, b, rtol=1e-5, atol=1e-6):
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol, atol)


def test_power_law_schedule_counts_from_one():
    schedule = optim.power_law_schedule(LR, ALPHA, TAU)
    np.testing.assert_allclose(schedule(jnp.array(0)), LR / (1 + 1 / TAU), rtol=1e-6)
    np.testing.assert_allclose(schedule(jnp.array(9)), lr_at(10), rtol=1e-6)
    half = optim.power_law_schedule(0.01, 0.5, 5e4)
    np.testing.assert_allclose(half(jnp.array(4)), 0.01 / np.sqrt(1 + 5 / 5e4), 1e-6)


@pytest.mark.parametrize("penalty", ["l2", "l1"])
def test_coupled_sgd_matches_the_post_formula(penalty, getkey):
    lam = 0.01
    hyper = hp(**{f"{penalty}_strength": lam})
    params = make_params(getkey())
    got = run(optim.OptimizerSpec("sgd"), hyper, params, 4)
    expected = {k: np.asarray(v, np.float64) for k, v in params.items()}
    for step in range(4):
        g = grads_at(jax.tree.map(jnp.asarray, expected), step)
        for k in expected:
            reg = lam * (expected[k] if penalty == "l2" else np.sign(expected[k]))
            expected[k] = expected[k] - lr_at(step + 1) * (np.asarray(g[k]) + reg)
    close(got, expected)


def test_coupled_l2_sgd_matches_optax_add_decayed_weights(getkey):
    lam = 0.02
    params = make_params(getkey())
    got = run(optim.OptimizerSpec("sgd"), hp(l2_strength=lam), params, 5)
    ref = optax.chain(
        optax.add_decayed_weights(lam),
        optax.sgd(lambda c: LR / (1 + (c + 1) / TAU) ** ALPHA),
    )
    state, p = ref.init(params), params
    for step in range(5):
        u, state = ref.update(grads_at(p, step), state, p)
        p = optax.apply_updates(p, u)
    close(got, p)


def test_adamw_matches_optax_adamw(getkey):
    lam = 0.05
    params = make_params(getkey())
    spec = optim.OptimizerSpec("adam", penalty="decoupled")
    got = run(spec, hp(l2_strength=lam), params, 6)
    ref = optax.adamw(
        lambda c: LR / (1 + (c + 1) / TAU) ** ALPHA, 0.9, 0.999, 1e-8, weight_decay=lam
    )
    state, p = ref.init(params), params
    for step in range(6):
        u, state = ref.update(grads_at(p, step), state, p)
        p = optax.apply_updates(p, u)
    # optax's float32 v_hat is 0.7e-5 to 2e-5 large in these first steps; ours holds
    # the float64 formula to 2e-6 (test_adam_with_l2_matches_hand_written_formula)
    close(got, p, atol=2e-5)


def adam_steps(tx, g):
    """Return tx's update at each of the rows of g (steps, n), as float64."""
    params = {"W": jnp.zeros(g.shape[1])}

    def step(state, g_t):
        u, state = tx.update({"W": g_t}, state, params)
        return state, u["W"]

    return np.asarray(jax.lax.scan(step, tx.init(params), jnp.asarray(g))[1], float)


def adam_float64(g, b1=0.9, b2=0.999, eps=1e-8):
    """Return Adam's updates for the gradients g (steps, n), in float64 numpy."""
    m = v = np.zeros(g.shape[1])
    out = []
    for t, g_t in enumerate(g.astype(np.float64), start=1):
        m, v = b1 * m + (1 - b1) * g_t, b2 * v + (1 - b2) * g_t**2
        out.append((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return np.array(out)


def random_gradients(seed, steps=1000, n=64):  # each step its own scale
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(size=(steps, 1)))
    return (rng.normal(size=(steps, n)) * scale).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_adam_agrees_with_optax_scale_by_adam_over_1000_steps(seed):
    g = random_gradients(seed)
    ours = adam_steps(optim.scale_by_adam(0.9, 0.999, 1e-8), g)
    theirs = adam_steps(optax.scale_by_adam(0.9, 0.999, 1e-8), g)
    # Adam's steps are O(1); optax's are ~6.5e-6 shorter (see the next test)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_adam_is_closer_to_float64_than_optax(seed):
    g = random_gradients(seed)
    exact = adam_float64(g)
    ours = adam_steps(optim.scale_by_adam(0.9, 0.999, 1e-8), g)
    theirs = adam_steps(optax.scale_by_adam(0.9, 0.999, 1e-8), g)
    # optax: 1 - 0.999 = 0.001 weights g^2 beside beta2 = 0.99900001 in float32, so
    # its v_hat is 1.3e-5 large and every step (1 + 1.3e-5)^-1/2 - 1 = -6.5e-6 short
    big = np.abs(exact) > 0.1  # away from m ~ 0, where float32 m loses digits
    theirs_bias = np.median((theirs - exact)[big] / exact[big])
    ours_bias = np.median((ours - exact)[big] / exact[big])
    np.testing.assert_allclose(theirs_bias, -6.5e-6, rtol=0.05)
    assert abs(ours_bias) < 1e-7
    assert np.abs(ours - exact).max() < 2e-6 < np.abs(theirs - exact).max()


def test_adam_steps_are_exactly_one_for_a_constant_gradient():
    g = np.full((1000, 4), 3.0, np.float32)
    ours = adam_steps(optim.scale_by_adam(0.9, 0.999, 0.0), g)
    theirs = adam_steps(optax.scale_by_adam(0.9, 0.999, 0.0), g)
    np.testing.assert_allclose(ours, 1.0, rtol=0, atol=1e-6)  # a few float32 ulp
    assert np.abs(theirs - 1.0).max() > 6e-6


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
@pytest.mark.parametrize("kind", optim.PENALTIES)
def test_mixed_chain_member_follows_its_own_penalty(kind, name, getkey):
    # a coupled chain with both per-member flags set: each member follows its kind
    params = make_params(getkey())
    strengths = dict(l2_strength=0.05, l1_strength=0.01)
    flags = {k: jnp.bool_(kind == k) for k in ("decoupled", "proximal")}
    mixed = hp(**strengths, **flags)
    both = STRENGTHS | {"decoupled", "proximal"}
    got = run(optim.OptimizerSpec(name, penalty="coupled"), mixed, params, 6, used=both)
    ref = run(optim.OptimizerSpec(name, penalty=kind),
              hp(**strengths), params, 6)  # fmt: skip
    close(got, ref)


def test_decoupled_members_need_a_coupled_chain(getkey):
    spec = optim.OptimizerSpec("adam", penalty="proximal")
    model = nn.MLPSpec((3, 4, 2))
    ctx = Context(model, TrainSpec(model, spec), frozenset({"decoupled"}), {}, 1)
    with pytest.raises(ValueError, match=r"decoupled=True need OptimizerSpec\(pen"):
        values = Ensemble((0,), {"learning_rate": 0.1, "decoupled": True}).values
        regularizers.check(ctx, values)


@pytest.mark.parametrize("scaling", optim.DECAY_SCALINGS)
@pytest.mark.parametrize("coupled", [True, False])
def test_adam_with_l2_matches_hand_written_formula(scaling, coupled, getkey):
    lam, b1, b2, eps = 0.03, 0.8, 0.95, 1e-8
    spec = optim.OptimizerSpec(
        "adam",
        b1,
        b2,
        eps,
        penalty="coupled" if coupled else "decoupled",
        decay_scaling=scaling,
    )
    params = make_params(getkey())
    got = run(spec, hp(l2_strength=lam), params, 5)
    theta = {k: np.asarray(v, np.float64) for k, v in params.items()}
    m = {k: 0.0 for k in theta}
    v = {k: 0.0 for k in theta}
    for step in range(5):
        t = step + 1
        g = grads_at(jax.tree.map(jnp.asarray, theta), step)
        for k in theta:
            gk = np.asarray(g[k], np.float64) + (lam * theta[k] if coupled else 0)
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk**2
            m_hat, v_hat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
            step_decay = lr_at(t) if scaling == "learning_rate" else lr_at(t) / LR
            decay = 0.0 if coupled else step_decay * lam * theta[k]
            theta[k] = theta[k] - lr_at(t) * m_hat / (np.sqrt(v_hat) + eps) - decay
    close(got, theta, rtol=2e-5, atol=2e-6)


def test_decoupled_l1_matches_hand_written_formula(getkey):
    lam = 0.01
    params = make_params(getkey())
    spec = optim.OptimizerSpec("sgd", penalty="decoupled")
    got = run(spec, hp(l1_strength=lam), params, 3)
    theta = {k: np.asarray(v, np.float64) for k, v in params.items()}
    for step in range(3):
        g = grads_at(jax.tree.map(jnp.asarray, theta), step)
        for k in theta:
            lr = lr_at(step + 1)
            theta[k] = theta[k] - lr * np.asarray(g[k]) - lr * lam * np.sign(theta[k])
    close(got, theta)


def test_proximal_l1_reaches_exact_zeros_where_subgradient_hovers(getkey):
    # Zero likelihood gradient: only the penalty acts. Subgradient L1 overshoots
    # zero and oscillates around it; the proximal step lands on it and stays.
    lam, lr = 0.05, 0.1
    params = {"W1": jax.random.normal(getkey(), (50, 50)) * 0.1}
    zero = {"W1": jnp.zeros((50, 50))}
    out = {}
    for penalty in ("coupled", "proximal"):
        spec = optim.OptimizerSpec("sgd", penalty=penalty)
        opt = build_optimizer(
            spec,
            member(learning_rate=lr, alpha=0.0, tau=1.0, l1_strength=lam),
            {"W1": True},
        )
        p, state = params, opt.init(params)
        for _ in range(100):
            u, state = opt.update(zero, state, p)
            p = optax.apply_updates(p, u)
        out[penalty] = np.asarray(p["W1"])
    assert (out["proximal"] == 0).all()
    assert (out["coupled"] == 0).mean() < 0.01
    assert np.abs(out["coupled"]).max() <= lr * lam + 1e-7  # it hovers within a step


def test_proximal_l1_soft_thresholds_one_step():
    spec = optim.OptimizerSpec("sgd", penalty="proximal")
    opt = build_optimizer(
        spec,
        member(learning_rate=1.0, alpha=0.0, tau=1.0, l1_strength=0.3),
        {"W1": True},
    )
    p = {"W1": jnp.array([1.0, -1.0, 0.2, -0.1, 0.0])}
    u, _ = opt.update({"W1": jnp.zeros(5)}, opt.init(p), p)
    np.testing.assert_allclose(
        optax.apply_updates(p, u)["W1"], [0.7, -0.7, 0.0, 0.0, 0.0], atol=1e-7
    )


def test_unpenalized_biases_follow_the_plain_update(getkey):
    params = make_params(getkey())
    hyper = hp(l2_strength=0.5, l1_strength=0.1)
    spec = optim.OptimizerSpec("sgd")
    free = run(spec, hyper, params, 3, penalize_biases=False)
    plain = run(spec, hp(), params, 3)
    penalized = run(spec, hyper, params, 3)
    np.testing.assert_allclose(free["b1"], plain["b1"], rtol=1e-6)
    assert not np.allclose(free["W1"], plain["W1"])
    assert not np.allclose(penalized["b1"], plain["b1"])


def test_penalty_mask_rejects_unknown_names():
    with pytest.raises(ValueError, match="'gamma' must start with 'W'"):
        optim.penalty_mask({"W1": 0, "gamma": 0}, True)
    assert optim.penalty_mask({"W1": 0, "b1": 0}, False) == {"W1": True, "b1": False}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "rmsprop"}, "name must be one of"),
        ({"penalty": "both"}, "penalty must be one of"),
        ({"decay_scaling": "none"}, "decay_scaling must be one of"),
        ({"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),
        ({"eps": 0.0}, "eps must be > 0"),
    ],
)
def test_bad_optimizer_spec_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.OptimizerSpec(**kwargs)


def test_max_norm_projects_each_units_incoming_weights_by_hand():
    # columns are units: |(3, 4)| = 5 is scaled to 1, |(0.1, 0.2)| < 1 is kept
    W = jnp.array([[3.0, 0.1], [4.0, 0.2]])
    params = {"W1": W, "b1": jnp.array([10.0, -10.0])}
    opt = optim.max_norm(1.0)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = opt.update(zero, opt.init(params), params)
    after = optax.apply_updates(params, updates)
    np.testing.assert_allclose(after["W1"], [[0.6, 0.1], [0.8, 0.2]], atol=1e-6)
    np.testing.assert_array_equal(after["b1"], params["b1"])  # biases are free


def test_max_norm_holds_after_every_step_and_zero_is_off(getkey):
    params = make_params(getkey())
    spec = optim.OptimizerSpec("sgd")
    capped = run(spec, hp(max_norm=0.5), params, 4)
    for k in ("W1", "W2"):
        norms = np.linalg.norm(np.asarray(capped[k]), axis=0)
        assert norms.max() <= 0.5 * (1 + 1e-6)
    close(run(spec, hp(max_norm=0.0), params, 4), run(spec, hp(), params, 4), 0, 0)
