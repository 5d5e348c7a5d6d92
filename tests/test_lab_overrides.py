"""--set, --grid and -c FILE.toml: parsed as TOML, checked against the Config."""

import pytest

from reglab import cli, experiments
from reglab.lab import LabError
from reglab.lab.overrides import build_config, load_toml, parse_sets, parse_value
from reglab.lab.sweep import grid_points, parse_grid, parse_range

WD = experiments.get("weight_decay")


def test_values_parse_as_toml_literals_and_bare_words_as_strings():
    assert parse_sets(["l2_strengths=[0,0.001,0.01]", 'dataset="mnist"']) == {
        "l2_strengths": [0, 0.001, 0.01],
        "dataset": "mnist",
    }
    assert parse_value("mnist") == "mnist"
    assert parse_value("true") is True and parse_value("1e-3") == 0.001


def test_settings_become_the_configs_types():
    settings = {"l2_strengths": [0, 0.0025, 0.01], "epochs": 7, "noise": 1}
    cfg = build_config(WD, settings)
    assert cfg.l2_strengths == (0.0, 0.0025, 0.01) and cfg.epochs == 7
    assert isinstance(cfg.noise, float)
    assert build_config(WD, {}, seeds=3).seeds == (0, 1, 2)
    assert build_config(WD, {"epochs": 3}, quick=True).epochs == 3  # --set wins


def test_unknown_key_gets_the_closest_valid_key():
    with pytest.raises(LabError, match="no setting 'l2_strenghts' — did you mean"
                       " l2_strengths?"):  # fmt: skip
        build_config(WD, {"l2_strenghts": [0.0]})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": 1.5}, "epochs must be an integer, got 1.5"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"l2_strengths": 0.1}, r"l2_strengths must be a list"),
        ({"l2_strengths": [0.01]}, "must be >= 0 and include 0.0"),
        ({"noise": "high"}, "noise must be a number, got 'high'"),
    ],
)
def test_bad_values_get_the_configs_own_error(settings, message):
    with pytest.raises(LabError, match=message):
        build_config(WD, settings)


def test_grid_axes_values_and_hydra_ranges():
    assert parse_grid("noise=0.1,0.2") == ("noise", [0.1, 0.2])
    assert parse_grid("dataset=mnist,fashion_mnist")[1] == ["mnist", "fashion_mnist"]
    assert parse_grid("l2_strengths=[0,0.1],[0,0.2]")[1] == [[0, 0.1], [0, 0.2]]
    assert parse_range("range(1,4)") == [1, 2, 3]
    assert parse_range("range(0, 0.3, 0.1)") == [0.0, 0.1, 0.2]
    assert parse_range("range(5,1,-2)") == [5, 3]
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"},
    ]  # fmt: skip
    bad_axes = [
        ("noise=", "needs values"),
        ("noise=,", "needs values"),
        ("noise=range(1,1)", "is empty"),
        ("noise", "KEY=VALUE"),
    ]
    for bad, message in bad_axes:
        with pytest.raises(LabError, match=message):
            parse_grid(bad)


def test_toml_file_holds_settings_and_a_sweep_table(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("epochs = 50\n[sweep]\nnoise = [0.1, 0.2]\n")
    assert load_toml(path) == ({"epochs": 50}, {"noise": [0.1, 0.2]})
    path.write_text("epochs = \n")
    with pytest.raises(LabError, match="is not valid TOML"):
        load_toml(path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "weight_decay", "--set", "l2_strenghts=[0]"], "did you mean"),
        (
            ["sweep", "weight_decay", "--grid", "near_zero=0.01,2"],
            "near_zero must be in",
        ),
        (["sweep", "weight_decay", "--grid", "epochs=1,2.5"], "must be an integer"),
        (["run", "moons"], "unknown experiment 'moons'"),
        (["sweep", "weight_decay"], "needs at least one --grid"),
    ],
)
def test_the_command_line_checks_every_setting_before_work(tmp_path, argv, message):
    store = tmp_path / "store"
    with pytest.raises(SystemExit, match=message):
        cli.main([*argv, "--store", str(store), "--out", str(tmp_path / "o")])
    assert not store.exists()
