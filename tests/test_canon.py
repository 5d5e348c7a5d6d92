"""The six regularizers of the canon, each against an independent formula or library.

Statistical checks use two-sided 99.9% bands (z = 3.2905) computed from the
statistic's own variance, so a correct implementation fails one in a thousand
seeds; the seeds are fixed, so a pass is reproducible.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from reglab import nn, settings
from reglab.regularizers import (
    gradient_noise,
    input_noise,
    mixup,
    sam,
    swa,
    weight_noise,
)
from reglab.regularizers.base import Context

Z999 = 3.2905  # two-sided 99.9% normal quantile
ALL = (
    mixup.MIXUP,
    input_noise.INPUT_NOISE,
    weight_noise.WEIGHT_NOISE,
    gradient_noise.GRADIENT_NOISE,
    sam.SAM,
    swa.SWA,
)
MODEL = nn.MLPSpec((3, 5, 4))


def ctx(*used):
    return Context(model=MODEL, spec=None, used=frozenset(used), mask={},
                   steps_per_epoch=4)  # fmt: skip


DEFAULTS = {s.name: s.default for r in ALL for s in r.settings}
# the trainer hands a hook a NamedTuple of traced settings; a pytree, so jit and vmap
Settings = NamedTuple("Settings", [(name, Any) for name in DEFAULTS])


def member(**values):
    """A member's settings by attribute, every setting of the six at its default."""
    return Settings(**{**DEFAULTS, **values})


def members(**columns):
    """Per-member settings as arrays (for vmap), the others at their defaults."""
    n = len(next(iter(columns.values())))
    cols = {k: jnp.full((n,), v) for k, v in DEFAULTS.items()}
    cols.update({k: jnp.asarray(v) for k, v in columns.items()})
    return Settings(**cols)


def test_every_default_does_nothing_and_factories_are_off_without_their_setting():
    for reg in ALL:
        c = ctx()
        assert not reg.in_use(c)
        for place in ("batch", "weights", "masks", "loss", "step", "average"):
            factory = getattr(reg, place)
            if factory is not None:
                assert factory(c) is None, (reg.name, place)
        if reg.gradient is not None:
            assert reg.gradient(c, member(), jax.random.PRNGKey(0), None) is None
        for s in reg.settings:
            s.check(s.default)  # each default is inside its own range
    # the secondary settings alone (gamma, the per-example flag, swa_every) are inert
    assert mixup.MIXUP.batch(ctx("mixup_per_example")) is None
    assert gradient_noise.GRADIENT_NOISE.gradient(
        ctx("gradient_noise_decay"), member(), jax.random.PRNGKey(0), None
    ) is None  # fmt: skip
    assert swa.SWA.average(ctx("swa_every")) is None
    names = [s.name for r in ALL for s in r.settings]
    assert names == ["mixup", "mixup_per_example", "input_noise", "weight_noise",
                     "gradient_noise", "gradient_noise_decay", "sam", "swa_start",
                     "swa_every"]  # fmt: skip


# --- mixup --------------------------------------------------------------------------


