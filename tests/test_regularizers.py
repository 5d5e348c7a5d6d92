"""The regularizer seam: the registry, every place of a step, key streams, plug-ins.

Each place is exercised by a small regularizer defined here and checked against an
independent oracle (jax.grad of the whole objective, a plain run, a running mean).
"""

import ast
import contextlib
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reglab import nn, optim, program, regularizers, settings
from reglab.ensemble import Ensemble
from reglab.regularizers.base import AveragingRule, Regularizer
from reglab.settings import Setting
from reglab.train import TrainSpec, predict, train

MODEL = nn.MLPSpec((2, 8, 2))
LR = 0.1


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    return x, y


def row(name, default=0.0):
    return Setting(name, default, f"test setting {name}", f"use 0 to turn {name} off")


@contextlib.contextmanager
def registered(*regs):
    """Register regs for the block, then take them out of the registry again."""
    try:
        for reg in regs:
            regularizers.register(reg)
        yield
    finally:
        for reg in regs:
            if reg in regularizers.registered():
                regularizers.unregister(reg.name)


def initial_params(seed):
    keys = program.member_keys(jnp.uint32(seed))
    return nn.init_mlp(keys.init, MODEL)


def one_full_batch_step(data, **settings_):
    """Train one epoch of one full-batch SGD step; return the params after it."""
    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=1, batch_size=16)
    ens = Ensemble((0,), {"learning_rate": LR, **settings_})
    result = train(spec, ens, *data, record=1)
    return {k: v[0, 0] for k, v in result.params.items()}


def cross_entropy(params, x, y):
    logits = nn.mlp_apply(params, x, MODEL)
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], -1).mean()


def close(got, want, tol=2e-5):
    for k in want:
        np.testing.assert_allclose(got[k], np.asarray(want[k]), rtol=tol, atol=tol)


# --- The registry ------------------------------------------------------------------


def test_builtins_are_registered_in_order_and_their_rows_make_the_table():
    names = [r.name for r in regularizers.registered()][:5]
    assert names == ["weight_decay", "max_norm", "dropout", "label_smoothing",
                     "augmentation"]  # fmt: skip
    rows = [s.name for s in settings.table()]
    assert rows[:3] == ["learning_rate", "alpha", "tau"]
    owned = [s.name for r in regularizers.registered() for s in r.settings]
    assert rows[3:] == owned


def test_a_registered_regularizer_reaches_table_member_ensemble_and_list():
    reg = Regularizer("probe", (row("probe_strength"),), "a probe")
    with registered(reg):
        assert "probe_strength" in settings.BY_NAME
        member = settings.member(learning_rate=0.1, probe_strength=0.5)
        assert member.probe_strength == 0.5
        ens = Ensemble((0,), {"learning_rate": 0.1, "probe_strength": [0.0, 0.2]})
        assert ens.members().probe_strength.tolist() == pytest.approx([0.0, 0.2])
        assert settings.in_use(ens.values) == {"probe_strength"}
        assert "probe_strength" in [r[0] for r in settings.describe()]
        with pytest.raises(ValueError, match="did you mean probe_strength"):
            Ensemble((0,), {"learning_rate": 0.1, "probe_strenght": 0.1})
    assert "probe_strength" not in settings.BY_NAME  # unregistered: gone again
    with pytest.raises(AttributeError, match="no setting 'probe_strength'"):
        _ = settings.member(learning_rate=0.1).probe_strength


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ((row("l2_strength"),), "declares setting 'l2_strength', which 'weight_dec"),
        ((row("learning_rate"),), "which the optimizer declares too — rename it"),
        ((row("bad", 0.5),), "'bad' defaults to 0.5, not 0; its default must do"),
        ((row("bad", None),), "'bad' has no default"),
        ((Setting("bad", True, "m", "f", flag=True),), "defaults to True, not False"),
        ((row("twice"), row("twice")), "declares setting 'twice'"),
    ],
)
def test_a_clash_or_a_default_that_acts_is_refused_with_the_fix(rows, match):
    with pytest.raises(ValueError, match=match):
        regularizers.register(Regularizer("bad_plugin", rows, "broken"))
    assert "bad_plugin" not in [r.name for r in regularizers.registered()]
    assert "bad" not in settings.BY_NAME


