"""The experiment contract: results round-trip, claims judge, tallies add up."""

from types import SimpleNamespace

import numpy as np
import pytest

from reglab.experiments.base import Claim, Result, Tally, mean_interval


def test_tally_sums_calls_and_maps_progress_onto_one_bar():
    seen = []
    tally = Tally(lambda done, total: seen.append((done, total)), n_calls=2)
    for i in range(2):
        tally.progress(i)(5, 10)
        tally.progress(i)(10, 10)
        tally.add(SimpleNamespace(compile_seconds=1.0, run_seconds=2.0, failures=["x"]))
    assert seen == [(5, 20), (10, 20), (15, 20), (20, 20)]
    assert tally.timings == {"compile_s": 2.0, "run_s": 4.0}
    assert tally.notes == ["x", "x"]


def test_result_round_trips_arrays_and_metadata(tmp_path):
    r = Result("x", {"a": [1, 2]}, {"v": np.arange(3.0)}, {"run_s": 1.5}, ["note"],
               seed_axis=("v",))  # fmt: skip
    r.save(tmp_path)
    back = Result.load(tmp_path)
    np.testing.assert_array_equal(back["v"], r["v"])
    assert (back.name, back.config, back.timings, back.notes, back.seed_axis) == (
        "x",
        {"a": [1, 2]},
        {"run_s": 1.5},
        ["note"],
        ("v",),
    )
    assert not list(tmp_path.glob("*.tmp.npz"))  # written atomically


@pytest.mark.parametrize(
    ("measured", "comparison", "passed"),
    [(1.0, ">", True), (0.5, ">", False), (0.5, ">=", True), (0.4, "<", True),
     (0.5, "<", False), (0.5, "<=", True)],
)  # fmt: skip
def test_claim_passes_by_its_comparison(measured, comparison, passed):
    claim = Claim("c", "s", measured, 0.5, comparison)
    assert claim.passed is passed
    assert claim.to_dict()["passed"] is passed


def test_mean_interval_matches_the_student_t_interval_by_hand():
    # values 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303 -> half width 4.303 / sqrt(3)
    mean, lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    np.testing.assert_allclose([lo, hi], [2 - 4.303 / 3**0.5, 2 + 4.303 / 3**0.5])
    assert mean_interval([5.0]) == (5.0, 5.0, 5.0)  # one seed: no spread
    # many seeds: the normal quantile
    v = np.arange(40.0)
    _, lo, hi = mean_interval(v)
    np.testing.assert_allclose(hi - lo, 2 * 1.96 * v.std(ddof=1) / np.sqrt(40))


def test_claim_over_seeds_is_decided_on_the_mean_and_counts_agreeing_seeds():
    claim = Claim.over_seeds("c", "s", [0.9, 0.2, 0.7], 0.5, ">")
    assert claim.passed  # mean 0.6 > 0.5, although one seed disagrees
    assert claim.holds_in == 2
    assert claim.agreement == "holds in 2 of 3 seeds"
    lo, hi = claim.interval
    assert lo < claim.measured < hi
    d = claim.to_dict()
    assert d["per_seed"] == [0.9, 0.2, 0.7] and d["agreement"] == claim.agreement
    single = Claim.over_seeds("c", "s", [0.9], 0.5, ">")
    assert "1 of 1" not in single.agreement and "--seeds 3" in single.agreement


def test_claim_refuses_an_unknown_comparison_and_no_seeds():
    with pytest.raises(ValueError, match="comparison must be one of"):
        Claim("c", "s", 1.0, 0.5, "=>")
    with pytest.raises(ValueError, match="at least one seed"):
        Claim.over_seeds("c", "s", [], 0.5, ">")
