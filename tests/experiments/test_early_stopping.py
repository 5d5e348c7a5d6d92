"""Early stopping experiment at tiny scale: arrays, figures, claims, round trip."""

from dataclasses import replace

import numpy as np
import pytest

from reglab.experiments import early_stopping as es
from reglab.experiments.base import Result

TINY = es.Config(
    n_train=60,
    n_test=50,
    widths=(784, 16, 16, 10),
    epochs=8,
    batch_size=20,
    n_record=5,
    n_snapshots=4,
    energy_rank=3,
    n_val=20,
    val_every=1,
    patience=2,
    seeds=(0, 1),
)


@pytest.fixture(scope="module")
def run():
    calls = []
    result = es.run(TINY, progress=lambda done, total: calls.append((done, total)))
    return result, calls


def test_run_arrays_have_the_config_shapes(run):
    r, _ = run
    S, D = len(TINY.seeds), TINY.widths[0]
    R, n_snap = len(r["record_epochs"]), len(r["snapshot_epochs"])
    assert r["record_epochs"][0] == 0 and r["record_epochs"][-1] == TINY.epochs
    assert set(r["snapshot_epochs"]) <= set(r["record_epochs"])
    for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        assert r[name].shape == (S, R)
    assert r["cumulative_energy"].shape == (S, n_snap, D)
    assert r["rank_at_energy"].shape == (S, n_snap)
    assert r["user_val_loss"].shape == (S, len(r["val_epochs"]))
    for name in ("user_best_epoch", "user_stopped_epoch", "user_test_loss"):
        assert r[name].shape == (S,)
    assert r.timings["compile_s"] >= 0 and r.timings["run_s"] > 0


def test_cumulative_energy_is_a_distribution_over_ranks(run):
    r, _ = run
    cum = r["cumulative_energy"]  # (S, n_snap, D)
    assert (np.diff(cum, axis=-1) >= -1e-6).all()
    np.testing.assert_allclose(cum[..., -1], 1.0, atol=1e-5)
    # epoch 0 has Delta W = 0, defined as the isotropic k/D
    np.testing.assert_allclose(cum[:, 0], np.arange(1, 785) / 784 + 0 * cum[:, 0])


def test_rank_at_energy_is_first_rank_reaching_the_fraction(run):
    r, _ = run
    cum = r["cumulative_energy"]
    # oracle: 1 + index of the first k with E_<=k >= fraction (1e-6 for float32 cum)
    first = (cum >= TINY.energy_fraction - 1e-6).argmax(axis=-1) + 1
    np.testing.assert_array_equal(r["rank_at_energy"], first)


def test_user_validation_curve_ends_where_training_stopped(run):
    r, _ = run
    after = r["val_epochs"][None, :] > r["user_stopped_epoch"][:, None]
    np.testing.assert_array_equal(np.isnan(r["user_val_loss"]), after)
    assert (r["user_best_epoch"] <= r["user_stopped_epoch"]).all()


def test_progress_counts_both_runs_and_ends_at_the_total(run):
    _, calls = run
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert calls[-1] == (2 * TINY.epochs, 2 * TINY.epochs)


def test_figures_render_with_the_expected_axes(run):
    r, _ = run
    figs = {f.key: f for f in es.figures(r)}
    axes = {k: len(f.figure.axes) for k, f in figs.items()}
    assert axes == {
        "fig9_early_stopping": 1,
        "fig10_spectral": 2,
        "fig_early_stopping_user": 1,
    }
    assert all(f.caption for f in figs.values())
    # figure 10's left panel: one curve per non-zero snapshot plus the isotropic one
    assert len(figs["fig10_spectral"].figure.axes[0].lines) == len(r["snapshot_epochs"])


def test_claims_are_finite_and_comparable(run):
    r, _ = run
    claims = es.claims(r)
    assert len({c.name for c in claims}) == len(claims) == 8
    for c in claims:
        assert np.isfinite(c.measured) and np.isfinite(c.threshold)
        assert c.comparison in (">", ">=", "<", "<=")
        assert isinstance(c.passed, bool) and c.detail


