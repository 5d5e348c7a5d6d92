"""Tests for the dropout experiment at a tiny scale, and its roughness measures."""

import functools
import subprocess
import sys

import numpy as np
import pytest

from reglab.experiments import dropout as do
from reglab.experiments import dropout_figures as do_figures
from reglab.experiments import moons
from reglab.experiments.base import Result

TINY = do.Config(
    n_train=40,
    n_test=80,
    widths=(2, 8, 8, 2),
    epochs=4,
    batch_size=16,
    n_mc=3,
    record_every=2,
    grid_resolution=16,
    seeds=(0, 1),
)


@pytest.fixture(scope="module")
def result():
    return do.run(TINY)


def test_run_stores_grids_accuracies_and_mc_draws(result):
    S, R, a = len(TINY.seeds), TINY.grid_resolution, result.arrays
    assert a["prob"].shape == (S, 2, R, R)  # no dropout, dropout
    assert a["prob_per_example"].shape == (S, 1, R, R)
    assert a["mc_prob"].shape == (S, TINY.n_mc, R, R)
    np.testing.assert_allclose(a["mc_mean"], a["mc_prob"].mean(axis=1), rtol=1e-6)
    assert a["test_acc"].shape == (S, 2) and a["mc_test_acc"].shape == (S, TINY.n_mc)
    assert np.all((a["prob"] >= 0) & (a["prob"] <= 1))


def test_mc_instantiations_differ_from_each_other(result):
    mc = result.arrays["mc_prob"][0]  # fresh masks per instantiation
    assert not np.allclose(mc[0], mc[1])


def test_boundary_length_of_a_disc_matches_its_circumference():
    # oracle: the P = 0.5 contour of a disc of radius r has length 2 pi r
    g = np.linspace(-1.0, 1.0, 400)
    X, Y = np.meshgrid(g, g)
    r = 0.6
    radius2 = X**2 + Y**2
    p = (radius2 < r**2).astype(float)
    assert moons.boundary_length(p, g, g) == pytest.approx(2 * np.pi * r, rel=0.02)


def test_boundary_length_of_a_straight_edge_is_its_span():
    g = np.linspace(0.0, 2.0, 201)
    X, _ = np.meshgrid(g, g)
    p = (X > 1.03).astype(float)  # a vertical line crossing all 201 rows
    span = len(g) * (g[1] - g[0])  # 201 rows of height 0.01 each
    # Cauchy-Crofton is exact on average over angles; axis-aligned it gives pi/4
    assert moons.boundary_length(p, g, g) == pytest.approx(span * np.pi / 4, rel=1e-6)


def test_mean_gradient_of_a_linear_ramp_is_its_slope():
    gx, gy = np.linspace(0, 1, 50), np.linspace(0, 2, 30)
    X, Y = np.meshgrid(gx, gy)
    p = 0.3 * X + 0.4 * Y  # |grad| = 0.5 everywhere
    assert do.mean_gradient(p, gx, gy) == pytest.approx(0.5, rel=1e-6)


def test_figure6_shows_the_no_dropout_model_beside_the_instantiations(result):
    figs = {f.key: f for f in do_figures.figures(result)}
    assert set(figs) == {
        "fig5_dropout_boundaries",
        "fig6_mc_dropout",
        "fig_dropout_mask_modes",
    }
    assert len(figs["fig5_dropout_boundaries"].figure.axes) == 2 + 1  # + colorbar
    panels = figs["fig6_mc_dropout"].figure.axes[:-1]  # the last is the colorbar
    # top row: no dropout, dropout off, their average; then the instantiations
    assert len(panels) == 3 + TINY.n_mc
    assert panels[0].get_title().startswith("no dropout")
    a = result.arrays
    # each panel's title states the boundary length of what it draws
    drawn = [a["prob"][0, 0], a["prob"][0, 1], a["mc_mean"][0], *a["mc_prob"][0]]
    for ax, p in zip(panels, drawn, strict=True):
        length = do.boundary_length(p, a["grid_x"], a["grid_y"])
        assert ax.get_title().endswith(f"boundary length {length:.1f}")


def test_training_module_does_not_import_matplotlib():
    code = "import sys, reglab.experiments.dropout; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def _disc(radius: float, g: np.ndarray) -> np.ndarray:
    X, Y = np.meshgrid(g, g)
    return (np.hypot(X, Y) < radius).astype(np.float32)  # boundary length 2 pi r


def test_claims_on_discs_match_their_circumferences():
    # oracle: each model's P = 0.5 boundary is a circle, its length 2 pi r; two
    # seeds with the same discs, so every claim holds in both or in neither
    g = np.linspace(-1.0, 1.0, 300)
    mc = np.stack([_disc(r, g) for r in (0.6, 0.7, 0.9)])
    arrays = {
        "grid_x": g,
        "grid_y": g,
        "seeds": np.array([0, 1]),
        "prob": np.stack([np.stack([_disc(0.8, g), _disc(0.5, g)])] * 2),
        "test_acc": np.array([[0.88, 0.90], [0.89, 0.89]]),
        "mc_prob": np.stack([mc] * 2),
        "mc_mean": np.stack([mc.mean(0)] * 2),
        "prob_per_example": np.stack([_disc(0.4, g)[None]] * 2),
        "test_acc_per_example": np.array([[0.9], [0.9]]),
    }
    r = Result(do.NAME, {"n_test": 100}, arrays)
    got = {c.name: c for c in do.claims(r)}
    approx = functools.partial(pytest.approx, rel=0.02)
    assert got["dropout_boundary_smoother"].measured == approx(0.5 / 0.8)
    assert got["mc_instantiations_rougher"].measured == approx(0.6 / 0.5)
    rough = got["mc_instantiations_as_rough_as_no_dropout"]
    assert rough.measured == approx((0.6 + 0.7 + 0.9) / 3 / 0.8)
    assert got["per_example_dropout_smoother"].measured == approx(0.4 / 0.8)
    assert not rough.passed and rough.holds_in == 0
    accuracy = got["dropout_test_accuracy_not_worse"]
    assert accuracy.per_seed == pytest.approx((0.02, 0.0))
    assert accuracy.passed and accuracy.holds_in == 2
    others = set(got) - {rough.name}
    assert all(got[n].passed and got[n].holds_in == 2 for n in others)


def test_result_round_trips_and_reproduces_claims(result, tmp_path):
    result.save(tmp_path)
    loaded = Result.load(tmp_path)
    assert [c.to_dict() for c in do.claims(loaded)] == [
        c.to_dict() for c in do.claims(result)
    ]
    assert [f.key for f in do_figures.figures(loaded)] == [
        f.key for f in do_figures.figures(result)
    ]


def test_quick_cuts_epochs_and_keeps_shapes():
    q = do.Config().quick()
    assert q.epochs <= do.Config().epochs // 10
    assert q.widths == do.Config().widths


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"p_drop": 0.0}, r"p_drop must be in \(0, 1\)"),
        ({"p_drop": 1.0}, r"p_drop must be in \(0, 1\)"),
        ({"n_mc": 0}, "n_mc must be an integer >= 1"),
        ({"n_train": 10}, "lower batch_size"),
        ({"widths": (2, 2)}, "hidden layer"),
        ({"grid_resolution": 1}, "grid_resolution"),
    ],
)
def test_bad_config_raises(change, match):
    with pytest.raises(ValueError, match=match):
        do.Config(**change)