def test_a_name_is_registered_once_and_the_same_object_again_is_a_no_op():
    reg = Regularizer("probe", (row("probe_strength"),), "a probe")
    with registered(reg):
        assert regularizers.register(reg) is reg  # a module imported twice
        with pytest.raises(ValueError, match="'probe' is already registered"):
            regularizers.register(Regularizer("probe", (row("other"),), "again"))
    with pytest.raises(TypeError, match="register\\(\\) takes a"):
        regularizers.register("probe")


def test_update_rules_follow_their_order_max_norm_last():
    names = [r.name for r in regularizers.at("update", regularizers.registered())]
    assert names[-1] == "max_norm"
    assert names.index("weight_decay") < names.index("max_norm")


# --- Every place of a step ---------------------------------------------------------


def logit_penalty(ctx):
    def term(logits, targets, weights, member):
        # L = beta / 2 mean_i |z_i|^2 ; dL/dz_i = beta z_i / n
        n = jnp.maximum(weights.sum(), 1.0)
        loss = 0.5 * member.logit_penalty * (weights * (logits**2).sum(-1)).sum() / n
        return loss, member.logit_penalty * logits * (weights[:, None] / n)

    return term


def test_loss_term_joins_the_loss_and_its_gradient_matches_jax_grad(data):
    reg = Regularizer(
        "logit_penalty", (row("logit_penalty"),), "|z|^2", loss=logit_penalty
    )
    x, y = (jnp.asarray(a) for a in data)
    p0, beta = initial_params(0), 0.3

    def objective(p):
        logits = nn.mlp_apply(p, x, MODEL)
        return cross_entropy(p, x, y) + 0.5 * beta * (logits**2).sum(-1).mean()

    want = jax.tree.map(lambda p, g: p - LR * g, p0, jax.grad(objective)(p0))
    with registered(reg):
        got = one_full_batch_step(data, logit_penalty=beta)
    close(got, want)
    plain = jax.tree.map(lambda p, g: p - LR * g, p0, jax.grad(cross_entropy)(p0, x, y))
    assert not np.allclose(got["W2"], plain["W2"], atol=1e-4)  # the term acted


def scaled_weights(ctx):
    def hook(key, t, params, member):
        c = 1.0 + member.weight_scale
        return {k: v * c if k.startswith("W") else v for k, v in params.items()}

    return hook


def test_weights_hook_takes_the_gradient_at_its_weights_and_steps_the_clean_ones(data):
    reg = Regularizer(
        "weight_scale", (row("weight_scale"),), "scale", weights=scaled_weights
    )
    x, y = (jnp.asarray(a) for a in data)
    p0, s = initial_params(0), 0.5
    seen = {k: v * (1 + s) if k.startswith("W") else v for k, v in p0.items()}
    g = jax.grad(cross_entropy)(seen, x, y)  # dL/dW' at W' = (1 + s) W
    want = jax.tree.map(lambda p, g: p - LR * g, p0, g)
    with registered(reg):
        got = one_full_batch_step(data, weight_scale=s)
    close(got, want)


def test_step_rule_returning_grad_fn_is_the_plain_step_and_its_grads_are_used(data):
    def plain(grad_fn, params, key, t, member):
        return grad_fn(params)

    def doubled(grad_fn, params, key, t, member):
        loss, grads, logits = grad_fn(params)
        return loss, jax.tree.map(lambda g: 2.0 * g, grads), logits

    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=3, batch_size=8)
    base = train(spec, Ensemble((0,), {"learning_rate": LR}), *data)
    twice = train(spec, Ensemble((0,), {"learning_rate": 2 * LR}), *data)
    for rule, want in ((plain, base), (doubled, twice)):
        reg = Regularizer(
            "rule", (row("rule_on"),), "a step rule", step=lambda c, r=rule: r
        )
        with registered(reg):
            got = train(
                spec, Ensemble((0,), {"learning_rate": LR, "rule_on": 1.0}), *data
            )
        for k in want.params:  # doubling g is doubling lr: exact in float32
            np.testing.assert_array_equal(got.params[k], want.params[k])


