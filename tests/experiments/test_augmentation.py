"""Section 1 experiment at toy scale: shapes, shared init, claims, figures, storage."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from reglab.experiments import augmentation as aug
from reglab.experiments import augmentation_figures as aug_figures
from reglab.experiments.base import Result

TINY = aug.Config(
    n_train=40,
    n_test=10000,  # all test images: the last record must equal predict's accuracy
    widths=(784, 16, 10),
    epochs=12,  # 60 Adam steps: 40 images are fitted well before the end
    batch_size=8,
    record_dense=4,
    record_every=4,
    seeds=(0, 1),
)


@pytest.fixture(scope="module")
def result():
    return aug.run(TINY)


def test_arrays_have_seed_member_record_axes(result):
    R = len(result["record_epochs"])
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert result[key].shape == (2, 2, R), key
    assert result["final_test_accuracy"].shape == (2, 2)
    assert result["record_epochs"].tolist() == [0, 1, 2, 3, 4, 8, 12]
    assert set(result.timings) == {"compile_s", "run_s"}


def test_final_accuracy_from_predict_matches_in_program_evaluation(result):
    # two code paths: the trainer's in-program eval and predict + metrics.accuracy
    np.testing.assert_allclose(
        result["final_test_accuracy"], result["test_accuracy"][..., -1], atol=1e-6
    )


def test_plain_and_augmented_share_initial_model_then_differ(result):
    acc = result["test_accuracy"]  # (S, 2, R)
    np.testing.assert_array_equal(acc[:, 0, 0], acc[:, 1, 0])
    loss = result["train_loss"]  # (S, 2, R)
    assert not np.allclose(loss[:, 0, -1], loss[:, 1, -1])


def test_record_schedule_is_dense_then_evenly_spaced_and_ends_at_the_last_epoch():
    epochs = aug.record_schedule(250, 20, 5)
    assert epochs[:21].tolist() == list(range(21))
    assert np.all(np.diff(epochs[20:]) == 5) and epochs[-1] == 250
    assert aug.record_schedule(12, 4, 5).tolist() == [0, 1, 2, 3, 4, 5, 10, 12]


def test_per_epoch_weights_each_epoch_once_however_densely_recorded():
    # records at 0, 1, 2 and 10: a mean over records would weight epochs 0-2 3/4
    values = np.array([[0.0, 1.0, 2.0, 10.0]])
    per = aug.per_epoch(values, np.array([0, 1, 2, 10]))
    np.testing.assert_allclose(per, [np.arange(11.0)])  # linear between records
    assert per[0, 1:].mean() == pytest.approx(5.5)  # epochs 1..10, not 13/4


def _synthetic(plain_train, test_plain, test_aug, epochs):
    """A Result whose curves are given by hand: (R,) for one seed or (S, R)."""
    plain_train, test_plain, test_aug = np.broadcast_arrays(
        *np.atleast_2d(plain_train, test_plain, test_aug)
    )
    S, R = plain_train.shape
    train = np.stack([plain_train, np.full((S, R), 0.5)], axis=1)  # (S, 2, R)
    test = np.stack([test_plain, test_aug], axis=1)
    arrays = {
        "seeds": np.arange(S),
        "record_epochs": np.asarray(epochs),
        "train_loss": np.ones((S, 2, R)),
        "train_accuracy": train,
        "test_loss": np.ones((S, 2, R)),
        "test_accuracy": test,
        "final_test_accuracy": test[..., -1],
        "final_test_nll": np.ones((S, 2)),
        "diverged": np.zeros((S, 2), bool),
    }
    cfg = aug.config_dict(dataclasses.replace(aug.Config(), epochs=8))
    return Result(aug.NAME, cfg, arrays)


def test_claims_match_hand_computed_values_on_synthetic_curves():
    epochs = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    plain_train = [0.1, 0.5, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # fits at epoch 3
    test_plain = [0.1, 0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    test_aug = [0.1, 0.4, 0.7, 0.8, 0.8, 0.82, 0.84, 0.86, 0.9]
    r = _synthetic(plain_train, test_plain, test_aug, epochs)
    got = {c.name: c for c in aug.claims(r)}
    assert aug.interpolation_epochs(r).tolist() == [3]
    # epochs 1..3: gaps -0.1, 0, 0 -> |mean| 1/30
    assert got["equal_before_interpolation"].measured == pytest.approx(1 / 30)
    # aug: mean(0.82, 0.84, 0.86, 0.9) over 5..8 = 0.855, over 3..4 = 0.8; plain 0
    assert got["augmented_keeps_improving"].measured == pytest.approx(0.055)
    assert got["augmented_beats_plain"].measured == pytest.approx(0.1)
    # last fifth of 8 epochs: epochs 8..8
    assert got["augmented_higher_late"].measured == pytest.approx(0.1)
    assert got["augmented_higher_at_best_epoch"].measured == pytest.approx(0.1)
    assert got["plain_interpolates"].passed
    assert not got["equal_before_interpolation"].passed  # 1/30 > 2 points


def test_claims_decide_on_the_seed_mean_and_count_agreeing_seeds():
    epochs = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    fits = [0.1, 0.5, 0.9] + [1.0] * 6
    # augmented ends 0.06 above the plain model in seed 0, 0.02 below in seed 1
    test_aug = [[0.5] * 8 + [0.56], [0.5] * 8 + [0.48]]
    r = _synthetic(fits, [0.5] * 9, test_aug, epochs)
    final = {c.name: c for c in aug.claims(r)}["augmented_beats_plain"]
    assert final.per_seed == pytest.approx((0.06, -0.02))
    assert final.measured == pytest.approx(0.02) and final.passed
    assert final.holds_in == 1 and final.interval[0] < 0 < final.interval[1]


def test_relapse_is_the_first_drop_after_interpolation():
    epochs = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    plain_train = [0.1, 1.0, 1.0, 0.995, 0.98, 0.5, 1.0, 1.0, 1.0]
    r = _synthetic(plain_train, [0.5] * 9, [0.5] * 9, epochs)
    assert aug.interpolation_epochs(r).tolist() == [1]
    assert aug.relapse_epochs(r).tolist() == [4]
    assert "breaks down again at epoch [4]" in aug_figures.figures(r)[0].caption
    r = _synthetic([0.1] + [1.0] * 8, [0.5] * 9, [0.5] * 9, epochs)
    assert aug.relapse_epochs(r).tolist() == [-1]


def test_tiny_plain_model_interpolates_in_every_seed(result):
    # 40 images, 60 Adam steps: fitting them all is robust, whatever the seed
    got = {c.name: c for c in aug.claims(result)}["plain_interpolates"]
    assert got.passed and got.holds_in == len(TINY.seeds)
    assert aug.interpolation_epochs(result).max() < TINY.epochs


def test_figure_plots_both_models_on_a_linear_epoch_axis(result):
    (fig,) = aug_figures.figures(result)
    assert fig.key == "fig1_augmentation"
    axes = fig.figure.axes
    assert len(axes) == 3
    for ax in axes:
        assert ax.get_xscale() == "linear"
        assert ax.get_xlim() == (0, TINY.epochs)
        assert len(ax.lines) == 3  # plain, augmented, interpolation marker


def test_training_module_does_not_import_matplotlib():
    module = "reglab.experiments.augmentation"
    code = f"import sys, {module}; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_result_round_trips_and_reproduces_claims_and_figures(result, tmp_path):
    result.save(tmp_path)
    back = Result.load(tmp_path)
    assert back.config == result.config
    assert [c.to_dict() for c in aug.claims(back)] == [
        c.to_dict() for c in aug.claims(result)
    ]
    assert [f.caption for f in aug_figures.figures(back)] == [
        f.caption for f in aug_figures.figures(result)
    ]


def test_quick_cuts_epochs_and_keeps_shapes():
    q = aug.Config().quick()
    assert q.epochs == 25 and q.n_train == 1000 and q.widths == (784, 128, 10)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_train": 0}, r"n_train must be an integer in \[1, 5000\]"),
        ({"n_test": 20000}, "n_test must be an integer in"),
        ({"widths": (10, 5, 10)}, "widths must start at 784"),
        ({"epochs": 2}, "epochs must be an integer >= 4"),
        ({"batch_size": 2000}, "batch_size must be in"),
        ({"record_every": 0}, "record_every must be an integer >= 1, got 0 — e.g. 5"),
        ({"seeds": ()}, "seeds must hold at least one seed"),
    ],
)
def test_bad_config_raises_naming_the_field(change, match):
    with pytest.raises(ValueError, match=match):
        aug.Config(**change)
