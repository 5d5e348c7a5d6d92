"""The settings table: one row per per-member setting, and what derives from it."""

import numpy as np
import pytest

from reglab import settings
from reglab.ensemble import Ensemble


def test_every_row_has_a_meaning_a_fix_and_a_member_field():
    names = tuple(s.name for s in settings.table())
    assert settings.member(learning_rate=0.1)._fields == names
    for s in settings.table():
        assert s.meaning and s.fix, s.name
        if s.default is not None:
            s.check(s.default)  # every default is allowed by its own range


@pytest.mark.parametrize(
    ("name", "good", "bad", "match"),
    [
        ("p_drop", [0.0, 0.5], 1.0, r"p_drop must be finite and \[0, 1\), got 1.0"),
        ("smoothing", 0.99, -0.1, r"smoothing must be finite and \[0, 1\)"),
        ("learning_rate", 1e-4, 0.0, r"learning_rate must be finite and > 0, got 0.0"),
        ("tau", 5e4, np.inf, "tau must be finite and > 0"),
        ("l2_strength", 0.0, -1e-3, "l2_strength must be finite and >= 0"),
        ("max_norm", 3.0, -1.0, "use 0.0 to turn max-norm off"),
        ("augment", [True, False], 0.5, "augment must be True or False"),
    ],
)
def test_each_range_admits_good_values_and_names_a_bad_one(name, good, bad, match):
    row = settings.BY_NAME[name]
    row.check(good)
    with pytest.raises(ValueError, match=match):
        row.check(bad)


def test_flags_are_booleans_and_accept_zero_or_one():
    row = settings.BY_NAME["decoupled"]
    assert row.check([0, 1]).dtype == bool
    assert row.check(True).tolist() is True
    with pytest.raises(TypeError, match="l2_strength must be a number"):
        settings.BY_NAME["l2_strength"].check(True)


def test_ensemble_takes_defaults_and_validation_from_the_table():
    ens = Ensemble((0,), {"learning_rate": [0.1, 0.2]})
    for row in settings.table()[1:]:
        assert (ens.values[row.name] == row.default).all()
    with pytest.raises(ValueError, match="did you mean l2_strength"):
        Ensemble((0,), {"learning_rate": 0.1, "l2_strenght": 0.1})
    with pytest.raises(ValueError, match=r"p_drop must be finite and \[0, 1\)"):
        Ensemble((0,), {"learning_rate": 0.1, "p_drop": [0.0, 1.0]})
    with pytest.raises(ValueError, match="learning_rate is required"):
        Ensemble((0,), {})
    members = ens.members()
    assert isinstance(members, settings.Member)
    np.testing.assert_allclose(members.learning_rate, [0.1, 0.2])


def test_list_rows_say_default_range_and_meaning():
    rows = {r[0]: r for r in settings.describe()}
    assert rows["learning_rate"][1] == "required"
    assert rows["p_drop"][1:3] == ("0.0", "[0, 1)")
    assert rows["decoupled"][2] == "True or False"
