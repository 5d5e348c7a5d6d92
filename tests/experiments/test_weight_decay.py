"""Tests for the weight-decay experiment at a tiny scale (seconds, not minutes)."""

import dataclasses
import math
import subprocess
import sys

import jax
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from reglab.experiments import moons
from reglab.experiments import weight_decay as wd
from reglab.experiments import weight_decay_figures as wd_figures
from reglab.experiments.base import Result

TINY = wd.Config(
    n_train=40,
    n_test=60,
    widths=(2, 8, 8, 2),
    epochs=20,
    batch_size=16,
    # the post's nine L2 strengths: the sparsity axis must label them legibly
    l1_strengths=(0.0, 0.002, 0.05),
    prox_strengths=(0.05,),
    l1_mid=0.05,  # strong enough to zero weights within 60 proximal steps
    record_every=10,
    grid_resolution=12,
    seeds=(0, 1),
)


@pytest.fixture(scope="module")
def result():
    return wd.run(TINY)


def test_run_stores_every_sweep_with_member_axes(result):
    S, R = len(TINY.seeds), TINY.grid_resolution
    a = result.arrays
    assert a["l2_prob"].shape == (S, 9, R, R)
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
    np.testing.assert_allclose(moons.prob_class1(logits), oracle, rtol=1e-6)


def test_sparsity_measures_on_a_hand_built_matrix():
    # mean 0, std sqrt((1 + 1 + 2e-6) / 4) ~ 0.707: the threshold 0.01 x std ~ 0.0071
    W = np.array([[1.0, -1.0], [1e-3, -1e-3]])
    assert wd.near_zero_fraction(W, 0.01) == pytest.approx(2 / 4)
    # row 1 is dead; no column is entirely near zero: 1 dead unit of 2 + 2
    assert wd.dead_unit_fraction(W, 0.01) == pytest.approx(1 / 4)
    # live entries: row 0 x both columns, none near zero
    assert wd.live_near_zero_fraction(W, 0.01) == pytest.approx(0.0)


def test_near_zero_is_relative_to_each_matrix_scale():
    # shrinking every weight alike (what L2 does) must not read as sparsity
    W = np.random.default_rng(0).normal(size=(64, 64))
    stack = np.stack([W, 1e-3 * W])  # (2, 64, 64): each judged on its own std
    fractions = wd.near_zero_fraction(stack, 0.01)
    assert fractions[0] == fractions[1]
    np.testing.assert_array_equal(
        wd.dead_unit_fraction(stack, 0.5), wd.dead_unit_fraction(W, 0.5)
    )


def test_near_zero_fraction_of_a_gaussian_matrix_matches_erf():
    W = np.random.default_rng(1).normal(size=(1000, 1000))
    # P(|z| < r) = erf(r / sqrt 2); 1e6 entries: binomial sd ~ 1e-4
    for r in (0.01, 0.1, 1.0):
        expected = math.erf(r / math.sqrt(2))
        assert wd.near_zero_fraction(W, r) == pytest.approx(expected, abs=1e-3)


def _hand_built(result, l2_sparse: bool) -> Result:
    """The tiny result with W2 replaced: one sweep Gaussian, the other mostly 0."""
    rng = np.random.default_rng(2)
    a = dict(result.arrays)
    S, C2, H, _ = a["l2_W2"].shape
    dense = rng.normal(size=(S, C2, H, H))
    sparse = rng.normal(size=(S, a["l1_W2"].shape[1], H, H))
    sparse[:, :, :, : H - 2] = 0.0  # 6 of 8 columns zero: 75% of entries
    if l2_sparse:
        dense, sparse = sparse[:, :1].repeat(C2, 1), dense[:, : sparse.shape[1]]
    a["l2_W2"], a["l1_W2"] = dense, sparse
    return dataclasses.replace(result, arrays=a)


def test_sparsity_claims_decide_on_each_seeds_matrix(result):
    claims = {c.name: c for c in wd.claims(_hand_built(result, l2_sparse=False))}
    l1, l2 = claims["l1_makes_hidden_weights_sparse"], claims["mid_sweep_l2_not_sparse"]
    assert l1.per_seed == pytest.approx((0.75, 0.75)) and l1.passed
    assert l1.holds_in == 2 and l1.interval == pytest.approx((0.75, 0.75))
    assert all(v < 0.05 for v in l2.per_seed) and l2.passed
    # the same claims on swapped matrices: L2 sparse and L1 dense both fail
    swapped = {c.name: c for c in wd.claims(_hand_built(result, l2_sparse=True))}
    assert not swapped["l1_makes_hidden_weights_sparse"].passed
    assert not swapped["mid_sweep_l2_not_sparse"].passed
    assert swapped["mid_sweep_l2_not_sparse"].holds_in == 0


