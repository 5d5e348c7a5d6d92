"""Tests for the choices experiment at a tiny scale, and the batch-sum reading."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reglab import nn
from reglab.ensemble import Ensemble
from reglab.experiments import choices as ch
from reglab.experiments import choices_figures as chf
from reglab.experiments import choices_l2
from reglab.experiments.base import Result
from reglab.optim import OptimizerSpec
from reglab.train import TrainSpec, train

TINY = ch.Config(
    n_train=40,
    n_test=60,
    widths=(2, 8, 8, 2),
    epochs=4,
    batch_size=16,
    l2_strengths=(0.0, 0.01),
    moderate=0.01,
    threads_up_to=0.01,
    inits=("glorot_normal",),
    noises=(0.2,),
    dropout_n_train=40,
    dropout_widths=(2, 8, 8, 2),
    grid_resolution=12,
    seeds=(0, 1),
)
VARIANTS = ["reference", "batch_sum", "noise_0.2", "glorot_normal", "biases_free"]


@pytest.fixture(scope="module")
def result():
    return ch.run(TINY)


def test_run_stores_each_variant_with_member_axes(result):
    S, V, C, R = 2, len(VARIANTS), 2, TINY.grid_resolution
    a = result.arrays
    assert a["variants"].tolist() == VARIANTS
    assert a["test_acc"].shape == a["flip_fit"].shape == (S, V, C)
    assert a["prob"].shape == (S, V, C, R, R)
    assert a["x_train"].shape == (V, TINY.n_train, 2)
    assert a["dropout_prob"].shape == (S, 3, R, R)
    assert a["dropout_test_acc"].shape == (S, 3)
    for key in ("test_acc", "train_acc", "flip_fit", "dropout_test_acc"):
        assert np.all((a[key] >= 0) & (a[key] <= 1)), key
    # the noise variant trains on other data; every other variant on the reference's
    assert not np.allclose(a["x_train"][2], a["x_train"][0])
    np.testing.assert_array_equal(a["x_train"][3], a["x_train"][0])


def test_undecayed_biases_change_nothing_at_zero_strength(result):
    # lambda_2 = 0: decaying biases or not is the same update (float32 tolerance)
    prob = result.arrays["prob"]
    np.testing.assert_allclose(prob[:, 4, 0], prob[:, 0, 0], atol=1e-5)
    assert not np.allclose(prob[:, 4, 1], prob[:, 0, 1], atol=1e-5)


def _sum_loss(params, x, y):
    """Oracle: the batch-summed cross entropy of a tanh MLP, written out in jnp."""
    a = x
    for l in (1, 2):
        a = jnp.tanh(a @ params[f"W{l}"] + params[f"b{l}"])
    logits = a @ params["W3"] + params["b3"]
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1).sum()


def test_batch_sum_settings_give_the_sum_step_and_mean_the_mean_step():
    # one full-batch SGD step (N = B, constant lr) of a mean member and of a member
    # with batch_sum_settings, each against theta - lr (g + lambda theta) by hand
    rng = np.random.default_rng(0)
    B, lr, lam = 8, 0.15, 0.02
    x = rng.normal(size=(B, 2)).astype(np.float32)
    y = rng.integers(0, 2, B).astype(np.int32)
    sum_lr, sum_l2 = choices_l2.batch_sum_settings(lr, [lam], B)
    assert sum_lr[0] == pytest.approx(lr * B) and sum_l2[0] == pytest.approx(lam / B)
    ensemble = Ensemble(
        (0,), {"learning_rate": [lr, sum_lr[0]], "l2_strength": [lam, sum_l2[0]]}
    )
    model = nn.MLPSpec((2, 5, 5, 2))
    names = [f"{p}{l}" for l in (1, 2, 3) for p in "Wb"]
    res = train(
        TrainSpec(model, OptimizerSpec("sgd"), epochs=1, batch_size=B),
        ensemble, x, y, snapshot_params=names, snapshot_epochs=(0, 1),
    )  # fmt: skip
    theta0 = {k: jnp.asarray(res.snapshots[k][0, 0, 0]) for k in names}
    g_sum = jax.grad(_sum_loss)(theta0, jnp.asarray(x), jnp.asarray(y))
    for c, g_scale in ((0, 1.0 / B), (1, 1.0)):  # mean member, sum member
        np.testing.assert_allclose(
            res.snapshots["W1"][0, c, 0], theta0["W1"], rtol=0
        )  # both start from the seed's same weights
        for k in names:
            # theta_1 = theta_0 - lr (g + lambda theta_0), g a batch mean or sum
            step = lr * (g_scale * g_sum[k] + lam * theta0[k])
            np.testing.assert_allclose(
                res.snapshots[k][0, c, 1], theta0[k] - step, rtol=1e-5, atol=2e-6
            )


def test_figures_render_every_variant(result):
    figs = {f.key: f for f in chf.figures(result)}
    assert set(figs) == {
        "fig_choices_l2_boundaries",
        "fig_choices_accuracy_table",
        "fig_choices_verdicts",
        "fig_choices_dropout_masks",
    }
    # one panel per variant and strength, plus a colorbar
    assert len(figs["fig_choices_l2_boundaries"].figure.axes) == 5 * 2 + 1
    assert all("seed 0 of 2" in f.caption for k, f in figs.items() if "masks" in k)


def test_claims_are_decided_over_seeds_for_every_variant(result):
    out = ch.claims(result)
    assert len(out) == 4 * len(VARIANTS) + 4
    names = {c.name for c in out}
    assert "glorot_normal_moderate_l2_beats_zero" in names
    assert "per_example_dropout_boundary_smoother" in names
    for c in out:
        assert math.isfinite(c.measured), c.name
        assert len(c.per_seed) == 2 and c.agreement.startswith("holds in"), c.name
        assert c.why, c.name


def test_result_round_trips_and_reproduces_claims(result, tmp_path):
    result.save(tmp_path)
    loaded = Result.load(tmp_path)
    assert [c.to_dict() for c in ch.claims(loaded)] == [
        c.to_dict() for c in ch.claims(result)
    ]
    assert [f.key for f in chf.figures(loaded)] == [f.key for f in chf.figures(result)]


def test_variants_can_be_turned_off():
    cfg = ch.Config(inits=(), noises=(), batch_sum=False, biases_free=False)
    assert [name for name, *_ in choices_l2.variants(cfg)] == ["reference"]


def test_quick_cuts_epochs_and_keeps_shapes():
    q = ch.Config().quick()
    assert q.epochs <= ch.Config().epochs // 10
    assert q.l2_strengths == ch.Config().l2_strengths


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"l2_strengths": (0.01, 0.02)}, r"include 0\.0 .* got \(0\.01, 0\.02\)"),
        ({"moderate": 0.003}, r"moderate=0\.003 must be a nonzero strength"),
        ({"moderate": 0.0}, "pick one, e.g. 0.0025"),
        ({"threads_up_to": 0.001}, r"threads_up_to=0\.001 must be a strength"),
        ({"inits": ("lecun_normal",)}, "other than the reference 'lecun_normal'"),
        ({"inits": ("orthogonal",)}, r"got 'orthogonal' — e\.g\."),
        (
            {"noises": (0.0,)},
            r"noises must hold only values in \(0, 1\], got \(0\.0,\)",
        ),
        ({"noises": (0.1,)}, "must not repeat the reference noise 0.1"),
        ({"p_drop": 1.0}, r"p_drop must be in \(0, 1\), got 1\.0 — .*dropout=False"),
        ({"dropout_widths": (2, 8, 2)}, r"\(2, hidden, hidden, 2\), got \(2, 8, 2\)"),
        ({"dropout_n_train": 10}, "dropout_n_train must be >= batch_size=32, got 10"),
        ({"batch_size": 300}, "lower batch_size"),
        ({"seeds": ()}, "at least one seed"),
    ],
)
def test_config_rejects_bad_values(change, match):
    with pytest.raises(ValueError, match=match):
        ch.Config(**change)
