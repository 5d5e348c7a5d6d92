"""The playground experiment: its Config is the page, its claims pick their members.

Training is tested where the page trains (tests/test_playground.py re-makes a saved
page bit for bit) and in the contract's quick run; here nothing trains.
"""

import numpy as np
import pytest

from reglab.experiments import playground
from reglab.experiments.base import Result, config_dict


def test_a_single_value_is_shared_by_every_member():
    cfg = playground.Config(l2_strengths=(0.0, 0.0025, 0.01))
    assert cfg.n_members == 3
    assert cfg.learning_rates == (0.15,) * 3 and cfg.masks == ("per_batch",) * 3
    # stored once per member, so the same page hashes the same however it was typed
    spelled_out = playground.Config(
        l2_strengths=(0.0, 0.0025, 0.01), learning_rates=(0.15, 0.15, 0.15)
    )
    assert config_dict(cfg) == config_dict(spelled_out)
    assert [m["l2_strength"] for m in cfg.members()] == [0.0, 0.0025, 0.01]


@pytest.mark.parametrize("n, width", [(1, 2), (2, 2), (3, 4), (5, 8), (8, 8)])
def test_members_train_padded_to_two_four_or_eight(n, width):
    cfg = playground.Config(l2_strengths=tuple(0.001 * m for m in range(n)))
    values = playground.ensemble_values(cfg)
    assert len(values["l2_strength"]) == width
    assert values["l2_strength"][n - 1 :].tolist() == [values["l2_strength"][n - 1]] * (
        width - n + 1
    )  # padding copies the last member


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"l2_strengths": (0.0, 0.1), "p_drops": (0.1, 0.2, 0.3)},
         r"l2_strengths has 2 values but another per-member setting has 3 — give"),
        ({"l2_strengths": (0.0,) * 9}, r"1 to 8 values .* got lengths"),
        ({"penalties": ("coupled", "l3")}, r"penalties must be one of \('coupled'"),
        ({"masks": ("per_step",)}, r"masks must be one of \('per_batch'"),
        ({"hidden": (64, 0)}, r"widths must be positive integers"),
        ({"p_drops": (1.0,)}, r"p_drop must be .*\[0, 1\), got 1.0"),
        ({"n_train": 20}, r"n_train must be >= the batch size 32, got 20"),
        ({"noise": -1.0}, r"noise must be a finite std >= 0"),
        ({"data_seed": -3}, r"data_seed must be an integer >= 0, got -3"),
        ({"seeds": ()}, r"seeds must hold at least one seed"),
    ],
)  # fmt: skip
def test_bad_config_is_refused_with_value_rule_and_fix(settings, message):
    with pytest.raises(ValueError, match=message):
        playground.Config(**settings)


def _result(cfg, test_acc, flip_fit, flipped=2):
    """A Result with the arrays claims read: accuracy (S, M) and flip fit (S, M)."""
    acc = np.asarray(test_acc, np.float32)[..., None]  # (S, M, 1 record)
    arrays = {
        "test_accuracy": acc,
        "flip_fit": np.asarray(flip_fit, np.float64),
        "flipped": np.arange(10) < flipped,
    }
    return Result("playground", config_dict(cfg), arrays)


def test_claims_compare_regularized_members_with_the_unregularized_one():
    cfg = playground.Config(l2_strengths=(0.0025, 0.0, 0.0), p_drops=(0, 0, 0.2),
                            seeds=(0, 1))  # fmt: skip
    result = _result(cfg, [[0.97, 0.90, 0.95], [0.96, 0.92, 0.91]],
                     [[0.1, 0.9, 0.3], [0.0, 1.0, 0.6]])  # fmt: skip
    claims = {c.name: c for c in playground.claims(result)}
    assert set(claims) == {
        "member0_ignores_flips", "member0_beats_member1", "member1_fits_flips",
        "member2_ignores_flips", "member2_beats_member1",
    }  # fmt: skip
    beats = claims["member2_beats_member1"]  # dropout 0.2 vs member 1, per seed
    np.testing.assert_allclose(beats.per_seed, [0.05, -0.01], atol=1e-6)
    assert beats.holds_in == 1 and beats.passed  # mean 0.02 > 0
    assert "dropout 0.2" in beats.statement
    assert claims["member1_fits_flips"].measured == pytest.approx(0.95)


def test_without_flips_or_a_bare_member_the_claim_is_better_than_chance():
    cfg = playground.Config(flip_fraction=0.0, seeds=(0, 1))
    result = _result(cfg, [[0.97], [0.40]], np.full((2, 1), np.nan), flipped=0)
    (claim,) = playground.claims(result)
    assert claim.name == "members_learn_the_moons"
    assert claim.per_seed == pytest.approx((0.97, 0.40)) and claim.holds_in == 1


def test_label_names_each_regularizer_and_a_non_default_penalty():
    member = playground.Config(
        l2_strengths=(0.01,), penalties=("decoupled",), smoothings=(0.1,)
    ).members()[0]
    assert playground.label(member) == "L2 0.01, smoothing 0.1, decoupled"
    assert playground.label(playground.Config(l2_strengths=(0,)).members()[0]) == (
        "unregularized"
    )