def test_every_claim_has_one_value_per_seed_inside_its_interval(result):
    claims = wd.claims(result)
    assert {c.name for c in claims} == {
        "unregularized_fits_flips",
        "moderate_l2_ignores_flips",
        "moderate_l2_generalizes_better",
        "strong_l2_cannot_thread_moons",
        "regularization_raises_test_accuracy",
        "l1_makes_hidden_weights_sparse",
        "mid_sweep_l2_not_sparse",
        "proximal_l1_exact_zeros",
    }
    for c in claims:
        assert len(c.per_seed) == len(TINY.seeds), c.name
        assert c.measured == pytest.approx(np.mean(c.per_seed)), c.name
        lo, hi = c.interval
        assert lo <= c.measured <= hi, c.name


def test_proximal_l1_zeroes_most_weights_exactly_where_subgradient_does_not(result):
    # 60 soft-thresholding steps of 0.15 x 0.05 move each weight ~0.45 toward 0:
    # most of an 8 x 8 W2 (init std 0.35) ends exactly at 0, in every seed
    (claim,) = [c for c in wd.claims(result) if c.name == "proximal_l1_exact_zeros"]
    assert claim.passed and claim.holds_in == len(TINY.seeds)
    assert (result["l1_W2"][:, 2] == 0).mean() < 0.05  # subgradient: not exact


def test_figures_name_the_post_figure_and_keep_math_out_of_captions(result):
    figs = {f.key: f for f in wd_figures.figures(result)}
    assert list(figs) == [
        "fig2_l2_boundaries",
        "fig3_l1_boundaries",
        "fig4_hidden_weights",
        "fig_l1_sparsity",
    ]
    # panels in a ceil(sqrt(n)) grid plus one colorbar
    assert len(figs["fig3_l1_boundaries"].figure.axes) == 2 * 2 + 1
    # figure 4: three matrices, a colour scale for each, three |w| histograms
    assert len(figs["fig4_hidden_weights"].figure.axes) == 3 + 3 + 3
    for key, number in (("fig2", 2), ("fig3", 3), ("fig4", 4)):
        (fig,) = [f for k, f in figs.items() if k.startswith(key)]
        assert fig.caption.startswith(f"Figure {number}:")
    for fig in figs.values():  # captions are HTML: no raw mathtext
        assert "$" not in fig.caption, fig.key


def _overlaps(boxes) -> bool:
    boxes = sorted(boxes, key=lambda b: b.x0)
    return any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:], strict=False))


def test_sparsity_axis_tick_labels_do_not_collide(result):
    (fig,) = [
        f.figure for f in wd_figures.figures(result) if f.key == "fig_l1_sparsity"
    ]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # constrained layout and text extents need a draw
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        assert len(labels) >= 2
        assert not _overlaps([t.get_window_extent(renderer) for t in labels])


def test_result_round_trips_and_reproduces_claims(result, tmp_path):
    result.save(tmp_path)
    loaded = Result.load(tmp_path)
    assert [c.to_dict() for c in wd.claims(loaded)] == [
        c.to_dict() for c in wd.claims(result)
    ]
    assert [f.key for f in wd_figures.figures(loaded)] == [
        f.key for f in wd_figures.figures(result)
    ]


def test_training_module_does_not_import_matplotlib():
    code = (
        "import sys, reglab.experiments.weight_decay as wd;"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quick_cuts_epochs_and_keeps_shapes():
    q = wd.Config().quick()
    assert q.epochs <= wd.Config().epochs // 10
    assert q.widths == wd.Config().widths and q.n_train == wd.Config().n_train


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"l2_strengths": (0.01, 0.02)}, "include 0.0"),
        ({"l1_mid": 0.7}, "pick a swept strength"),
        ({"l2_mid": 0.011}, "l2_mid=0.011 must be one of l2_strengths"),
        ({"epochs": 0}, "epochs must be an integer"),
        ({"batch_size": 300}, "lower batch_size"),
        ({"near_zero": 0.0}, r"near_zero must be in \(0, 1\)"),
        ({"widths": (2, 8, 2)}, "hidden-to-hidden"),
        ({"grid_resolution": 1}, "grid_resolution"),
        ({"prox_strengths": (-1.0,)}, "prox_strengths"),
    ],
)
def test_bad_config_raises(change, match):
    with pytest.raises(ValueError, match=match):
        wd.Config(**change)


def test_sliders_have_one_panel_per_strength(result):
    sliders = {s.key: s for s in wd_figures.sliders(result)}
    for sweep in ("l2", "l1"):
        s = sliders[f"slider_{sweep}"]
        strengths = result.arrays[f"{sweep}_strengths"]
        assert s.values == [f"{v:g}" for v in strengths]
        assert len(s.figures) == len(strengths)
        assert len(s.figures[0].axes) == 2  # boundary and W2
    assert ("slider_seed" in sliders) == (len(TINY.seeds) > 1)
