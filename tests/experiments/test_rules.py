"""Config rules declared as data: one check, one message shape, quick() from QUICK."""

import dataclasses

import pytest

from reglab.experiments.rules import Each, Interval, Options, Rules, shrink


@dataclasses.dataclass(frozen=True)
class _Toy(Rules):
    """A Config that states its rules as data, as every experiment's does."""

    n_train: int = 10
    p_drop: float = 0.5
    strengths: tuple[float, ...] = (0.0, 0.1)
    mode: str = "a"
    epochs: int = 40
    seeds: tuple[int, ...] = (0,)

    constraints = {
        "n_train": Interval(int, 2, None, fix="one point per moon"),
        "p_drop": Interval(float, 0, 1, "right"),
        "strengths": Each(Interval(float, 0, None)),
        "mode": Options(("a", "b")),
    }
    QUICK = {"epochs": shrink(20, floor=3), "mode": "b"}

    def validate(self) -> None:
        if self.n_train < self.epochs // 10:
            raise ValueError("n_train must be >= epochs // 10")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_train": 1}, "n_train must be an integer >= 2, got 1 — one point per moon"),
        ({"n_train": True}, "n_train must be an integer >= 2, got True"),  # no bools
        ({"n_train": 2.0}, "n_train must be an integer >= 2, got 2.0"),
        ({"p_drop": 0.0}, r"p_drop must be in \(0, 1\], got 0.0"),
        ({"p_drop": "x"}, r"p_drop must be in \(0, 1\], got 'x'"),
        ({"strengths": (0.1, -1)}, r"strengths must hold only values >= 0, got"),
        ({"mode": "c"}, r"mode must be one of \('a', 'b'\), got 'c'"),
        ({"seeds": ()}, r"seeds must hold at least one seed, got \(\) — e.g. \(0,\)"),
        ({"n_train": 3, "epochs": 40}, "n_train must be >= epochs // 10"),  # validate
    ],
)
def test_declared_constraints_name_the_field_the_rule_and_the_fix(change, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        _Toy(**change)


def test_a_valid_config_passes_and_quick_applies_its_rules():
    cfg = _Toy(p_drop=1, strengths=[0.0, 2], seeds=[1, 2])  # ints are numbers
    assert cfg.strengths == (0.0, 2) and cfg.seeds == (1, 2)  # lists become tuples
    assert cfg.quick() == dataclasses.replace(cfg, epochs=3, mode="b")
    assert _Toy(n_train=100, epochs=1000).quick().epochs == 50


def test_interval_describes_each_kind_of_end():
    assert Interval(int, 1, None).describe() == "an integer >= 1"
    assert Interval(float, 0, 1, "neither").describe() == "in (0, 1)"
    assert Interval(float, 0, 1, "left").describe() == "in [0, 1)"
    assert Interval(float, None, 0.9, "neither").describe() == "< 0.9"
    with pytest.raises(ValueError, match="closed must be one of"):
        Interval(float, 0, 1, "open")
