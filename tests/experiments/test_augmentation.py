"""Section 1 experiment at toy scale: shapes, shared init, claims, figures, storage."""

import dataclasses

import numpy as np
import pytest

from reglab.experiments import augmentation as aug
from reglab.experiments.base import Result

TINY = aug.Config(
    n_train=40,
    n_test=10000,  # all test images: the last record must equal predict's accuracy
    widths=(784, 16, 10),
    epochs=4,
    batch_size=8,
    record_points=4,
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
    assert result["record_epochs"][0] == 0 and result["record_epochs"][-1] == 4
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


def test_record_schedule_holds_ends_and_middle_in_order():
    epochs = aug.record_schedule(250, 50)
    assert epochs[0] == 0 and epochs[-1] == 250 and 125 in epochs
    assert np.all(np.diff(epochs) > 0) and 40 <= len(epochs) <= 55


def _synthetic(plain_train, test_plain, test_aug, epochs):
    """A Result with one seed whose curves are given by hand."""
    R = len(epochs)
    train = np.stack([plain_train, np.full(R, 0.5)])[None]  # (1, 2, R)
    test = np.stack([test_plain, test_aug])[None]
    arrays = {
        "seeds": np.array([0]),
        "record_epochs": np.asarray(epochs),
        "train_loss": np.ones((1, 2, R)),
        "train_accuracy": train,
        "test_loss": np.ones((1, 2, R)),
        "test_accuracy": test,
        "final_test_accuracy": test[..., -1],
        "final_test_nll": np.ones((1, 2)),
        "diverged": np.zeros((1, 2), bool),
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
    # epochs 1..3: gaps -0.1, 0, 0 -> mean -1/30
    assert got["equal_before_interpolation"].measured == pytest.approx(1 / 30)
    # aug: median(0.82, 0.84, 0.86, 0.9) over (4, 8] = 0.85, over (2, 4] = 0.8;
    # plain gains 0 -> +0.05
    assert got["augmented_keeps_improving"].measured == pytest.approx(0.05)
    assert got["augmented_beats_plain"].measured == pytest.approx(0.1)
    assert got["plain_interpolates"].passed


def test_relapse_is_the_first_drop_after_interpolation():
    epochs = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    plain_train = [0.1, 1.0, 1.0, 0.995, 0.98, 0.5, 1.0, 1.0, 1.0]
    r = _synthetic(plain_train, [0.5] * 9, [0.5] * 9, epochs)
    assert aug.interpolation_epochs(r).tolist() == [1]
    assert aug.relapse_epochs(r).tolist() == [4]
    assert "breaks down again at epoch [4]" in aug.figures(r)[0].caption
    r = _synthetic([0.1] + [1.0] * 8, [0.5] * 9, [0.5] * 9, epochs)
    assert aug.relapse_epochs(r).tolist() == [-1]


def test_claims_are_finite_comparisons(result):
    claims = aug.claims(result)
    assert len(claims) == 4
    for c in claims:
        assert np.isfinite(c.measured) and c.comparison in (">", ">=", "<", "<=")
        assert "seeds agree" in c.detail


def test_figure_has_three_labelled_panels(result):
    (fig,) = aug.figures(result)
    assert fig.key == "fig1_augmentation"
    axes = fig.figure.axes
    assert len(axes) == 3 and all(ax.get_ylabel() for ax in axes)
    assert "mean over 2 seeds" in fig.caption


def test_result_round_trips_and_reproduces_claims_and_figures(result, tmp_path):
    result.save(tmp_path)
    back = Result.load(tmp_path)
    assert back.config == result.config
    assert [c.to_dict() for c in aug.claims(back)] == [
        c.to_dict() for c in aug.claims(result)
    ]
    assert [f.caption for f in aug.figures(back)] == [
        f.caption for f in aug.figures(result)
    ]


def test_quick_cuts_epochs_and_keeps_shapes():
    q = aug.Config().quick()
    assert q.epochs == 25 and q.n_train == 1000 and q.widths == (784, 128, 10)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_train": 0}, "n_train must be in"),
        ({"n_test": 20000}, "n_test must be in"),
        ({"widths": (10, 5, 10)}, "widths must start at 784"),
        ({"epochs": 2}, "epochs must be >= 4"),
        ({"batch_size": 2000}, "batch_size must be in"),
        ({"record_points": 2}, "record_points must be >= 4"),
        ({"seeds": ()}, "seeds must hold at least one seed"),
    ],
)
def test_bad_config_raises_naming_the_field(change, match):
    with pytest.raises(ValueError, match=match):
        aug.Config(**change)
