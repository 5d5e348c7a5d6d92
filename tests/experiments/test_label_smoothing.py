"""Section 4 experiment at toy scale: calibration arrays, claims, figures, storage."""

import dataclasses

import numpy as np
import pytest

from reglab.experiments import label_smoothing as ls
from reglab.experiments.base import Result

TINY = ls.Config(
    n_train=60,
    n_test=200,
    n_val=50,
    widths=(784, 16, 10),
    epochs=3,
    batch_size=16,
    smoothings=(0.0, 0.05, 0.2),
    n_bins=5,
    n_boot=20,
    record_points=3,
    seeds=(0, 1),
)


@pytest.fixture(scope="module")
def result():
    return ls.run(TINY)


def test_arrays_have_seed_and_smoothing_axes(result):
    assert result["test_accuracy"].shape == (2, 3)
    assert result["test_rel_conf"].shape == (2, 3, 5)
    assert result["table"].shape == (2, len(ls.TABLE_ROWS), len(ls.TABLE_COLUMNS))
    assert result["train_accuracy"].shape[:2] == (2, 3)
    np.testing.assert_array_equal(result["smoothings"], TINY.smoothings)
    assert np.all(result["test_ece_low"] <= result["test_ece_high"])


def test_reliability_bins_cover_the_test_set_and_reproduce_the_ece(result):
    count = result["test_rel_count"]
    assert np.all(count.sum(-1) == TINY.n_test)
    gap = np.abs(result["test_rel_conf"] - result["test_rel_acc"])
    # ECE = sum_m |Q_m|/N |conf_m - acc_m|, recomputed from the stored curve
    ece = (count / TINY.n_test * gap).sum(-1)
    np.testing.assert_allclose(result["test_ece_mass"], ece, atol=1e-12)


def test_wrong_confidences_count_the_errors_and_sit_sorted(result):
    for s in range(2):
        conf = result["wrong_confidence"][s]
        conf = conf[np.isfinite(conf)]
        wrong = round(TINY.n_test * (1 - result["test_accuracy"][s, 0]))
        assert conf.size == wrong and np.all(np.diff(conf) >= 0)
        above = np.mean(conf > TINY.confident)
        assert result["fraction_confident_wrong"][s, 0] == pytest.approx(above)


def test_table_rows_agree_with_the_sweep_and_temperature_keeps_accuracy(result):
    table = result["table"]  # (S, rows, columns): ECE mass, ECE width, NLL, ...
    np.testing.assert_allclose(table[:, 0, 0], result["test_ece_mass"][:, 0])
    np.testing.assert_allclose(table[:, 0, 4], table[:, 1, 4])  # argmax unchanged
    np.testing.assert_allclose(table[:, 3, 0], result["test_ece_mass"].min(-1))
    assert np.all(table[:, 3, 0] <= table[:, 2, 0])
    assert np.all(result["temperature"] > 0)


def test_claims_are_finite_and_the_argmin_is_the_seed_mean_minimum(result):
    claims = {c.name: c for c in ls.claims(result)}
    assert len(claims) == 7
    for c in claims.values():
        assert np.isfinite(c.measured) and c.comparison in (">", ">=", "<", "<=")
        assert "seeds agree" in c.detail
    best = np.argmin(result["test_ece_mass"].mean(0))
    assert claims["ece_minimum_at_small_eps"].measured == TINY.smoothings[best]


def test_figures_have_two_labelled_panels_each(result):
    figs = ls.figures(result)
    assert [f.key for f in figs] == [
        "fig7_calibration",
        "fig8_smoothing_sweep",
        "fig_temperature_vs_smoothing",
    ]
    for f in figs:
        assert len(f.figure.axes) == 2 and f.caption
        assert f.figure.axes[0].get_xlabel() and f.figure.axes[0].get_ylabel()


def test_without_validation_images_temperature_is_skipped():
    r = ls.run(dataclasses.replace(TINY, n_val=0, seeds=(0,)))
    assert "table" not in r.arrays
    assert [f.key for f in ls.figures(r)] == [
        "fig7_calibration",
        "fig8_smoothing_sweep",
    ]


def test_result_round_trips_and_reproduces_claims_and_figures(result, tmp_path):
    result.save(tmp_path)
    back = Result.load(tmp_path)
    assert [c.to_dict() for c in ls.claims(back)] == [
        c.to_dict() for c in ls.claims(result)
    ]
    assert [f.caption for f in ls.figures(back)] == [
        f.caption for f in ls.figures(result)
    ]


def test_quick_cuts_epochs_and_keeps_the_sweep():
    q = ls.Config().quick()
    assert q.epochs == 25 and q.smoothings == ls.SWEEP and q.n_train == 1000


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_train": 5000}, "n_train must be in"),
        ({"n_val": 4500}, "n_val must be in"),
        ({"n_test": 3}, "n_test must be in"),
        ({"widths": (10, 10)}, "widths must start at 784"),
        ({"smoothings": (0.01, 0.1)}, "smoothings must start at 0.0"),
        ({"smoothings": (0.0, 0.1, 0.05)}, "increase strictly"),
        ({"smoothings": (0.0, 0.95)}, "smoothings must stay below 0.9"),
        ({"batch_size": 0}, "batch_size in"),
        ({"n_bins": 1}, "n_bins must be >= 2"),
        ({"confident": 1.0}, "confident must be in"),
        ({"record_points": 1}, "record_points must be >= 2"),
        ({"seeds": ()}, "seeds must hold at least one seed"),
    ],
)
def test_bad_config_raises_naming_the_field(change, match):
    with pytest.raises(ValueError, match=match):
        ls.Config(**change)


def test_slider_has_one_reliability_panel_per_epsilon(result):
    (slider,) = ls.sliders(result)
    eps = result["smoothings"]
    assert slider.values == [f"{e:g}" for e in eps]
    assert len(slider.figures) == len(eps)
    ax = slider.figures[-1].axes[0]
    assert f"eps = {eps[-1]:g}" in ax.get_title()


def test_sweep_figure_draws_a_bootstrap_interval_above_the_estimate(result):
    # ECE's bootstrap is biased upward: its interval may lie entirely above the ECE
    shifted = ls.Result(
        result.name,
        result.config,
        {**result.arrays, "test_ece_low": result["test_ece_mass"] + 0.01},
        result.timings,
    )
    keys = [f.key for f in ls.figures(shifted)]
    assert "fig8_smoothing_sweep" in keys


def test_reliability_bars_survive_a_mean_an_ulp_below_equal_values():
    from matplotlib.figure import Figure as MplFigure

    acc = np.full((3, 4), 0.1)  # the float mean of three 0.1s exceeds 0.1 by an ulp
    conf = np.tile([0.2, 0.4, 0.6, 0.8], (3, 1))
    assert np.nanmean(acc, 0)[0] != 0.1
    ax = MplFigure().subplots()
    ls._reliability(ax, conf, acc, "eps", "C0")
    assert len(ax.lines) >= 1
