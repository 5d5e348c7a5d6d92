"""Tests for the weight-decay experiment at a tiny scale (seconds, not minutes)."""

import math

import jax
import numpy as np
import pytest

from reglab.experiments import weight_decay as wd
from reglab.experiments.base import Result

TINY = wd.Config(
    n_train=40,
    n_test=60,
    widths=(2, 8, 8, 2),
    epochs=4,
    batch_size=16,
    l2_strengths=(0.0, 0.01),
    l1_strengths=(0.0, 0.002, 0.004),
    prox_strengths=(0.002,),
    l2_named=0.01,
    l1_named=0.002,
    record_every=2,
    grid_resolution=12,
    seeds=(0, 1),
)


@pytest.fixture(scope="module")
def result():
    return wd.run(TINY)


def test_run_stores_every_sweep_with_member_axes(result):
    S, R = len(TINY.seeds), TINY.grid_resolution
    a = result.arrays
    assert a["l2_prob"].shape == (S, 2, R, R)
    assert a["l1_prob"].shape == (S, 3, R, R)
    assert a["l1_W2"].shape == (S, 3, 8, 8)
    assert a["prox_W2"].shape == (S, 1, 8, 8)
    assert "prox_prob" not in a  # only the post's sweeps get boundary grids
    assert a["flipped"].shape == (TINY.n_train,)
    for key in ("l2_test_acc", "l1_train_acc", "prox_flip_fit"):
        assert np.all((a[key] >= 0) & (a[key] <= 1)), key
    assert set(result.timings) == {"compile_s", "run_s"}


def test_unpenalized_columns_of_both_sweeps_are_the_same_model(result):
    # lambda_2 = 0 and lambda_1 = 0 members share seed, init and batches: same net
    a = result.arrays
    np.testing.assert_array_equal(a["l2_W2"][:, 0], a["l1_W2"][:, 0])


def test_probability_grid_is_softmax_of_class_one():
    logits = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32) * 4
    oracle = np.asarray(jax.nn.softmax(logits, axis=-1))[:, 1]
    np.testing.assert_allclose(wd.prob_class1(logits), oracle, rtol=1e-6)


def test_sparsity_measures_on_a_hand_built_matrix():
    W = np.array([[0.0, 0.5, 0.001], [0.0, 0.0, 0.0], [0.2, 0.3, 0.4]])
    assert wd.near_zero_fraction(W, 1e-2) == pytest.approx(5 / 9)
    # row 1 is dead; no column is entirely near zero: 1 dead unit of 3 + 3
    assert wd.dead_unit_fraction(W, 1e-2) == pytest.approx(1 / 6)
    # live entries: rows 0 and 2 x all columns = 6, of which W[0,0], W[0,2] small
    assert wd.live_near_zero_fraction(W, 1e-2) == pytest.approx(2 / 6)


def test_figures_render_with_expected_panels(result):
    figs = {f.key: f for f in wd.figures(result)}
    assert set(figs) == {
        "fig2_l2_boundaries",
        "fig3_l1_boundaries",
        "fig4_hidden_weights",
        "fig_l1_sparsity",
    }
    # panels in a ceil(sqrt(n)) grid plus one colorbar
    n3 = math.ceil(math.sqrt(3)) ** 2
    assert len(figs["fig3_l1_boundaries"].figure.axes) == n3 + 1
    assert len(figs["fig4_hidden_weights"].figure.axes) == 3 + 1
    assert len(figs["fig_l1_sparsity"].figure.axes) == 2
    assert all(f.caption for f in figs.values())


def test_claims_are_finite_and_comparable(result):
    claims = wd.claims(result)
    names = {c.name for c in claims}
    assert {"unregularized_fits_flips", "l1_makes_hidden_weights_sparse"} <= names
    assert "proximal_l1_exact_zeros" in names
    for c in claims:
        assert math.isfinite(c.measured), c.name
        assert c.comparison in (">", ">=", "<", "<=")
        assert "seeds agree" in c.detail or "strengths gain" in c.detail


def test_result_round_trips_and_reproduces_claims(result, tmp_path):
    result.save(tmp_path)
    loaded = Result.load(tmp_path)
    assert [c.to_dict() for c in wd.claims(loaded)] == [
        c.to_dict() for c in wd.claims(result)
    ]
    assert [f.key for f in wd.figures(loaded)] == [f.key for f in wd.figures(result)]


def test_quick_cuts_epochs_and_keeps_shapes():
    q = wd.Config().quick()
    assert q.epochs <= wd.Config().epochs // 10
    assert q.widths == wd.Config().widths and q.n_train == wd.Config().n_train


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"l2_strengths": (0.01, 0.02)}, "include 0.0"),
        ({"l1_named": 0.7}, "pick a swept strength"),
        ({"epochs": 0}, "epochs must be an integer"),
        ({"batch_size": 300}, "lower batch_size"),
        ({"thresholds": (0.0,)}, "thresholds must be > 0"),
        ({"widths": (2, 8, 2)}, "hidden-to-hidden"),
        ({"grid_resolution": 1}, "grid_resolution"),
        ({"prox_strengths": (-1.0,)}, "prox_strengths"),
        ({"strength_scale": 0.0}, "strength_scale must be > 0"),
    ],
)
def test_bad_config_raises(change, match):
    with pytest.raises(ValueError, match=match):
        wd.Config(**change)


def test_sliders_have_one_panel_per_strength(result):
    sliders = {s.key: s for s in wd.sliders(result)}
    for sweep in ("l2", "l1"):
        s = sliders[f"slider_{sweep}"]
        strengths = result.arrays[f"{sweep}_strengths"]
        assert s.values == [f"{v:g}" for v in strengths]
        assert len(s.figures) == len(strengths)
        assert len(s.figures[0].axes) == 2  # boundary and W2
    assert ("slider_seed" in sliders) == (len(TINY.seeds) > 1)
