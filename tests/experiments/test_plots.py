"""Shared plotting helpers: the seed band is the mean's t interval, NaN-aware."""

import numpy as np
from matplotlib.figure import Figure

from reglab.experiments.base import mean_interval
from reglab.experiments.plots import band, named_seed, seed_note


def test_band_draws_the_seed_mean_and_its_t_interval():
    curves = np.array([[1.0, 2.0, np.nan], [3.0, 2.0, np.nan], [2.0, 5.0, np.nan]])
    ax = Figure().subplots()
    band(ax, np.arange(3), curves, color="C0", label="m")
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [2.0, 3.0])  # NaN column dropped
    verts = ax.collections[0].get_paths()[0].vertices[:, 1]
    _, lo, hi = mean_interval([1.0, 3.0, 2.0])
    assert np.isclose(verts.min(), min(lo, mean_interval([2.0, 2.0, 5.0])[1]))
    assert np.isclose(verts.max(), max(hi, mean_interval([2.0, 2.0, 5.0])[2]))


def test_one_seed_draws_no_band_and_says_so():
    ax = Figure().subplots()
    band(ax, np.arange(3), np.ones((1, 3)), color="C0")
    assert not ax.collections
    assert "--seeds 3" in seed_note(1)
    assert "3 seeds" in seed_note(3)
    assert named_seed([4, 5, 6], 1) == " Panels show seed 5 of 3 (4, 5, 6)."
