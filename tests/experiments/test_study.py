"""The study experiment: a TOML question runs end to end, its grid is the settings
table's, and the example studies parse."""

import json
from pathlib import Path

import numpy as np
import pytest

import reglab.regularizers
from reglab import cli
from reglab.experiments import study
from reglab.experiments.base import config_dict
from reglab.lab import LabError
from reglab.lab.overrides import build_config, load_toml
from reglab.store import Store, config_hash

STUDIES = Path(__file__).resolve().parents[2] / "examples" / "studies"


def test_the_csv_study_runs_from_its_toml_end_to_end(tmp_path):
    out, store = tmp_path / "out", tmp_path / "store"
    args = ["run", "study", "-c", str(STUDIES / "your-csv.toml"), "--set",
            "epochs=6", "--set", "seeds=[0, 1]", "--set", "hidden=[8]",
            "--out", str(out), "--store", str(store), "--no-progress"]  # fmt: skip
    assert cli.main(args) == 0
    figures = sorted(p.name for p in (out / "study").glob("*.png"))
    assert figures == [
        "fig_study_boundaries.png",  # the CSV has two columns: the plane
        "fig_study_calibration.png",
        "fig_study_curves.png",
        "fig_study_weights.png",
    ]
    claims = json.loads((out / "claims.json").read_text())
    assert claims  # three l2 strengths, 0 first: two per regularized strength
    runs = Store(store).list_runs()
    assert sorted(r.seed for r in runs) == [0, 1]
    digest = study.files.sha256_of(STUDIES / "your-data.csv")
    assert runs[0].config["dataset"].endswith(f"your-data.csv#sha256={digest}")


def test_members_are_seeds_times_the_grid_in_the_grids_order():
    cfg = study.Config(
        grid={"smoothing": [0.0, 0.1], "learning_rate": [0.1, 0.2, 0.3]}, seeds=(0, 1)
    )
    ensemble = study.members(cfg)
    assert ensemble.shape == (2, 6)
    labels = study.column_labels(cfg.grid)
    assert labels[1] == "smoothing=0, learning_rate=0.2"  # the first varies slowest
    for c, label in enumerate(labels):
        point = ensemble.config(c)
        smoothing, rate = point["smoothing"], point["learning_rate"]
        assert label == f"smoothing={smoothing:g}, learning_rate={rate:g}"
    # each column's baseline: smoothing 0 (its default) at the same learning rate
    assert study.baselines(cfg.grid) == [0, 1, 2, 0, 1, 2]


def test_a_grid_setting_not_in_the_table_is_named_with_the_closest():
    with pytest.raises(ValueError, match=r"'l2_strenght' .* did you mean l2_strength"):
        study.Config(grid={"l2_strenght": [0.0]})
    with pytest.raises(ValueError, match=r"p_drop must be finite and \[0, 1\)"):
        study.Config(grid={"p_drop": [0.0, 1.0]})
    with pytest.raises(ValueError, match=r"flip_fraction flips the moons' labels only"):
        study.Config(dataset="mnist")


def test_dotted_keys_join_the_grid_table():
    cfg = build_config(study, {"grid.smoothing": [0.0, 0.1], "epochs": 5})
    assert cfg.grid == {"l2_strength": [0.0, 0.0025], "smoothing": [0.0, 0.1]}
    cfg = build_config(study, {"grid": {"p_drop": 0.1}, "grid.smoothing": 0.2})
    assert cfg.grid == {"p_drop": [0.1], "smoothing": [0.2]}
    with pytest.raises(LabError, match=r"'epochs' is not a table"):
        build_config(study, {"epochs.x": 1})


def test_a_changed_csv_is_another_study_key(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n0,1,0\n1,0,1\n2,2,0\n3,1,1\n")
    cfg = study.Config(dataset=f"csv:{path}", flip_fraction=0.0, batch_size=2)
    key = config_hash(config_dict(cfg))
    path.write_text("a,b,label\n0,1,0\n1,0,1\n2,2,0\n3,9,1\n")
    again = study.Config(dataset=f"csv:{path}", flip_fraction=0.0, batch_size=2)
    assert config_hash(config_dict(again)) != key


def test_the_moons_study_sweeps_the_plug_ins_strength(monkeypatch):
    settings, axes = load_toml(STUDIES / "moons-confidence-penalty.toml")
    assert axes == {
        "grid.confidence_penalty": [0.0, 0.1, 0.3, 1.0],
        "metrics": ["nll/0", "ece/0"],
    }
    assert settings["flip_fraction"] == 0.1 and settings["epochs"] == 10_000
    if not hasattr(reglab.regularizers, "register"):
        with pytest.raises(LabError, match=r"'confidence_penalty' is not in the"):
            build_config(study, settings)  # without the plug-in: named, with a fix
        pytest.skip(
            "reglab.regularizers.register is not on this branch (the plug-in seam):"
            " the study's grid names confidence_penalty, which only the registered"
            " plug-in (examples/reglab-confidence-penalty) adds to the settings table"
        )
    _load_the_plugin(monkeypatch)
    for value in axes["grid.confidence_penalty"]:
        cfg = build_config(study, {**settings, "grid.confidence_penalty": value})
        assert cfg.grid == {"confidence_penalty": [value]}


def test_the_mnist_study_compares_smoothing_with_the_penalty(monkeypatch):
    settings, axes = load_toml(STUDIES / "mnist-calibration.toml")
    assert axes == {} and settings["dataset"] == "mnist"
    assert settings["grid"] == {
        "smoothing": [0.0, 0.1],
        "confidence_penalty": [0.0, 0.1],
    }
    without = {**settings, "grid": {"smoothing": [0.0, 0.1]}}
    assert study.members(build_config(study, without)).n_configs == 2
    if not hasattr(reglab.regularizers, "register"):
        pytest.skip(
            "reglab.regularizers.register is not on this branch: confidence_penalty"
            " is a plug-in's setting"
        )
    _load_the_plugin(monkeypatch)
    assert study.members(build_config(study, settings)).n_configs == 4


def _load_the_plugin(monkeypatch) -> None:
    """Load examples/reglab-confidence-penalty, the real plug-in (seam present).

    Its module registers once however often it is loaded, so tests that load it too
    never clash; $REGLAB_PLUGINS, which load_plugins sets for spawned workers, is
    restored after the test.
    """
    src = STUDIES.parents[0] / "reglab-confidence-penalty" / "src"
    if not src.is_dir():
        pytest.skip(f"the example plug-in {src} is not on this branch")
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.delenv("REGLAB_PLUGINS", raising=False)
    reglab.regularizers.load_plugins(["reglab_confidence_penalty"])


def test_study_results_hold_per_layer_norms_and_calibration():
    cfg = study.Config(epochs=3, hidden=(8, 8), seeds=(0,), n_train=64, n_test=50)
    result = study.run(cfg)
    a = result.arrays
    assert a["weight_norm"].shape == (1, 2, 3) and a["sparsity"].shape == (1, 2, 3)
    W1 = a.get("params_W1")
    assert W1 is None  # the study keeps measurements, not parameters
    assert a["reliability_conf"].shape == (1, 2, 15)
    assert np.all((a["ece"] >= 0) & (a["ece"] <= 1))
    assert a["boundary"].shape == (1, 2, study.GRID, study.GRID)


def test_seed_axis_names_exactly_the_arrays_with_seeds_first():
    result = study.run(study.Config(epochs=2, hidden=(4,), seeds=(0, 1, 2, 3)))
    seeded = {k for k, v in result.arrays.items() if v.ndim and v.shape[0] == 4}
    assert seeded == set(study.SEED_AXIS)