def test_mix_equals_the_convex_combination_for_a_fixed_lambda(getkey):
    x = np.asarray(jax.random.normal(getkey(), (6, 3)))
    y = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]
    pairing = np.array([3, 0, 5, 1, 2, 4])
    mx, my = mixup.mix(jnp.asarray(x), jnp.asarray(y), 0.3, jnp.asarray(pairing))
    # float32 arithmetic against float64 numpy: 1e-6 relative
    np.testing.assert_allclose(mx, 0.3 * x + 0.7 * x[pairing], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(my, 0.3 * y + 0.7 * y[pairing], rtol=1e-6, atol=1e-6)
    lam = np.linspace(0.1, 0.9, 6, dtype=np.float32)
    mx, _ = mixup.mix(jnp.asarray(x), jnp.asarray(y), lam, jnp.asarray(pairing))
    expect = lam[:, None] * x + (1 - lam[:, None]) * x[pairing]
    np.testing.assert_allclose(mx, expect, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("per_example", [False, True])
def test_mixup_hook_output_is_a_convex_combination_of_batch_pairs(getkey, per_example):
    """Targets one-hot on the row index reveal each row's lambda and partner."""
    B = 8
    x = jax.random.normal(getkey(), (B, 3))
    targets = jnp.eye(B)  # row i's target is class i: y' shows lambda_i and pi(i)
    hook = jax.jit(mixup.MIXUP.batch(ctx("mixup")))
    m = member(mixup=jnp.float32(0.4), mixup_per_example=jnp.bool_(per_example))
    mx, my = map(np.asarray, hook(getkey(), jnp.int32(7), x, targets, m))
    x = np.asarray(x)
    np.testing.assert_allclose(my.sum(1), 1.0, rtol=1e-6)
    unpaired = []  # lambda of each row mixed with another row
    for i in range(B):
        if np.isclose(my[i, i], 1.0):  # paired with itself: the row as it was
            np.testing.assert_allclose(mx[i], x[i], rtol=1e-6, atol=1e-6)
            continue
        lam = my[i, i]
        partner = int(np.argmax(np.where(np.arange(B) == i, -1.0, my[i])))
        np.testing.assert_allclose(my[i, partner], 1 - lam, rtol=1e-5, atol=1e-6)
        expect = lam * x[i] + (1 - lam) * x[partner]
        np.testing.assert_allclose(mx[i], expect, rtol=1e-5, atol=1e-6)
        unpaired.append(lam)
    assert len(unpaired) >= B // 2
    if per_example:
        assert len(set(np.round(unpaired, 6))) > 1
    else:
        np.testing.assert_allclose(unpaired, unpaired[0], rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_mixup_lambda_has_the_beta_mean_and_variance(alpha, getkey):
    n = 200_000
    lam = np.asarray(mixup.sample_lambda(getkey(), jnp.float32(alpha), n, True), float)
    # Beta(a, a): mean 1/2, variance 1/(4(2a+1)), excess kurtosis -6/(2a+3)
    var = 1 / (4 * (2 * alpha + 1))
    mu4 = var**2 * (3 - 6 / (2 * alpha + 3))
    mean_band = Z999 * np.sqrt(var / n)
    var_band = Z999 * np.sqrt((mu4 - var**2) / n)  # sd of the sample variance
    assert abs(lam.mean() - 0.5) < mean_band, (lam.mean(), mean_band)
    assert abs(lam.var() - var) < var_band, (lam.var(), var, var_band)
    assert ((lam >= 0) & (lam <= 1)).all()


def test_mixup_per_batch_draws_one_lambda_and_alpha_zero_is_the_identity(getkey):
    lam = mixup.sample_lambda(getkey(), jnp.float32(0.5), 64, jnp.bool_(False))
    assert np.unique(np.asarray(lam)).size == 1
    x, y = jax.random.normal(getkey(), (16, 3)), jnp.eye(4)[jnp.arange(16) % 4]
    same_x, same_y = jax.jit(mixup.mixup_batch)(getkey(), x, y, 0.0, True)
    np.testing.assert_array_equal(same_x, x)
    np.testing.assert_array_equal(same_y, y)


def test_mixup_hook_is_per_member_under_jit_and_vmap(getkey):
    x, y = jax.random.normal(getkey(), (16, 3)), jnp.eye(4)[jnp.arange(16) % 4]
    hook = mixup.MIXUP.batch(ctx("mixup", "mixup_per_example"))
    ms = members(mixup=[0.0, 0.3, 0.3], mixup_per_example=[False, False, True])
    one = lambda m: hook(jnp.asarray(jax.random.PRNGKey(3)), jnp.int32(5), x, y, m)  # noqa: E731
    mx, my = jax.jit(jax.vmap(one))(ms)
    np.testing.assert_array_equal(mx[0], x)  # alpha 0: exactly the batch
    for i in (1, 2):
        single = member(mixup=jnp.float32(0.3), mixup_per_example=bool(i == 2))
        ex, ey = one(single)
        np.testing.assert_allclose(mx[i], ex, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(my[i], ey, rtol=1e-6, atol=1e-7)
    assert not np.allclose(mx[1], x)


# --- input noise --------------------------------------------------------------------


def test_input_noise_perturbation_has_mean_zero_and_variance_sigma_squared(getkey):
    sigma, shape = 0.3, (1000, 100)
    x = jax.random.uniform(getkey(), shape)
    hook = jax.jit(input_noise.INPUT_NOISE.batch(ctx("input_noise")))
    targets = jnp.zeros((shape[0], 2))
    noisy, same = hook(getkey(), jnp.int32(3), x, targets, member(input_noise=sigma))
    np.testing.assert_array_equal(same, targets)
    d = np.asarray(noisy - x, np.float64).ravel()
    n = d.size
    # mean: sd sigma/sqrt(n); sample variance of a normal: sd sigma^2 sqrt(2/n)
    assert abs(d.mean()) < Z999 * sigma / np.sqrt(n), d.mean()
    assert abs(d.var() - sigma**2) < Z999 * sigma**2 * np.sqrt(2 / n), d.var()


def test_input_noise_sigma_zero_is_the_identity_and_draws_change_per_step(getkey):
    x = jax.random.normal(getkey(), (32, 4))
    hook = input_noise.INPUT_NOISE.batch(ctx("input_noise"))
    key, y = getkey(), jnp.zeros((32, 2))
    ms = members(input_noise=[0.0, 0.5])
    out, _ = jax.jit(jax.vmap(lambda m: hook(key, jnp.int32(0), x, y, m)))(ms)
    np.testing.assert_array_equal(out[0], x)
    later, _ = hook(key, jnp.int32(1), x, y, member(input_noise=jnp.float32(0.5)))
    assert not np.allclose(out[1], later)  # a fresh draw at every step


# --- weight noise -------------------------------------------------------------------


def _data(getkey, n=12, spec=MODEL):
    x = jax.random.normal(getkey(), (n, spec.widths[0]))
    labels = jax.random.randint(getkey(), (n,), 0, spec.n_classes)
    return x, jax.nn.one_hot(labels, spec.n_classes)


def _reference_loss(params, x, targets, spec=MODEL):
    """Mean cross-entropy written with jax.nn, independent of reglab.nn's losses."""
    a = x
    for l in range(1, spec.depth + 1):
        z = a @ params[f"W{l}"] + params[f"b{l}"]
        a = jnp.tanh(z) if l < spec.depth else z
    return -(targets * jax.nn.log_softmax(a)).sum(-1).mean()


def test_weight_noise_gradient_equals_jax_grad_of_the_noisy_forward(getkey):
    params = nn.init_mlp(getkey(), MODEL)
    x, targets = _data(getkey)
    hook = weight_noise.WEIGHT_NOISE.weights(ctx("weight_noise"))
    key, t, m = getkey(), jnp.int32(11), member(weight_noise=jnp.float32(0.2))

    @jax.jit
    def explicit(params):  # the trainer's path: hook, forward, loss, backward
        noisy = hook(key, t, params, m)
        logits, cache = nn.mlp_forward(noisy, x, MODEL)
        _, delta = nn.softmax_cross_entropy(logits, targets)
        return nn.mlp_backward(noisy, cache, delta, MODEL)

    def noisy_loss(params):
        return _reference_loss(hook(key, t, params, m), x, targets)

    ours, oracle = explicit(params), jax.jit(jax.grad(noisy_loss))(params)
    clean = jax.jit(jax.grad(_reference_loss))(params, x, targets)
    for k in params:  # float32: 1e-5 relative, 1e-6 absolute
        np.testing.assert_allclose(ours[k], oracle[k], rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(ours[k], clean[k], atol=1e-4) for k in params)


def test_weight_noise_statistics_and_absence_at_sigma_zero_and_at_evaluation(getkey):
    spec = nn.MLPSpec((50, 200, 10))
    params = nn.init_mlp(getkey(), spec)
    hook = weight_noise.WEIGHT_NOISE.weights(ctx("weight_noise"))
    ms = members(weight_noise=[0.0, 0.05])
    key = getkey()
    noisy = jax.jit(jax.vmap(lambda m: hook(key, jnp.int32(2), params, m)))(ms)
    for k in params:
        np.testing.assert_array_equal(noisy[k][0], params[k])
    d = np.concatenate([np.asarray(noisy[k][1] - params[k]).ravel() for k in params])
    sigma, n = 0.05, d.size
    assert abs(d.mean()) < Z999 * sigma / np.sqrt(n)
    assert abs(d.var() - sigma**2) < Z999 * sigma**2 * np.sqrt(2 / n)
    # evaluation never sees it: the regularizer acts at the weights place alone,
    # which the trainer applies to the training step's forward and backward only
    reg = weight_noise.WEIGHT_NOISE
    assert reg.batch is reg.masks is reg.loss is reg.step is reg.average is None
    assert reg.gradient is reg.update is None


# --- gradient noise -----------------------------------------------------------------


def _tree(getkey):
    return {"W1": jax.random.normal(getkey(), (3, 4)), "b1": jnp.zeros(4),
            "W2": jax.random.normal(getkey(), (4, 2)), "b2": jnp.ones(2)}  # fmt: skip


def test_gradient_noise_draws_equal_optax_add_noise(getkey):
    eta, gamma, key = 0.3, 0.55, jax.random.PRNGKey(17)
    ours = gradient_noise.GRADIENT_NOISE.gradient(
        ctx("gradient_noise"),
        member(gradient_noise=jnp.float32(eta), gradient_noise_decay=gamma),
        key,
        None,
    )
    # optax takes a typed key: the same key data, so the same draws
    theirs = optax.add_noise(eta, gamma, jax.random.wrap_key_data(key))
    params = _tree(getkey)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    update = jax.jit(ours.update)
    for step in range(6):
        grads = jax.tree.map(lambda p, s=step: jnp.cos(p * (s + 1)), params)
        u_ours, s_ours = update(grads, s_ours)
        u_theirs, s_theirs = jax.jit(theirs.update)(grads, s_theirs)
        for k in params:  # the same draws; std from a float vs an int power: 1e-6
            np.testing.assert_allclose(u_ours[k], u_theirs[k], rtol=1e-6, atol=1e-6)
            assert not np.allclose(u_ours[k], grads[k])


def test_gradient_noise_variance_follows_eta_over_one_plus_t_to_the_gamma():
    eta, gamma, n = 0.5, 0.55, 100_000
    rule = gradient_noise.add_gradient_noise(eta, gamma, jax.random.PRNGKey(5))
    zeros = {"w": jnp.zeros((n,))}
    state = rule.init(zeros)
    update = jax.jit(rule.update)
    for t in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9):
        noise, state = update(zeros, state)
        var = eta / (1 + t) ** gamma  # optax.add_noise's schedule, t from 0
        d = np.asarray(noise["w"], np.float64)
        assert abs(d.var() - var) < Z999 * var * np.sqrt(2 / n), (t, d.var(), var)
        assert abs(d.mean()) < Z999 * np.sqrt(var / n)
    assert int(state.count) == 10


def test_gradient_noise_eta_zero_is_the_identity_per_member(getkey):
    params = _tree(getkey)
    ms = members(gradient_noise=[0.0, 0.1], gradient_noise_decay=[0.55, 0.0])
    key = jax.random.PRNGKey(1)

    def one(m):
        rule = gradient_noise.GRADIENT_NOISE.gradient(ctx("gradient_noise"), m, key,
                                                      None)  # fmt: skip
        updates, _ = rule.update(params, rule.init(params))
        return updates

    out = jax.jit(jax.vmap(one))(ms)
    for k in params:
        np.testing.assert_array_equal(out[k][0], params[k])
        assert not np.allclose(out[k][1], params[k])


# --- SAM ----------------------------------------------------------------------------


def _grad_fn(x, targets, spec=MODEL):
    """The trainer's grad_fn: the explicit forward and backward of reglab.nn."""

    def grad_fn(params):
        logits, cache = nn.mlp_forward(params, x, spec)
        loss, delta = nn.softmax_cross_entropy(logits, targets)
        return loss, nn.mlp_backward(params, cache, delta, spec), logits

    return grad_fn


def _reference_sam(params, x, targets, rho):
    """Foret et al.'s step written with jax.grad alone."""
    grad = jax.grad(_reference_loss)
    g = grad(params, x, targets)
    norm = jnp.sqrt(sum(jnp.sum(v * v) for v in jax.tree.leaves(g)))
    perturbed = {k: params[k] + rho * g[k] / norm for k in params}
    return grad(perturbed, x, targets)


def test_sam_step_equals_a_jax_grad_reference(getkey):
    params = nn.init_mlp(getkey(), MODEL)
    x, targets = _data(getkey)
    rule = sam.SAM.step(ctx("sam"))
    ms = members(sam=[0.0, 0.05, 0.5])
    run = jax.jit(jax.vmap(lambda m: rule(_grad_fn(x, targets), params, None, 0, m)))
    loss, grads, logits = run(ms)
    plain = jax.grad(_reference_loss)(params, x, targets)
    for i, rho in enumerate((0.0, 0.05, 0.5)):
        expect = plain if rho == 0 else _reference_sam(params, x, targets, rho)
        for k in params:  # float32: 1e-5 relative, 1e-6 absolute
            np.testing.assert_allclose(grads[k][i], expect[k], rtol=1e-5, atol=1e-6)
        # the loss and logits reported are those at w, not at the ascent point
        np.testing.assert_allclose(loss[i], _reference_loss(params, x, targets),
                                   rtol=1e-6)  # fmt: skip
        np.testing.assert_allclose(logits[i], nn.mlp_apply(params, x, MODEL),
                                   rtol=1e-6, atol=1e-6)  # fmt: skip
    assert not np.allclose(grads["W1"][2], plain["W1"], atol=1e-4)
    # one SGD step w - lr g_SAM, as the optimizer then applies it
    lr = 0.1
    step = optax.apply_updates(params, jax.tree.map(lambda g: -lr * g[1], grads))
    expect = _reference_sam(params, x, targets, 0.05)
    for k in params:
        np.testing.assert_allclose(step[k], params[k] - lr * expect[k], rtol=1e-5,
                                   atol=1e-6)  # fmt: skip


def test_sam_at_a_zero_gradient_stays_at_w():
    params = {"W": jnp.ones((2, 2))}
    same = sam.ascent_point(params, {"W": jnp.zeros((2, 2))}, 0.1)
    np.testing.assert_array_equal(same["W"], params["W"])


# --- SWA ----------------------------------------------------------------------------


def test_swa_average_equals_the_mean_of_the_stored_snapshots(getkey):
    epochs = 12
    snaps = [nn.init_mlp(getkey(), MODEL) for _ in range(epochs)]  # end of epoch e
    rule = swa.SWA.average(ctx("swa_start", "swa_every"))
    ms = members(
        swa_start=[0.0, 3.0, 5.0, 4.7, 10.0], swa_every=[1.0, 2.0, 1.0, 3.0, 0.0]
    )
    # which epochs join: start, start + k, ... (a fractional start rounds down; an
    # every of 0, the default, takes every epoch)
    joined = [[], [3, 5, 7, 9, 11], list(range(5, 13)), [4, 7, 10], [10, 11, 12]]

    def run(m):
        state = rule.init(snaps[0])
        evaluated = []
        for e in range(1, epochs + 1):
            state = rule.update(state, snaps[e - 1], jnp.int32(e), m)
            evaluated.append(rule.evaluate(state, snaps[e - 1], m))
        return state, evaluated

    state, evaluated = jax.jit(jax.vmap(run))(ms)
    for i, epochs_in in enumerate(joined):
        assert int(state.count[i]) == len(epochs_in)
        last = evaluated[-1]
        for k in snaps[0]:
            if epochs_in:  # float32 running mean vs numpy's: 1e-6
                expect = np.mean([np.asarray(snaps[e - 1][k]) for e in epochs_in], 0)
            else:
                expect = np.asarray(snaps[-1][k])  # no average: the live params
            np.testing.assert_allclose(last[k][i], expect, rtol=1e-6, atol=1e-6)
            # before its first snapshot a member is evaluated at its live params
            first = epochs_in[0] if epochs_in else epochs + 1
            for e in range(1, min(first, epochs + 1)):
                np.testing.assert_array_equal(evaluated[e - 1][k][i], snaps[e - 1][k])


# --- in the trainer, once the seam registers them -----------------------------------


def _registered() -> bool:
    names = {s.name for s in settings.table()}
    return all(s.name in names for r in ALL for s in r.settings)


needs_seam = pytest.mark.skipif(
    not _registered(),
    reason="the six are not in the settings table yet (registered by the seam)",
)


def _trainer_check(members: dict, exact: bool):
    """Train members (name -> per-member values) and the same number of members with
    every regularizer off; return the first result, the data and the spec."""
    from reglab import optim
    from reglab.ensemble import Ensemble
    from reglab.train import TrainSpec, train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    spec = TrainSpec(nn.MLPSpec((2, 8, 8, 2)), optim.OptimizerSpec("sgd"), epochs=6,
                     batch_size=8)  # fmt: skip
    n = len(next(iter(members.values())))
    values = {"learning_rate": np.full(n, 0.3)}
    values |= {k: np.asarray(v, np.float64) for k, v in members.items()}
    sets = {"train": (x, y)}
    both = train(spec, Ensemble((0,), values), x, y, eval_sets=sets)
    off = train(spec, Ensemble((0,), {"learning_rate": values["learning_rate"]}), x, y,
                eval_sets=sets)  # fmt: skip
    # member 0 has the six off: bit for bit as without them, or to float32 rounding
    # where the layout differs (1e-6: a few ulps over 6 epochs of 4 steps)
    same = np.testing.assert_array_equal if exact else _close
    for k in off.params:
        same(both.params[k][:, 0], off.params[k][:, 0])
        for i in range(1, n):  # each regularizer moved its member's weights
            assert not np.allclose(both.params[k][:, i], off.params[k][:, 0])
    for m in ("loss", "accuracy"):
        same(both.history["train"][m][:, 0], off.history["train"][m][:, 0])
    return both, x, y, spec


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@needs_seam
@pytest.mark.slow  # three small programs
def test_in_the_trainer_off_members_are_bit_identical_and_each_one_acts():
    """A member with the six off trains as in a program without them: bit for bit
    where the program keeps its layout; where a batch hook changes inputs, each
    member sees its own batch (no shared wide layer-1 matmul), whose float32 rounding
    differs. Weight noise never reaches the recorded evaluation."""
    from reglab.train import predict

    _trainer_check({"mixup": [0, 0.4, 0], "input_noise": [0, 0, 0.2]}, exact=False)
    shared = {"weight_noise": [0, 0.2, 0, 0, 0], "gradient_noise": [0, 0, 0.05, 0, 0],
              "gradient_noise_decay": [0, 0, 0.55, 0, 0], "sam": [0, 0, 0, 0.1, 0],
              "swa_start": [0, 0, 0, 0, 3.0]}  # fmt: skip
    both, x, y, spec = _trainer_check(shared, exact=True)
    logits = predict(spec.model, both.params, x)[0, 1]  # (n, K), clean weights
    nll = -np.take_along_axis(np.asarray(jax.nn.log_softmax(logits)), y[:, None], 1)
    np.testing.assert_allclose(both.history["train"]["loss"][0, 1, -1], nll.mean(),
                               rtol=1e-5)  # fmt: skip
