"""Early stopping experiment at tiny scale: arrays, figures, claims, round trip."""

from dataclasses import replace

import numpy as np
import pytest

from reglab.experiments import early_stopping as es
from reglab.experiments import early_stopping_figures as es_figures
from reglab.experiments import early_stopping_moments as esm
from reglab.experiments.base import Result

TINY = es.Config(
    n_train=60,
    n_test=50,
    widths=(784, 16, 16, 10),
    epochs=8,
    batch_size=20,
    n_record=20,  # every epoch: the own run's curve holds the user's best epoch
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
    assert r["own_test_loss"].shape == (S, R)
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


def test_early_stopped_run_is_its_unstopped_twin_at_the_best_epoch(run):
    # same images, seeds and batch order: stopping and restoring the best epoch must
    # give the parameters the never-stopped run had at that epoch (float32 noise)
    r, _ = run
    at = np.searchsorted(r["record_epochs"], r["user_best_epoch"])
    np.testing.assert_array_equal(r["record_epochs"][at], r["user_best_epoch"])
    own = r["own_test_loss"][np.arange(len(at)), at]
    np.testing.assert_allclose(r["user_test_loss"], own, rtol=1e-5)


def test_progress_counts_all_three_runs_and_ends_at_the_total(run):
    _, calls = run
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert calls[-1] == (3 * TINY.epochs, 3 * TINY.epochs)


def test_figures_render_with_the_expected_axes(run):
    r, _ = run
    figs = {f.key: f for f in es_figures.figures(r)}
    axes = {k: len(f.figure.axes) for k, f in figs.items()}
    assert axes == {
        "fig9_early_stopping": 1,
        "fig10_spectral": 3,  # two panels and the colour bar of snapshot epochs
        "fig_early_stopping_user": 1,
    }
    assert figs["fig9_early_stopping"].caption.startswith("Figure 9:")
    assert figs["fig10_spectral"].caption.startswith("Figure 10:")
    # figure 10's left panel: one curve per non-zero snapshot plus the isotropic one
    assert len(figs["fig10_spectral"].figure.axes[0].lines) == len(r["snapshot_epochs"])


def test_every_claim_is_decided_over_both_seeds(run):
    r, _ = run
    claims = es.claims(r)
    assert len({c.name for c in claims}) == len(claims) == 9
    for c in claims:
        assert len(c.per_seed) == 2 and np.all(np.isfinite(c.per_seed))
        assert c.measured == pytest.approx(np.mean(c.per_seed))


def test_result_round_trips_and_reproduces_figures_and_claims(run, tmp_path):
    r, _ = run
    r.save(tmp_path)
    back = Result.load(tmp_path)
    assert back.config == r.config and back.timings == r.timings
    for k, v in r.arrays.items():
        np.testing.assert_array_equal(back[k], v)
    assert [c.to_dict() for c in es.claims(back)] == [c.to_dict() for c in es.claims(r)]
    assert [f.key for f in es_figures.figures(back)] == [
        f.key for f in es_figures.figures(r)
    ]


def _with(r: Result, **arrays) -> Result:
    return Result(r.name, r.config, {**r.arrays, **arrays}, r.timings, r.notes)


def test_interior_minimum_claim_on_hand_made_curves(run):
    r, _ = run
    R = len(r["record_epochs"])
    # V shape: 2 -> 1 -> 1.5; the lower end is 1.5, so the dip is 1.5 / 1 - 1 = 0.5
    v = np.tile(np.interp(np.arange(R), [0, R // 2, R - 1], [2.0, 1.0, 1.5]), (2, 1))
    falling = np.tile(np.linspace(2.0, 1.0, R), (2, 1))  # minimum at the end: no dip
    by_name = {c.name: c for c in es.claims(_with(r, test_loss=v))}
    assert by_name["test_loss_interior_minimum"].measured == pytest.approx(0.5)
    assert by_name["test_loss_interior_minimum"].passed
    by_name = {c.name: c for c in es.claims(_with(r, test_loss=falling))}
    assert by_name["test_loss_interior_minimum"].measured == pytest.approx(0.0)
    assert not by_name["test_loss_interior_minimum"].passed


def test_falling_epoch_interpolates_in_log_epoch():
    epochs = np.array([0, 1, 4, 16])
    curve = np.array([3.0, 2.0, 1.0, 0.5])
    # level 1.5 lies halfway between epochs 1 and 4 in log: epoch 2
    assert esm.falling_epoch(epochs, curve, 1.5) == pytest.approx(2.0)
    assert esm.falling_epoch(epochs, curve, 3.0) == 0.5  # epoch 0 counts as 0.5
    assert np.isnan(esm.falling_epoch(epochs, curve, 0.1))


def _moments(r: Result, shift_at: float, flat_at: float) -> Result:
    """Return r with an energy falling at shift_at and a test loss flat at flat_at."""
    epochs, snaps = r["record_epochs"], r["snapshot_epochs"]
    S, n_snap, D = r["cumulative_energy"].shape
    k = TINY.energy_rank
    # E_<=k steps from 1 down to 0.2 at shift_at: half its fall done just there
    top = np.where(snaps <= shift_at, 1.0, 0.2)  # (n_snap,)
    cum = np.tile(np.arange(1, D + 1) / D, (S, n_snap, 1))
    cum[:, :, k - 1] = top
    # the test loss steps from 2 to 1 at flat_at: 90% of its fall done there
    loss = np.where(epochs < flat_at, 2.0, 1.0)
    return _with(r, cumulative_energy=cum, test_loss=np.tile(loss, (S, 1)))


def test_energy_shift_claim_compares_the_two_moments(run):
    r, _ = run
    snaps, epochs = r["snapshot_epochs"], r["record_epochs"]
    s, f = snaps[-2], epochs[-1]  # the last two moments available
    together = _moments(r, s, s)  # both fall between the same two records
    by_name = {c.name: c for c in es.claims(together)}
    assert by_name["energy_shift_when_test_loss_flattens"].passed
    apart = _moments(r, 1, f)  # energy shifts at epoch ~1, loss flat at the end
    by_name = {c.name: c for c in es.claims(apart)}
    claim = by_name["energy_shift_when_test_loss_flattens"]
    assert claim.measured > 1.0 and not claim.passed and claim.why


def test_user_claims_compare_with_the_own_runs_test_curve(run):
    r, _ = run
    R = len(r["record_epochs"])
    own = np.tile(np.interp(np.arange(R), [0, R // 2, R - 1], [2.0, 1.0, 1.5]), (2, 1))
    best = np.full(2, r["record_epochs"][R // 2])
    by_name = {
        c.name: c
        for c in es.claims(
            _with(
                r,
                own_test_loss=own,
                user_test_loss=np.array([1.0, 1.1]),
                user_best_epoch=best,
            )  # fmt: skip
        )
    }
    np.testing.assert_allclose(
        by_name["user_early_stopping_near_optimum"].per_seed, [0.0, 0.1]
    )
    assert by_name["user_early_stopping_near_optimum"].holds_in == 1
    np.testing.assert_allclose(
        by_name["user_early_stopping_beats_training_on"].per_seed, [0.5, 0.4]
    )
    assert by_name["user_early_stopping_epoch_near_optimum"].measured == 0.0


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
        ({"n_test": 20_000}, "n_test must be an integer in"),
        ({"n_train": 6000}, "n_train must be an integer in"),
        ({"energy_rank": 785}, "energy_rank must be in"),
        ({"energy_fraction": 0.0}, "energy_fraction must be in"),
        ({"n_snapshots": 2}, "n_snapshots must be an integer >= 3"),
        ({"epochs": 1}, "epochs must be an integer >= 2, got 1"),
        ({"epochs": 0}, "epochs must be an integer >= 2, got 0"),
        ({"dataset": "cifar10"}, "dataset must be one of"),
        ({"seeds": ()}, "seeds must hold at least one seed"),
    ],
)
def test_bad_config_raises(change, match):
    with pytest.raises(ValueError, match=match):
        replace(TINY, **change)


def test_time_slider_has_one_panel_per_nonzero_snapshot(run):
    r, _ = run
    (slider,) = es_figures.sliders(r)
    snaps = r["snapshot_epochs"]
    assert slider.values == [str(int(e)) for e in snaps[1:]]
    assert len(slider.figures) == len(snaps) - 1
    assert len(slider.figures[0].axes) == 2
