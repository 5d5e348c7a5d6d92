"""The AdamW grid experiment at tiny scale: shapes, figures, claims, round trip."""

import numpy as np
import pytest

from reglab.experiments import adamw, adamw_figures

TINY = adamw.Config(
    learning_rates=(1e-3, 1e-2),
    l2_strengths=(0.0, 1e-3),
    decay_strengths=(0.0, 0.1),
    moons_epochs=3,
    mnist=False,
    n_test=50,
    seeds=(0, 1),
)


@pytest.fixture(scope="module")
def result():
    return adamw.run(TINY)


def test_grid_shapes_and_accuracies_are_probabilities(result):
    for penalty in adamw.PENALTIES:
        acc = result[f"moons_{penalty}_acc"]
        assert acc.shape == (2, 2, 2)
        assert ((acc >= 0) & (acc <= 1)).all()
    assert result["coupled_nu_W2"].shape == (2, 2, 2, 64 * 64)


def test_best_strength_index_averages_near_ties():
    acc = np.array([[0.90, 0.95, 0.95, 0.80], [0.99, 0.5, 0.5, 0.5]])
    np.testing.assert_allclose(adamw.best_strength_index(acc), [1.5, 0.0])


def test_figures_and_claims_rerender_from_a_saved_result(result, tmp_path):
    result.save(tmp_path)
    again = adamw.Result.load(tmp_path)
    figs = adamw_figures.figures(again)
    assert [f.key for f in figs] == ["fig_adamw_grid_moons", "fig_adamw_shrinkage"]
    assert len(figs[0].figure.axes) == 4  # two heatmaps, two colorbars
    (claim,) = adamw.claims(again)
    assert claim.name == "adamw_more_separable_moons" and np.isfinite(claim.measured)
    assert len(claim.per_seed) == len(TINY.seeds)
    assert claim == adamw.claims(result)[0]


def _grids(result, diagonal: np.ndarray, vertical: np.ndarray):
    """The tiny result with hand-made accuracy grids (S, lrs, strengths)."""
    arrays = {**result.arrays, "moons_coupled_acc": diagonal}
    arrays["moons_decoupled_acc"] = vertical
    return adamw.Result(result.name, result.config, arrays)


def test_claim_is_decided_on_each_seeds_trail(result):
    # 4 learning rates x 4 strengths: the coupled best runs down the diagonal (moves
    # 3 steps), the decoupled best stays in column 1 (0 steps) — in both seeds
    diagonal = np.stack([np.eye(4), np.eye(4)])  # (2, 4, 4)
    vertical = np.zeros((2, 4, 4))
    vertical[:, :, 1] = 1.0
    (claim,) = adamw.claims(_grids(result, diagonal, vertical))
    assert claim.per_seed == (3.0, 3.0) and claim.passed and claim.holds_in == 2
    # seeds that disagree: seed 1's AdamW trail moves as far as Adam + L2's
    (mixed,) = adamw.claims(
        _grids(result, diagonal, np.stack([vertical[0], np.eye(4)]))
    )
    assert mixed.per_seed == (3.0, 0.0) and mixed.holds_in == 1
    assert mixed.measured == 1.5 and mixed.interval[0] < 0 < mixed.interval[1]
    (swapped,) = adamw.claims(_grids(result, vertical, diagonal))
    assert not swapped.passed and swapped.holds_in == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rates": ()}, "learning_rates must hold at least one value"),
        ({"decay_strengths": ()}, "decay_strengths must hold at least one value"),
        ({"learning_rates": (0.01,)}, "needs >= 2 values"),
    ],
)
def test_bad_grid_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adamw.Config(**kwargs)