def running_mean(ctx):
    def init(params):
        return (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))

    def update(state, params, epoch, member):
        count, total = state
        return count + 1.0, jax.tree.map(jnp.add, total, params)

    def evaluate(state, params, member):
        count, total = state
        mean = jax.tree.map(lambda s: s / jnp.maximum(count, 1.0), total)
        return jax.tree.map(lambda m, p: jnp.where(count > 0, m, p), mean, params)

    return AveragingRule(init, update, evaluate)


def test_averaging_rule_keeps_a_running_mean_used_for_records_and_results(data):
    reg = Regularizer("mean", (row("average_on"),), "mean", average=running_mean)
    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=4, batch_size=8)
    with registered(reg):
        ens = Ensemble((0,), {"learning_rate": LR, "average_on": 1.0})
        r = train(spec, ens, *data, snapshot_params=("W1", "b2"),
                  snapshot_epochs=(1, 2, 3, 4))  # fmt: skip
    for k in ("W1", "b2"):  # the snapshots are the trained (not averaged) params
        np.testing.assert_allclose(
            r.params[k][0, 0], r.snapshots[k][0, 0].mean(0), rtol=1e-6, atol=1e-6
        )
    logits = predict(MODEL, r.params, data[0])[0, 0]
    nll = -jax.nn.log_softmax(logits)[np.arange(16), data[1]].mean()
    np.testing.assert_allclose(r.history["train"]["loss"][0, 0, -1], nll, rtol=1e-5)


# --- Work left out, key streams ----------------------------------------------------


def test_the_program_leaves_out_a_regularizer_no_member_uses(data):
    built = []

    def masks(ctx):
        built.append(ctx.used)
        return None

    reg = Regularizer("unused", (row("unused_rate"),), "never on", masks=masks)
    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=1, batch_size=8)
    ens = Ensemble((0,), {"learning_rate": LR})
    with registered(reg):
        train(spec, ens, *data)
        assert built == []
        train(spec, ens, *data, keep_settings=("unused_rate",))
        assert built and "unused_rate" in built[0]


def test_a_stream_depends_on_the_seed_and_its_name_only():
    one = program.member_keys(jnp.uint32(3), ("noise",))
    two = program.member_keys(jnp.uint32(3), ("mixup", "noise"))
    plain = program.member_keys(jnp.uint32(3))
    np.testing.assert_array_equal(one.streams["noise"], two.streams["noise"])
    for name in ("init", "order", "dropout", "augment"):
        np.testing.assert_array_equal(getattr(one, name), getattr(plain, name))
    assert not np.array_equal(two.streams["mixup"], two.streams["noise"])
    assert not np.array_equal(one.streams["noise"], plain.dropout)
    assert 0 <= regularizers.stream_constant("noise") < 2**31


def noisy_weights(ctx):
    def hook(key, t, params, member):
        noise = jax.random.normal(jax.random.fold_in(key, t), params["W1"].shape)
        return {**params, "W1": params["W1"] + member.weight_jitter * noise}

    return hook


def test_adding_a_random_regularizer_leaves_dropouts_draws_as_they_were(data):
    # The jitter regularizer draws from its own stream in the program (kept in at
    # 0): if its stream took from dropout's, the masks and so the numbers would move.
    reg = Regularizer("jitter", (row("weight_jitter"),), "noise", weights=noisy_weights)
    model = nn.MLPSpec((2, 8, 8, 2), dropout_layers=(1, 2))
    spec = TrainSpec(model, optim.OptimizerSpec("sgd"), epochs=3, batch_size=8)
    ens = Ensemble((0, 1), {"learning_rate": LR, "p_drop": 0.5})
    alone = train(spec, ens, *data)
    with registered(reg):
        beside = train(spec, ens, *data, keep_settings=("weight_jitter",))
        on = {"learning_rate": LR, "p_drop": 0.5, "weight_jitter": 0.1}
        jittered = train(spec, Ensemble((0, 1), on), *data)
    for k in alone.params:
        np.testing.assert_array_equal(beside.params[k], alone.params[k])
    assert not np.allclose(jittered.params["W1"], alone.params["W1"])


