"""Every registered experiment keeps the contract of ``reglab.experiments.base``.

One quick run of all experiments (the session's ``quick_report``, 2 seeds) is checked
here instead of a copy of these checks per experiment.
"""

import dataclasses
import inspect
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from reglab import experiments
from reglab.experiments.base import Claim, Result


@pytest.mark.parametrize("name", experiments.NAMES)
def test_config_is_frozen_with_seeds_and_a_quick_version(name):
    mod = experiments.get(name)
    assert name == mod.NAME
    cfg = mod.Config()
    assert dataclasses.is_dataclass(cfg)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seeds = (5,)
    quick = cfg.quick()
    assert type(quick) is mod.Config and quick != cfg and quick.seeds == cfg.seeds
    assert "progress" in inspect.signature(mod.run).parameters
    with pytest.raises(ValueError, match="seeds"):
        mod.Config(seeds=())
    assert mod.SEED_AXIS and all(isinstance(p, str) for p in mod.SEED_AXIS)


@pytest.mark.slow
@pytest.mark.parametrize("name", experiments.NAMES)
def test_quick_run_round_trips_draws_and_decides_every_claim(name, quick_report):
    from reglab.lab.runner import Lab, merge
    from reglab.store import Store

    mod, drawing = experiments.get(name), experiments.figures_of(name)
    plan = Lab(Store(quick_report / "store")).plan(
        name, mod.Config(seeds=(0, 1)).quick()
    )
    assert plan.cached, f"{name}'s quick run is not in the store"
    result = merge(plan.parts)
    assert result is not None
    with tempfile.TemporaryDirectory() as tmp:  # the Result round-trips on disk too
        result.save(Path(tmp))
        again = Result.load(Path(tmp))
    assert again.config == result.config and set(again.arrays) == set(result.arrays)
    # which arrays have a seed axis is declared (merging reads it), one row per seed
    assert result.seed_axis and again.seed_axis == result.seed_axis
    assert all(len(result[k]) == 2 for k in result.seed_axis)
    assert result.name == name and result.devices
    assert list(result.config["seeds"]) == [0, 1]
    claims = mod.claims(result)
    assert claims, f"{name} states no claim"
    for claim in claims:
        assert isinstance(claim, Claim)
        assert len(claim.per_seed) == 2, f"{claim.name} is not decided over the seeds"
        assert np.isfinite(claim.measured), claim.name
        lo, hi = claim.interval
        assert lo <= claim.measured <= hi
    figures = drawing.figures(result)
    assert figures and all(f.caption and "$" not in f.caption for f in figures)
    for f in figures:
        f.figure.canvas.draw()  # renders: every artist is drawable


@pytest.mark.parametrize("name", experiments.NAMES)
def test_training_modules_import_no_matplotlib(name):
    code = (
        f"import sys, reglab.experiments.{name}; "
        "print(any(m.startswith('matplotlib') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
