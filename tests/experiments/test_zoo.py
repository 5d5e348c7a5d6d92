"""The zoo: its claims on hand-made results, its config's refusals, a tiny run."""

import numpy as np
import pytest

from reglab.experiments import zoo, zoo_figures
from reglab.experiments.base import Result

REGS = ("l2_strength", *zoo.CANON)


def fake_result(seeds=3):
    """Two strengths per regularizer; the second is the best, and every claim holds."""
    cols = [("none", 0.0)] + [(r, v) for r in REGS for v in (0.1, 0.2)]
    C = len(cols)
    names = np.array([r for r, _ in cols])
    best = [0] + [1 + 2 * i + 1 for i in range(len(REGS))]  # each one's second
    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 1e-3, (seeds, C))  # noqa: E731
    acc = np.full((seeds, C), 0.90) + noise()
    acc[:, best[1:]] = 0.95  # every regularizer's best beats none
    fit = np.full((seeds, C), 0.8) + noise()
    length = np.full((seeds, C), 10.0) + noise()
    ece = np.full((seeds, C), 0.10) + noise()
    col = {r: best[1 + i] for i, r in enumerate(REGS)}
    fit[:, col["mixup"]] = 0.3
    fit[:, col["input_noise"]] = 0.1
    fit[:, col["gradient_noise"]] = 0.9
    length[:, col["weight_noise"]] = 7.0
    ece[:, col["mixup"]] = 0.05
    eig = np.full((seeds, len(best)), 5.0)
    eig[:, 1 + REGS.index("sam")] = 3.0
    eig[:, 1 + REGS.index("swa_start")] = 4.0
    arrays = {
        "column_regularizer": names,
        "column_strength": np.array([v for _, v in cols]),
        "moons_test_acc": acc, "moons_flip_fit": fit, "moons_boundary": length,
        "mnist_test_acc": acc.copy(), "mnist_ece": ece,
        "sharpness_columns": np.array(best), "mnist_top_eigenvalue": eig,
        "seeds": np.arange(seeds),
    }  # fmt: skip
    return Result(zoo.NAME, {}, arrays)


def test_claims_hold_on_a_result_built_to_satisfy_them():
    claims = zoo.claims(fake_result())
    names = {c.name for c in claims}
    assert names == {
        "mixup_fits_fewer_flips", "input_noise_ignores_flips",
        "input_noise_matches_best_l2", "weight_noise_smooths_boundary",
        "gradient_noise_still_fits_flips", "mixup_lowers_ece", "sam_flatter",
        "sam_accuracy_no_lower", "swa_flatter", "swa_accuracy_no_lower",
    }  # fmt: skip
    assert all(c.passed for c in claims), [c.name for c in claims if not c.passed]
    assert all(c.agreement == "holds in 3 of 3 seeds" for c in claims)


def test_a_claim_fails_when_its_measurement_goes_the_other_way():
    result = fake_result()
    sam_col = zoo.column_of(result, "sam", "mnist")
    where = list(result["sharpness_columns"]).index(sam_col)
    result.arrays["mnist_top_eigenvalue"][:, where] = 9.0  # sharper than none
    result.arrays["mnist_ece"][:, zoo.column_of(result, "mixup", "mnist")] = 0.2
    failed = {c.name for c in zoo.claims(result) if not c.passed}
    assert failed == {"sam_flatter", "mixup_lowers_ece"}


def test_claims_and_summary_cover_only_the_regularizers_present():
    result = fake_result()
    keep = np.isin(result["column_regularizer"], ["none", "l2_strength"])
    for k in ("moons_test_acc", "moons_flip_fit", "moons_boundary", "mnist_test_acc",
              "mnist_ece"):  # fmt: skip
        result.arrays[k] = result.arrays[k][:, keep]
    result.arrays["column_regularizer"] = result["column_regularizer"][keep]
    result.arrays["column_strength"] = result["column_strength"][keep]
    result.arrays["sharpness_columns"] = np.array([0, 2])
    result.arrays["mnist_top_eigenvalue"] = result["mnist_top_eigenvalue"][:, :2]
    assert zoo.claims(result) == []
    rows = zoo_figures.summary_rows(result)
    assert [r["regularizer"] for r in rows] == ["no regularizer", "L2"]
    assert rows[1]["moons strength"] == 0.2
    (table,) = zoo_figures.tables(result)  # the report's sortable summary
    assert [row[0] for row in table.rows] == ["no regularizer", "L2"]
    value, text = table.rows[1][2]  # moons clean accuracy: the mean, with its interval
    assert value == pytest.approx(result["moons_test_acc"][:, 2].mean())
    assert text.startswith(f"{value:.3f} [")
    assert len(table.rows[1]) == len(table.columns)


def test_config_refuses_unknown_regularizers_and_zero_strengths():
    with pytest.raises(ValueError, match="'dropconnect' has no grid"):
        zoo.Config(regularizers=("dropconnect",))
    grids = (("l2_strength", (0.0, 1e-3)),)
    with pytest.raises(ValueError, match="distinct nonzero strengths"):
        zoo.Config(regularizers=("l2_strength",), grids=grids)
    with pytest.raises(ValueError, match="mnist_epochs must be an integer >= 1"):
        zoo.Config(regularizers=zoo.POST, mnist_epochs=0)


@pytest.mark.slow  # two programs and the sharpness program: compilation
def test_a_tiny_run_of_the_posts_regularizers_scores_every_column():
    cfg = zoo.Config(
        regularizers=("l2_strength",),
        grids=(("l2_strength", (1e-3, 1e-2)),),
        moons_widths=(2, 8, 8, 2), moons_epochs=2, mnist_widths=(784, 8, 10),
        mnist_epochs=1, mnist_n_train=64, mnist_n_test=100, power_iterations=2,
        hutchinson_probes=1, grid_resolution=10, seeds=(0, 1),
    )  # fmt: skip
    result = zoo.run(cfg)
    assert result["moons_test_acc"].shape == (2, 3)
    assert result["mnist_ece"].shape == (2, 3)
    assert result["mnist_top_eigenvalue"].shape == (2, 2)  # none and L2's best
    assert np.isfinite(result["mnist_top_eigenvalue"]).all()
    assert list(result["column_regularizer"]) == ["none", *["l2_strength"] * 2]
