"""Section 4 experiment at toy scale: calibration arrays, claims, figures, storage."""

import dataclasses

import numpy as np
import pytest

from reglab.experiments import label_smoothing as ls
from reglab.experiments import label_smoothing_figures as ls_figures
from reglab.experiments import label_smoothing_figures as lsf
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


def _with(r: Result, **arrays) -> Result:
    return Result(r.name, r.config, {**r.arrays, **arrays}, r.timings, r.notes)


def test_every_claim_is_decided_over_both_seeds(result):
    claims = {c.name: c for c in ls.claims(result)}
    assert len(claims) == 7
    for c in claims.values():
        assert len(c.per_seed) == 2 and c.agreement.endswith("of 2 seeds")
        assert c.measured == pytest.approx(np.mean(c.per_seed), nan_ok=True)
    # the ECE claim averages each seed's own argmin, not the argmin of the mean
    best = np.take(TINY.smoothings, result["test_ece_mass"].argmin(-1))
    assert claims["ece_minimum_at_small_eps"].per_seed == tuple(best)


def test_smoothing_lowers_confidence_even_at_toy_scale(result):
    # robust even after 3 epochs on 60 images: the targets cap the label at 1 - eps
    conf = result["test_mean_confidence"]  # (S, C)
    assert np.all(np.diff(conf, axis=-1) < 0)


def test_crossing_smoothing_interpolates_where_the_gap_changes_sign():
    eps = np.array([0.0, 0.01, 0.02, 0.1])
    gap = np.array(
        [
            [0.06, 0.02, -0.02, -0.1],  # crosses halfway between 0.01 and 0.02
            [0.06, 0.03, 0.01, 0.005],  # overconfident all along: no crossing
            [-0.01, -0.02, -0.03, -0.1],  # never overconfident: no crossing
            [0.04, 0.0, -0.01, -0.1],  # touches 0 exactly at 0.01
        ]
    )
    cross = ls.crossing_smoothing(eps, gap)
    np.testing.assert_allclose(cross[[0, 3]], [0.015, 0.01], atol=1e-15)
    assert np.isnan(cross[1]) and np.isnan(cross[2])


def test_underconfidence_claim_fails_when_a_seed_never_turns(result):
    acc = np.tile([0.9, 0.9, 0.9], (2, 1))  # (S, C)
    turns = acc + np.array([[0.05, -0.01, -0.05], [0.05, 0.02, -0.05]])
    stays = acc + np.array([[0.05, -0.01, -0.05], [0.05, 0.04, 0.02]])
    by = {c.name: c for c in ls.claims(_with(result, test_accuracy=acc,
                                             test_mean_confidence=turns))}  # fmt: skip
    claim = by["smoothing_turns_underconfident"]
    # min(gap at eps = 0, -gap at the largest eps) in each seed
    np.testing.assert_allclose(claim.per_seed, [0.05, 0.05], rtol=1e-9)
    assert claim.passed and claim.holds_in == 2
    # the crossings, linear between the swept eps (0, 0.05, 0.2)
    assert f"{0.05 / 0.06 * 0.05:.4f}, {0.05 + 0.02 / 0.07 * 0.15:.4f}" in claim.detail
    by = {c.name: c for c in ls.claims(_with(result, test_accuracy=acc,
                                             test_mean_confidence=stays))}  # fmt: skip
    claim = by["smoothing_turns_underconfident"]
    np.testing.assert_allclose(claim.per_seed, [0.05, -0.02], rtol=1e-9)
    assert claim.holds_in == 1 and "none" in claim.detail


def test_accuracy_claim_measures_the_rise_across_the_whole_sweep(result):
    acc = np.array([[0.88, 0.95, 0.90], [0.89, 0.80, 0.91]])  # (S, C)
    by = {c.name: c for c in ls.claims(_with(result, test_accuracy=acc))}
    claim = by["smoothing_keeps_accuracy"]
    # last eps minus eps = 0, not the sweep's best or worst member
    np.testing.assert_allclose(claim.per_seed, [0.02, 0.02])
    assert not claim.passed and claim.why


def test_without_validation_images_temperature_is_skipped():
    r = ls.run(dataclasses.replace(TINY, n_val=0, seeds=(0,)))
    assert "table" not in r.arrays
    assert [f.key for f in ls_figures.figures(r)] == [
        "fig7_calibration",
        "fig8_smoothing_sweep",
    ]


def test_result_round_trips_and_reproduces_claims_and_figures(result, tmp_path):
    result.save(tmp_path)
    back = Result.load(tmp_path)
    assert [c.to_dict() for c in ls.claims(back)] == [
        c.to_dict() for c in ls.claims(result)
    ]
    assert [f.caption for f in ls_figures.figures(back)] == [
        f.caption for f in ls_figures.figures(result)
    ]


def test_quick_cuts_epochs_and_keeps_the_sweep():
    q = ls.Config().quick()
    assert q.epochs == 25 and q.smoothings == ls.SWEEP and q.n_train == 1000


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_train": 5000}, "n_train must be an integer in"),
        ({"n_val": 4500}, "n_val must be in"),
        ({"n_test": 3}, "n_test must be in"),
        ({"widths": (10, 10)}, "widths must start at 784"),
        ({"smoothings": (0.01, 0.1)}, "smoothings must start at 0.0"),
        ({"smoothings": (0.0, 0.1, 0.05)}, "increase strictly"),
        ({"smoothings": (0.0, 0.95)}, "smoothings must stay below 0.9"),
        ({"batch_size": 0}, r"batch_size must be in \[1, n_train=1000\], got 0"),
        ({"n_bins": 1}, "n_bins must be an integer >= 2"),
        ({"confident": 1.0}, "confident must be in"),
        ({"record_points": 1}, "record_points must be an integer >= 2"),
        ({"seeds": ()}, "seeds must hold at least one seed"),
    ],
)
def test_bad_config_raises_naming_the_field(change, match):
    with pytest.raises(ValueError, match=match):
        ls.Config(**change)


def test_slider_has_one_reliability_panel_per_epsilon(result):
    (slider,) = ls_figures.sliders(result)
    eps = result["smoothings"]
    assert slider.values == [f"{e:g}" for e in eps]
    assert len(slider.figures) == len(eps)
    ax = slider.figures[-1].axes[0]
    assert f"ε = {eps[-1]:g}" in ax.get_title()


def test_sweep_figure_draws_a_bootstrap_interval_above_the_estimate(result):
    # ECE's bootstrap is biased upward: its interval may lie entirely above the ECE
    shifted = ls.Result(
        result.name,
        result.config,
        {**result.arrays, "test_ece_low": result["test_ece_mass"] + 0.01},
        result.timings,
    )
    keys = [f.key for f in ls_figures.figures(shifted)]
    assert "fig8_smoothing_sweep" in keys


def test_reliability_bars_survive_a_mean_an_ulp_below_equal_values():
    from matplotlib.figure import Figure as MplFigure

    acc = np.full((3, 4), 0.1)  # the float mean of three 0.1s exceeds 0.1 by an ulp
    conf = np.tile([0.2, 0.4, 0.6, 0.8], (3, 1))
    assert np.nanmean(acc, 0)[0] != 0.1
    ax = MplFigure().subplots()
    lsf._reliability(ax, conf, acc, "eps", "C0")
    assert len(ax.lines) >= 1
