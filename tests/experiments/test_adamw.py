"""The AdamW grid experiment at tiny scale: shapes, figures, claims, round trip."""

import numpy as np
import pytest

from reglab.experiments import adamw

TINY = adamw.Config(
    learning_rates=(1e-3, 1e-2),
    l2_strengths=(0.0, 1e-3),
    decay_strengths=(0.0, 0.1),
    moons_epochs=3,
    mnist=False,
    n_test=50,
)


@pytest.fixture(scope="module")
def result():
    return adamw.run(TINY)


def test_grid_shapes_and_accuracies_are_probabilities(result):
    for penalty in adamw.PENALTIES:
        acc = result[f"moons_{penalty}_acc"]
        assert acc.shape == (1, 2, 2)
        assert ((acc >= 0) & (acc <= 1)).all()
    assert result["coupled_nu_W2"].shape == (1, 2, 2, 64 * 64)


def test_best_strength_index_averages_near_ties():
    acc = np.array([[0.90, 0.95, 0.95, 0.80], [0.99, 0.5, 0.5, 0.5]])
    np.testing.assert_allclose(adamw.best_strength_index(acc), [1.5, 0.0])


def test_figures_and_claims_rerender_from_a_saved_result(result, tmp_path):
    result.save(tmp_path)
    again = adamw.Result.load(tmp_path)
    figs = adamw.figures(again)
    assert [f.key for f in figs] == ["fig_adamw_grid_moons", "fig_adamw_shrinkage"]
    assert len(figs[0].figure.axes) == 4  # two heatmaps, two colorbars
    (claim,) = adamw.claims(again)
    assert claim.name == "adamw_more_separable_moons" and np.isfinite(claim.measured)
    assert claim == adamw.claims(result)[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rates": ()}, "learning_rates is an empty grid axis"),
        ({"decay_strengths": ()}, "decay_strengths is an empty grid axis"),
        ({"learning_rates": (0.01,)}, "needs >= 2 values"),
    ],
)
def test_bad_grid_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adamw.Config(**kwargs)
