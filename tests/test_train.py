"""The trainer: determinism, ensemble = alone, common random numbers, bookkeeping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reglab import nn, optim
from reglab.ensemble import Ensemble
from reglab.train import EarlyStopping, TrainSpec, log_spaced_epochs, predict, train

MODEL = nn.MLPSpec((2, 8, 8, 2))
SPEC = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=6, batch_size=8)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    return x, y


def fit(data, ens, spec=SPEC, **kw):
    return train(spec, ens, *data, **kw)


def test_same_seed_same_result_bit_for_bit(data):
    ens = Ensemble.grid(seeds=(3,), learning_rate=0.3, l2_strength=[0.0, 0.01])
    a, b = fit(data, ens), fit(data, ens)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    np.testing.assert_array_equal(
        a.history["train"]["loss"], b.history["train"]["loss"]
    )


def test_member_of_ensemble_matches_model_trained_alone(data):
    ens = Ensemble.grid(
        seeds=(0, 1), learning_rate=0.3, l2_strength=[0.0, 0.01, 0.02], p_drop=0.0
    )
    many = fit(data, ens)
    alone = fit(data, Ensemble.grid(seeds=(1,), learning_rate=0.3, l2_strength=0.01))
    for k in many.params:
        np.testing.assert_allclose(
            many.params[k][1, 1], alone.params[k][0, 0], 1e-5, 1e-5
        )


def test_shared_seed_shares_init_and_batches_and_seeds_differ(data):
    ens = Ensemble.grid(seeds=(0, 1), learning_rate=[0.3, 0.3])
    r = fit(data, ens, snapshot_params=("W1",), snapshot_epochs=(0,))
    np.testing.assert_array_equal(r.snapshots["W1"][0, 0], r.snapshots["W1"][0, 1])
    np.testing.assert_array_equal(r.params["W2"][0, 0], r.params["W2"][0, 1])
    assert not np.allclose(r.snapshots["W1"][0, 0], r.snapshots["W1"][1, 0])


def test_one_epoch_matches_a_hand_written_loop_with_a_partial_batch(data):
    # N=30, B=8: batches of 8, 8, 8 and a last one of 6 (kept, averaged over 6).
    x, y = data
    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=1, batch_size=8)
    ens = Ensemble.grid(seeds=(5,), learning_rate=0.2, l2_strength=0.01)
    got = fit(data, ens, spec=spec)
    init_key, order_key, _, _ = jax.random.split(jax.random.PRNGKey(5), 4)
    params = nn.init_mlp(init_key, MODEL)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(order_key, 1), 30))

    def loss(p, xb, yb):
        logits = nn.mlp_apply(p, xb, MODEL)
        return -jax.nn.log_softmax(logits)[jnp.arange(len(yb)), yb].mean()

    starts = range(0, 30, 8)
    assert [len(perm[s : s + 8]) for s in starts] == [8, 8, 8, 6]
    for start in starts:
        idx = perm[start : start + 8]
        g = jax.grad(loss)(params, x[idx], y[idx])
        lr = 0.2  # alpha = 0: constant
        params = {k: params[k] - lr * (g[k] + 0.01 * params[k]) for k in params}
    for k in params:
        np.testing.assert_allclose(got.params[k][0, 0], params[k], 1e-5, 1e-6)


def test_diverging_member_is_reported_and_others_go_on(data):
    # ReLU is unbounded, so a huge learning rate overflows float32 within a few steps
    spec = TrainSpec(nn.MLPSpec((2, 8, 8, 2), "relu"), epochs=6, batch_size=8)
    ens = Ensemble.grid(seeds=(0,), learning_rate=[0.3, 1e30])
    r = fit(data, ens, spec=spec)
    assert r.diverged.tolist() == [[False, True]]
    assert len(r.failures) == 1 and "learning_rate=1e+30" in r.failures[0]
    assert np.isfinite(r.params["W1"]).all()
    assert r.stopped_epoch[0, 1] < 6
    alone = fit(data, Ensemble.grid(seeds=(0,), learning_rate=0.3), spec=spec)
    np.testing.assert_allclose(r.params["W1"][0, 0], alone.params["W1"][0, 0], 1e-5)


def test_records_and_snapshots_land_at_their_epochs(data):
    r = fit(
        data,
        Ensemble.grid(seeds=(0,), learning_rate=0.3),
        record=[0, 2, 6],
        snapshot_params=("W1", "b2"),
        snapshot_epochs=(0, 6),
    )
    assert r.record_epochs.tolist() == [0, 2, 6]
    assert r.history["train"]["loss"].shape == (1, 1, 3)
    np.testing.assert_array_equal(r.snapshots["W1"][0, 0, 1], r.params["W1"][0, 0])
    init = nn.init_mlp(jax.random.split(jax.random.PRNGKey(0), 4)[0], MODEL)
    np.testing.assert_allclose(r.snapshots["W1"][0, 0, 0], init["W1"], 1e-6)
    logits = predict(MODEL, r.params, data[0])
    acc = (logits.argmax(-1) == data[1]).mean(-1)
    np.testing.assert_allclose(acc, r.history["train"]["accuracy"][..., -1], 1e-6)
    assert (
        log_spaced_epochs(1000, 10)[0] == 0 and log_spaced_epochs(1000, 10)[-1] == 1000
    )


def test_early_stopping_stops_and_restores_the_best_epoch(data):
    x, y = data
    rng = np.random.default_rng(1)
    val = (x[:10] + rng.normal(size=(10, 2)).astype(np.float32), 1 - y[:10])
    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=60, batch_size=8)
    early = EarlyStopping(monitor="val", patience=5)
    r = fit(
        data,
        Ensemble.grid(seeds=(0,), learning_rate=0.5),
        spec=spec,
        eval_sets={"val": val},
        early_stopping=early,
    )
    stopped, best = int(r.stopped_epoch[0, 0]), int(r.best_epoch[0, 0])
    assert stopped < 60 and stopped - best == 5
    val_losses = r.history["val"]["loss"][0, 0]
    assert val_losses[best] == val_losses[: stopped + 1].min()
    logits = predict(MODEL, r.params, val[0])[0, 0]
    nll = -jax.nn.log_softmax(logits)[np.arange(10), val[1]].mean()
    np.testing.assert_allclose(nll, val_losses[best], rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"loss": "hinge"}, "loss must be one of"),
    ],
)
def test_bad_train_spec_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainSpec(MODEL, **kwargs)


def test_bad_inputs_raise_before_compiling(data):
    x, y = data
    ens = Ensemble.grid(seeds=(0,), learning_rate=0.1)
    big = TrainSpec(MODEL, epochs=1, batch_size=31)
    with pytest.raises(ValueError, match="batch_size must be <= the 30 training"):
        train(big, ens, x, y)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3 is not"):
        train(SPEC, ens, bad, y)
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 2\)"):
        train(SPEC, ens, x, y + 1)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        train(SPEC, ens, x[:, :1], y)
    with pytest.raises(ValueError, match="augment_fn is None"):
        train(SPEC, Ensemble.grid(seeds=(0,), learning_rate=0.1, augment=1), x, y)
    with pytest.raises(ValueError, match="'val' is not an eval set"):
        train(SPEC, ens, x, y, early_stopping=EarlyStopping("val"))
    # a dropout rate on a network without dropout layers would silently do nothing
    no_layers = Ensemble.grid(seeds=(0,), learning_rate=0.1, p_drop=[0.0, 0.5])
    with pytest.raises(ValueError, match=r"p_drop=0.5 needs dropout layers.*\(1, 2\)"):
        train(SPEC, no_layers, x, y)


def test_a_finite_but_exploding_loss_is_flagged(data):
    # tanh saturates, so a huge learning rate drives the loss up without a NaN
    ens = Ensemble.grid(seeds=(0,), learning_rate=[0.3, 1e6])
    spec = TrainSpec(MODEL, epochs=12, batch_size=8)
    r = fit(data, ens, spec=spec)
    assert r.exploded.tolist() == [[False, True]]
    assert not r.diverged.any()
    assert len(r.failures) == 1 and "exploded" in r.failures[0]
    assert "learning_rate=1e+06" in r.failures[0] and "lower" in r.failures[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"l2_strength": [0.0, -1.0]}, "l2_strength must be finite and >= 0"),
        ({"p_drop": 1.0}, r"p_drop must be finite and \[0, 1\), got 1.0"),
        ({"smoothing": -0.1}, r"smoothing must be finite and \[0, 1\)"),
        ({"l2_strength": []}, "l2_strength has no values"),
        ({"momentum": 0.9}, "unknown ensemble setting"),
        ({"augment": 0.5}, "augment must be True or False"),
        ({"dropout_per_batch": [0, 2]}, "dropout_per_batch must be True or False.*2"),
        ({"decoupled": True, "proximal": True}, "both decoupled and proximal"),
    ],
)
def test_bad_ensemble_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Ensemble.grid(seeds=(0,), learning_rate=0.1, **kwargs)


def test_per_batch_dropout_members_share_a_program_with_per_example_ones(data):
    # one program: p=0, per-batch p=0.3, per-example p=0.3; each matches its own run
    drop = dict(dropout_layers=(1, 2))
    spec = TrainSpec(nn.MLPSpec((2, 8, 8, 2), **drop), epochs=6, batch_size=8)
    ens = Ensemble((4,), {"learning_rate": 0.3, "p_drop": [0.0, 0.3, 0.3],
                          "dropout_per_batch": [1, 1, 0]})  # fmt: skip
    both = fit(data, ens, spec=spec)
    batch_spec = TrainSpec(
        nn.MLPSpec((2, 8, 8, 2), dropout_mode="per_batch", **drop), epochs=6,
        batch_size=8,
    )  # fmt: skip
    alone_batch = fit(data, Ensemble((4,), {"learning_rate": 0.3, "p_drop": [0.3]}),
                      spec=batch_spec)  # fmt: skip
    alone_example = fit(
        data, Ensemble((4,), {"learning_rate": 0.3, "p_drop": [0.3]}), spec=spec
    )
    for k in both.params:
        np.testing.assert_allclose(
            both.params[k][0, 1], alone_batch.params[k][0, 0], 1e-5, 1e-5
        )
        np.testing.assert_allclose(
            both.params[k][0, 2], alone_example.params[k][0, 0], 1e-5, 1e-5
        )
    assert not np.allclose(both.params["W2"][0, 1], both.params["W2"][0, 2])


def test_coupled_decoupled_and_proximal_members_share_a_program(data):
    adam = optim.OptimizerSpec("adam", penalty="coupled")
    spec = TrainSpec(MODEL, adam, epochs=6, batch_size=8)
    strengths = {"l2_strength": 0.05, "l1_strength": 0.01}
    ens = Ensemble((1,), {"learning_rate": 0.01, **strengths,
                          "decoupled": [0, 1, 0], "proximal": [0, 0, 1]})  # fmt: skip
    both = fit(data, ens, spec=spec)
    for c, penalty in enumerate(optim.PENALTIES):
        alone_spec = TrainSpec(
            MODEL, optim.OptimizerSpec("adam", penalty=penalty), epochs=6,
            batch_size=8,
        )  # fmt: skip
        one = Ensemble((1,), {"learning_rate": 0.01, **strengths})
        alone = fit(data, one, spec=alone_spec)
        for k in both.params:
            np.testing.assert_allclose(
                both.params[k][0, c], alone.params[k][0, 0], 1e-5, 1e-5
            )
    assert not np.allclose(both.params["W1"][0, 0], both.params["W1"][0, 1])
    proximal = TrainSpec(MODEL, optim.OptimizerSpec("sgd", penalty="proximal"), 6, 8)
    with pytest.raises(ValueError, match="decoupled=True need OptimizerSpec"):
        fit(data, ens, spec=proximal)


def test_ensemble_grid_is_a_product_in_order():
    ens = Ensemble.grid(seeds=(0, 1), learning_rate=[0.1, 0.2], l2_strength=[0, 1, 2])
    assert ens.shape == (2, 6)
    assert ens.config(4) == pytest.approx(
        {**ens.config(4), "learning_rate": 0.2, "l2_strength": 1.0}
    )
    assert "l2_strength=1" in ens.describe(0, 4)


def test_running_metrics_equal_the_exact_loss_before_a_full_batch_epoch(data):
    # With one full batch per epoch, epoch e trains on all rows with the parameters
    # that the exact evaluation saw at the end of epoch e - 1.
    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=5, batch_size=30)
    r = fit(data, Ensemble.grid(seeds=(0,), learning_rate=0.3), spec=spec, record=1)
    running, exact = r.running, r.history["train"]
    assert np.isnan(running["loss"][0, 0, 0])  # no training before epoch 1
    np.testing.assert_allclose(running["loss"][..., 1:], exact["loss"][..., :-1], 1e-5)
    np.testing.assert_allclose(
        running["accuracy"][..., 1:], exact["accuracy"][..., :-1], 1e-6
    )


def test_running_metrics_need_no_eval_sets(data):
    r = fit(data, Ensemble.grid(seeds=(0,), learning_rate=0.3), eval_sets={})
    assert r.history == {}
    assert r.running["loss"].shape == (1, 1, SPEC.epochs + 1)
    assert np.isfinite(r.running["loss"][..., 1:]).all()


DROPOUT_SPEC = TrainSpec(
    nn.MLPSpec((2, 8, 8, 2), dropout_layers=(1, 2), dropout_mode="per_example"),
    optim.OptimizerSpec("adam"),
    epochs=6,
    batch_size=8,
)


@pytest.mark.parametrize(
    "spec, settings",
    [
        (
            SPEC,
            {"learning_rate": 0.3, "l2_strength": [0, 0.01, 0.02, 0.03, 0.04, 0.05]},
        ),
        (
            DROPOUT_SPEC,
            {
                "learning_rate": 0.05,
                "p_drop": [0.0, 0.2, 0.4],
                "dropout_per_batch": [0.0, 1.0],
            },
        ),
    ],
    ids=["sgd_weight_decay", "adam_dropout_per_batch"],
)
def test_numbers_do_not_depend_on_the_device_count(data, spec, settings):
    # 2 seeds x 6 configs: two groups of 3, on one device in turn or one per device
    assert len(jax.devices()) >= 2, "conftest asks for two CPU devices"
    ens = Ensemble.grid(seeds=(0, 1), **settings)
    kw = dict(eval_sets={"train": data}, snapshot_params=("W1",), snapshot_epochs=(2,))
    one, two = (
        fit(data, ens, spec, devices=1, **kw),
        fit(data, ens, spec, devices=2, **kw),
    )
    for k in one.params:
        np.testing.assert_array_equal(one.params[k], two.params[k])
    np.testing.assert_array_equal(one.snapshots["W1"], two.snapshots["W1"])
    np.testing.assert_array_equal(
        one.history["train"]["loss"], two.history["train"]["loss"]
    )
    np.testing.assert_array_equal(one.running["loss"], two.running["loss"])


def test_diverging_member_on_the_second_device_is_reported(data):
    # 12 configs: two groups of 6, config 11 in the second group, on device 1
    spec = TrainSpec(nn.MLPSpec((2, 8, 8, 2), "relu"), epochs=6, batch_size=8)
    ens = Ensemble.grid(seeds=(0,), learning_rate=[0.3] * 11 + [1e30])
    r = fit(data, ens, spec=spec, devices=2)
    assert r.diverged.tolist() == [[False] * 11 + [True]]
    assert len(r.failures) == 1 and "learning_rate=1e+30" in r.failures[0]
    assert np.isfinite(r.params["W2"]).all()


def test_a_chosen_device_runs_the_program(data):
    from reglab import placement

    ens = Ensemble.grid(seeds=(0,), learning_rate=0.3, l2_strength=[0.0, 0.01])
    second = fit(data, ens, devices=[jax.devices()[1]])
    compiled = list(placement.PROGRAMS.values())[-1]  # the chunk program just built
    shardings = jax.tree.leaves(compiled.input_shardings)
    assert {d for s in shardings for d in s.device_set} == {jax.devices()[1]}
    first = fit(data, ens, devices=1)
    for k in first.params:
        np.testing.assert_array_equal(first.params[k], second.params[k])


@pytest.mark.parametrize("devices", [0, 99, []])
def test_bad_devices_raise(data, devices):
    ens = Ensemble.grid(seeds=(0,), learning_rate=0.3)
    with pytest.raises(ValueError, match="devices must"):
        fit(data, ens, devices=devices)


def test_wide_ensemble_runs_in_groups_and_matches_members_alone(data):
    # 11 configs: two groups of 6 (one padded copy), run one after the other
    strengths = [0.001 * i for i in range(11)]
    wide = fit(
        data, Ensemble.grid(seeds=(2,), learning_rate=0.3, l2_strength=strengths)
    )
    assert wide.params["W1"].shape[:2] == (1, 11)
    for c in (0, 6, 10):
        alone = fit(
            data,
            Ensemble.grid(seeds=(2,), learning_rate=0.3, l2_strength=strengths[c]),
        )
        for k in alone.params:
            np.testing.assert_allclose(
                wide.params[k][0, c], alone.params[k][0, 0], 1e-5, 1e-5
            )


def test_max_norm_members_keep_every_units_incoming_weights_capped(data):
    ens = Ensemble.grid(seeds=(0, 1), learning_rate=0.3, max_norm=[0.0, 0.5])
    r = fit(data, ens)
    for k in ("W1", "W2", "W3"):
        norms = np.linalg.norm(r.params[k], axis=-2)  # (S, C, fan_out)
        assert norms[:, 1].max() <= 0.5 * (1 + 1e-5)
        assert norms[:, 0].max() > 0.5  # the unconstrained twin is not capped


def test_train_chunks_stream_the_run_that_train_returns(data):
    from reglab.train import train_chunks

    ens = Ensemble.grid(seeds=(0,), learning_rate=0.3, l2_strength=[0.0, 0.01])
    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=6, batch_size=8,
                     chunk_epochs=2)  # fmt: skip
    chunks = list(train_chunks(spec, ens, *data))
    assert [c.epoch for c in chunks] == [1, 3, 5, 6]  # chunks end at epoch 2k-1
    assert [c.done for c in chunks] == [False, False, False, True]
    whole = fit(data, ens, spec=spec)
    last = chunks[-1].result()
    for k in whole.params:
        np.testing.assert_array_equal(last.params[k], whole.params[k])
    assert not np.array_equal(chunks[0].params["W2"], chunks[-1].params["W2"])


def _checkpoints(data, ens, spec, **kw):
    """Return the final result and each checkpoint (epoch -> arrays) of a run."""
    saved = {}
    whole = fit(data, ens, spec, checkpoint=lambda e, a: saved.setdefault(e, a),
                checkpoint_every_s=0, **kw)  # fmt: skip
    return whole, saved


def _assert_same_run(a, b):
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    for name, h in a.history.items():
        for m in h:
            np.testing.assert_array_equal(h[m], b.history[name][m])
    for m in a.running:
        np.testing.assert_array_equal(a.running[m], b.running[m])
    for k in a.snapshots:
        np.testing.assert_array_equal(a.snapshots[k], b.snapshots[k])
    for f in ("diverged", "exploded", "stopped_epoch", "best_epoch"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    jax.tree.map(np.testing.assert_array_equal, a.opt_state, b.opt_state)
    assert a.failures == b.failures


@pytest.mark.parametrize(
    "spec, settings, early",
    [
        (SPEC, {"learning_rate": 0.3, "l2_strength": [0, 0.01, 0.02, 0.03, 5.0]}, None),
        (
            DROPOUT_SPEC,
            {"learning_rate": 0.05, "p_drop": [0.0, 0.2, 0.4, 0.5, 0.1]},
            EarlyStopping(monitor="train", patience=2, restore_best=True),
        ),
    ],
    ids=["sgd", "adam_dropout_early_stopping"],
)
def test_resume_from_a_checkpoint_ends_bit_identical(data, spec, settings, early):
    # 2 seeds x 5 configs: two groups of 3, one padded; resumed on another device count
    spec = TrainSpec(spec.model, spec.optimizer, epochs=6, batch_size=8,
                     chunk_epochs=2)  # fmt: skip
    ens = Ensemble.grid(seeds=(0, 1), **settings)
    kw = dict(eval_sets={"train": data}, snapshot_params=("W1",),
              snapshot_epochs=(2, 5), early_stopping=early)  # fmt: skip
    whole, saved = _checkpoints(data, ens, spec, devices=1, **kw)
    assert sorted(saved) == [1, 3, 5, 6]  # every chunk's end (every_s=0)
    resumed = fit(data, ens, spec, devices=2, resume=saved[3], **kw)
    _assert_same_run(whole, resumed)
    again = fit(data, ens, spec, resume=saved[6], **kw)  # it had ended: no training
    _assert_same_run(whole, again)
    assert again.run_seconds == 0.0


def test_checkpointing_numbers_the_train_calls_and_resumes_each(data):
    from reglab.train import checkpointing

    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=6, batch_size=8,
                     chunk_epochs=2)  # fmt: skip
    ens, ens2 = (
        Ensemble.grid(seeds=(0,), learning_rate=lr) for lr in ([0.1, 0.3], 0.2)
    )
    saved: dict = {}
    with checkpointing(lambda call, e, a: saved.setdefault((call, e), a), every_s=0):
        first, second = fit(data, ens, spec), fit(data, ens2, spec)
    assert sorted(saved) == [(c, e) for c in (0, 1) for e in (1, 3, 5, 6)]
    resumes = {0: saved[0, 6], 1: saved[1, 3]}  # the 1st had ended, the 2nd had not
    with checkpointing(lambda *a: None, resumes.get):
        again = fit(data, ens, spec), fit(data, ens2, spec)
    _assert_same_run(first, again[0])
    _assert_same_run(second, again[1])


def test_resume_from_another_run_raises(data):
    spec = TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=6, batch_size=8,
                     chunk_epochs=2)  # fmt: skip
    ens = Ensemble.grid(seeds=(0,), learning_rate=[0.1, 0.3])
    _, saved = _checkpoints(data, ens, spec)
    other = Ensemble.grid(seeds=(0,), learning_rate=[0.1, 0.2])
    with pytest.raises(ValueError, match="saved by a different run.*resume=None"):
        fit(data, other, spec, resume=saved[3])
    cut = {k: v for k, v in saved[3].items() if k != "state/params/W1"}
    with pytest.raises(ValueError, match="lacks 'state/params/W1'"):
        fit(data, ens, spec, resume=cut)
    bad = {**saved[3], "state/params/W1": saved[3]["state/params/W1"][:, :1]}
    with pytest.raises(ValueError, match=r"'state/params/W1' has shape \(1, 1, 2, 8\)"):
        fit(data, ens, spec, resume=bad)


@pytest.mark.parametrize(
    "optimizer, model",
    [
        ("sgd", MODEL),
        ("adam", nn.MLPSpec((2, 8, 8, 2), dropout_layers=(1, 2),
                            dropout_mode="per_example")),
    ],
)  # fmt: skip
def test_programs_leave_out_unused_settings(data, optimizer, model):
    # The lean program (no L1, max-norm, smoothing or dropout work: no member sets
    # them) against the one applying every setting at its do-nothing default: the
    # same arithmetic, though XLA may fuse (contract to FMA) differently, so equal
    # within float32 rounding, as an ensemble member and the model trained alone.
    from reglab.settings import BY_NAME, in_use
    from reglab.train import train_chunks

    spec = TrainSpec(model, optim.OptimizerSpec(optimizer), epochs=6, batch_size=8)
    ens = Ensemble.grid(seeds=(0, 1), learning_rate=0.05, l2_strength=[0.0, 0.01])
    assert in_use(ens.values) == {"l2_strength"}
    every = set(BY_NAME) - {"augment", "decoupled", "proximal"}
    lean, full = (
        list(train_chunks(spec, ens, *data, keep_settings=keep))[-1].result()
        for keep in ((), every)
    )
    for k in lean.params:
        np.testing.assert_allclose(lean.params[k], full.params[k], 1e-5, 1e-5)
    np.testing.assert_allclose(lean.running["loss"], full.running["loss"], 1e-5)
    # and a member that sets one gets its work: the program is not the lean one
    ens1 = Ensemble.grid(seeds=(0, 1), learning_rate=0.05, l2_strength=[0.0, 0.01],
                         max_norm=0.5)  # fmt: skip
    capped = list(train_chunks(spec, ens1, *data))[-1].result()
    norms = np.sqrt((capped.params["W2"] ** 2).sum(-2))
    assert norms.max() <= 0.5 + 1e-5 and not np.array_equal(
        capped.params["W2"], lean.params["W2"]
    )


def test_keep_settings_names_are_checked(data):
    from reglab.train import train_chunks

    ens = Ensemble.grid(seeds=(0,), learning_rate=0.1)
    with pytest.raises(ValueError, match="did you mean l1_strength"):
        next(train_chunks(SPEC, ens, *data, keep_settings=("l1_strenght",)))


@pytest.mark.parametrize(
    "spec, settings, early",
    [
        (SPEC, {"learning_rate": 0.3, "l2_strength": [0, 0.01, 0.02]}, None),
        (
            DROPOUT_SPEC,
            {"learning_rate": 0.05, "p_drop": [0.0, 0.2, 0.4]},
            EarlyStopping(monitor="train", patience=3, restore_best=True),
        ),
    ],
    ids=["sgd", "adam_dropout_early_stopping"],
)
def test_a_finished_run_extends_to_the_longer_runs_numbers(data, spec, settings, early):
    # 6 epochs, then on to 11 from its last checkpoint, in other chunks, against 11
    # epochs from the start: every-2 records and snapshots, so the schedules agree
    def make(epochs, chunk):
        return TrainSpec(spec.model, spec.optimizer, epochs=epochs, batch_size=8,
                         chunk_epochs=chunk)  # fmt: skip

    ens = Ensemble.grid(seeds=(0, 1), **settings)
    kw = dict(eval_sets={"train": data}, record=2, snapshot_params=("W2",),
              early_stopping=early)  # fmt: skip
    _, saved = _checkpoints(data, ens, make(6, 4), snapshot_epochs=(2, 4), **kw)
    longer = fit(data, ens, make(11, 3), snapshot_epochs=(2, 4, 10), **kw)
    extended = fit(data, ens, make(11, 5), snapshot_epochs=(2, 4, 10),
                   resume=saved[6], **kw)  # fmt: skip
    assert extended.failures.pop() == (
        "went on from the end of the same run for 6 epochs, not from 0"
    )
    _assert_same_run(longer, extended)
    assert extended.run_seconds > 0 and list(extended.record_epochs) == [
        0, 2, 4, 6, 8, 10, 11
    ]  # fmt: skip


def test_extending_refuses_what_would_not_give_the_longer_runs_numbers(data):
    spec6, spec11 = (
        TrainSpec(MODEL, optim.OptimizerSpec("sgd"), epochs=e, batch_size=8)
        for e in (6, 11)
    )
    ens = Ensemble.grid(seeds=(0,), learning_rate=0.3)
    _, saved = _checkpoints(data, ens, spec6, record=log_spaced_epochs(6, 4))
    with pytest.raises(ValueError, match=r"record schedule has epochs \[5\]"):
        fit(data, ens, spec11, record=log_spaced_epochs(11, 5), resume=saved[6])
    _, saved = _checkpoints(data, ens, spec11)
    with pytest.raises(ValueError, match="only be extended to more epochs"):
        fit(data, ens, spec6, resume=saved[11])
    other = Ensemble.grid(seeds=(0,), learning_rate=0.2)
    with pytest.raises(ValueError, match="saved by a different run"):
        fit(data, other, spec11, resume=saved[11])


def test_groups_spread_a_small_ensemble_with_the_same_numbers_on_any_device_count(
    data,
):
    from reglab.train import train_chunks

    ens = Ensemble.grid(seeds=(0, 1), learning_rate=0.3, l2_strength=[0.0, 0.01])

    def run(devices, groups):
        chunks = train_chunks(SPEC, ens, *data, devices=devices, groups=groups)
        return list(chunks)[-1].result()

    one, two, default = run(1, 2), run(2, 2), run(2, None)  # default: one group
    for k in one.params:
        np.testing.assert_array_equal(one.params[k], two.params[k])
        np.testing.assert_allclose(one.params[k], default.params[k], 1e-5, 1e-6)
    with pytest.raises(ValueError, match="groups must be an integer >= 1"):
        run(1, 0)