def test_per_member_kind_checks_name_the_rule_once(data):
    spec = TrainSpec(
        MODEL, optim.OptimizerSpec("adam", penalty="decoupled"), batch_size=8
    )
    ens = Ensemble((0,), {"learning_rate": LR, "proximal": True})
    with pytest.raises(ValueError, match=r"proximal=True need OptimizerSpec\(penalty="):
        train(spec, ens, *data)
    with pytest.raises(ValueError, match="both decoupled and proximal"):
        Ensemble((0,), {"learning_rate": LR, "proximal": True, "decoupled": True})


# --- Plug-ins ----------------------------------------------------------------------

PLUGIN = """
from reglab.regularizers.base import Regularizer
from reglab.settings import Setting

REGULARIZER = Regularizer(
    "{name}", (Setting("{name}_strength", {default}, "m", "use 0"),), "a plug-in"
)
"""


def test_load_plugins_registers_a_module_and_names_a_broken_one(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(regularizers.PLUGINS_ENV, "")
    (tmp_path / "good_plugin.py").write_text(PLUGIN.format(name="good", default=0.0))
    (tmp_path / "live_plugin.py").write_text(PLUGIN.format(name="live", default=1.0))
    (tmp_path / "empty_plugin.py").write_text("x = 1\n")
    try:
        assert regularizers.load_plugins(["good_plugin"]) == ["good_plugin"]
        assert "good_strength" in settings.BY_NAME
        assert os.environ[regularizers.PLUGINS_ENV] == "good_plugin"  # for workers
    finally:
        regularizers.unregister("good")
    with pytest.raises(ValueError, match="plug-in 'no_such_plugin' failed to import"):
        regularizers.load_plugins(["no_such_plugin"])
    with pytest.raises(ValueError, match="plug-in 'live_plugin': .* defaults to 1.0"):
        regularizers.load_plugins(["live_plugin"])
    with pytest.raises(ValueError, match="'empty_plugin' defines no Regularizer"):
        regularizers.load_plugins(["empty_plugin"])


def test_a_broken_entry_point_is_skipped_with_one_warning(tmp_path):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\n"
                                   "Version: 0.1\n")  # fmt: skip
    (dist / "entry_points.txt").write_text(
        "[reglab.regularizers]\nbroken = no_such_module_here:REGULARIZER\n"
    )
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("always")
        from reglab import regularizers, settings
        print(sorted(r.name for r in regularizers.registered()))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = ast.literal_eval(done.stdout.strip())
    assert {"augmentation", "dropout", "label_smoothing", "weight_decay"} <= set(names)
    assert done.stderr.count("reglab plug-in 'broken'") == 1
    assert "no_such_module_here" in done.stderr and "fix or uninstall" in done.stderr


def test_member_pickles_with_a_plugins_setting_and_configs_take_it_as_a_field():
    import dataclasses
    import pickle

    reg = Regularizer("probe", (row("probe_strength"),), "a probe")
    with registered(reg):
        member = settings.member(learning_rate=0.1, probe_strength=0.25)
        back = pickle.loads(pickle.dumps(member))  # as a spawned worker gets it
        assert back == member and back.probe_strength == 0.25
        assert jax.tree.structure(back) == jax.tree.structure(member)
        base = regularizers.plugin_config_base()
        # (another test's plug-in may still be registered in this process)
        fields = {f.name: f.default for f in dataclasses.fields(base)}
        assert fields["probe_strength"] == 0.0
    after = {f.name for f in dataclasses.fields(regularizers.plugin_config_base())}
    assert "probe_strength" not in after and not after & {"l2_strength", "mixup"}