def test_result_round_trips_and_reproduces_figures_and_claims(run, tmp_path):
    r, _ = run
    r.save(tmp_path)
    back = Result.load(tmp_path)
    assert back.config == r.config and back.timings == r.timings
    for k, v in r.arrays.items():
        np.testing.assert_array_equal(back[k], v)
    assert [c.to_dict() for c in es.claims(back)] == [c.to_dict() for c in es.claims(r)]
    assert [f.key for f in es.figures(back)] == [f.key for f in es.figures(r)]


def _with(r: Result, **arrays) -> Result:
    return Result(r.name, r.config, {**r.arrays, **arrays}, r.timings, r.notes)


def test_interior_minimum_claim_on_hand_made_curves(run):
    r, _ = run
    R = len(r["record_epochs"])
    # V shape: 2 -> 1 -> 1.5; the lower end is 1.5, so the dip is 1.5 / 1 - 1 = 0.5
    v = np.interp(np.arange(R), [0, R // 2, R - 1], [2.0, 1.0, 1.5])[None]
    falling = np.linspace(2.0, 1.0, R)[None]  # minimum at the last record: no dip
    by_name = {c.name: c for c in es.claims(_with(r, test_loss=v))}
    assert by_name["test_loss_interior_minimum"].measured == pytest.approx(0.5)
    assert by_name["test_loss_interior_minimum"].passed
    by_name = {c.name: c for c in es.claims(_with(r, test_loss=falling))}
    assert by_name["test_loss_interior_minimum"].measured == pytest.approx(0.0)
    assert not by_name["test_loss_interior_minimum"].passed


def test_spectral_claims_on_hand_made_energies(run):
    r, _ = run
    S, n_snap, D = r["cumulative_energy"].shape
    k = TINY.energy_rank
    cum = np.tile(np.arange(1, D + 1) / D, (S, n_snap, 1))
    cum[:, 1, :] = np.minimum(1.0, np.arange(1, D + 1) / k)  # all energy in top k
    by_name = {c.name: c for c in es.claims(_with(r, cumulative_energy=cum))}
    assert by_name["early_update_in_top_pcs"].measured == pytest.approx(1.0)
    # late (isotropic) E_<=k = k / D
    spread = by_name["late_update_spreads_to_low_pcs"]
    assert spread.measured == pytest.approx(1.0 - k / D)
    assert spread.passed


def test_quick_cuts_epochs_and_keeps_shapes():
    q = es.Config().quick()
    assert q.epochs == 100 and q.widths == es.Config().widths
    assert q.n_train == es.Config().n_train and q.patience < es.Config().patience


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"n_val": 60}, "n_val must be < n_train"),
        ({"batch_size": 50}, "batch_size must be <= n_train - n_val"),
        ({"widths": (2, 16, 10)}, "widths must be"),
        ({"n_test": 20_000}, "n_test must be in"),
        ({"n_train": 6000}, "n_train must be in"),
        ({"energy_rank": 785}, "energy_rank must be in"),
        ({"energy_fraction": 0.0}, "energy_fraction must be in"),
        ({"n_snapshots": 2}, "n_snapshots >= 3"),
        ({"epochs": 1}, "epochs must be >= 2"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"dataset": "cifar10"}, "dataset must be one of"),
        ({"seeds": ()}, "seeds must hold at least one seed"),
    ],
)
def test_bad_config_raises(change, match):
    with pytest.raises(ValueError, match=match):
        replace(TINY, **change)


def test_time_slider_has_one_panel_per_nonzero_snapshot(run):
    r, _ = run
    (slider,) = es.sliders(r)
    snaps = r["snapshot_epochs"]
    assert slider.values == [str(int(e)) for e in snaps[1:]]
    assert len(slider.figures) == len(snaps) - 1
    assert len(slider.figures[0].axes) == 2
