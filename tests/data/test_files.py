"""Dataset files: good ones load, each bad one gets its one-line message, and the
file's sha256 is part of the run's key."""

import subprocess
import sys

import numpy as np
import pytest

from reglab.data import files
from reglab.experiments import early_stopping
from reglab.experiments.base import config_dict
from reglab.lab.overrides import load_toml
from reglab.lab.replay import sweep_key
from reglab.store import config_hash


def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _csv(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_npz_with_a_test_split_loads_as_float32_inputs_and_int32_labels(tmp_path):
    x = np.arange(12.0).reshape(6, 2)
    path = _npz(tmp_path, x=x, y=[0, 1, 2, 0, 1, 2], x_test=x[:2], y_test=[2, 0])
    found = files.load(f"npz:{path}")
    assert found.x.dtype == np.float32 and found.y.dtype == np.int32
    np.testing.assert_array_equal(found.x, x)
    np.testing.assert_array_equal(found.y_test, [2, 0])
    assert found.n_classes == 3 and found.x_test.shape == (2, 2)


def test_a_csv_with_a_header_and_blank_lines_loads_with_the_label_last(tmp_path):
    path = _csv(tmp_path, "a,b,label\n0.5,1,0\n\n-2,3e-1,1\n")
    found = files.load(f"csv:{path}")
    np.testing.assert_allclose(found.x, [[0.5, 1.0], [-2.0, 0.3]])
    np.testing.assert_array_equal(found.y, [0, 1])
    assert found.x_test is None and found.y_test is None


def test_a_csv_without_a_header_keeps_its_first_row(tmp_path):
    path = _csv(tmp_path, "1,2,1\n3,4,0\n")
    found = files.load(f"csv:{path}")
    assert found.x.shape == (2, 2) and found.y.tolist() == [1, 0]


CSV_CASES = [
    ("x,y\n1,0\n2,1.5\n", r"line 3 has label 1\.5; labels must be integers 0\.\.K-1"),
    ("x,y\n1,0\n2,-1\n", r"line 3 has label -1\.0; labels must be integers"),
    ("1,0\nnan,1\n", r"line 2 holds nan — drop or impute that row"),
    ("1,0\n2,inf,1\n", r"line 2 has 3 columns, line 1 has 2 — give every row"),
    ("1,0\n2,abc\n", r"line 2, column 2: 'abc' is not a number"),
    ("1,0\n2,0\n", r"every y is 0, a single class — .*at least 2 classes"),
    ("1,0\n2,2\n", r"class 1 has no example in y .*renumber the classes"),
    ("x,y\n", r"has no data rows"),
    ("1\n2\n", r"line 1 has 1 column; a row needs at least one feature"),
]


@pytest.mark.parametrize(("text", "message"), CSV_CASES)
def test_each_bad_csv_gets_its_message_naming_the_file_and_line(
    tmp_path, text, message
):
    path = _csv(tmp_path, text)
    with pytest.raises(ValueError, match=message) as err:
        files.load(f"csv:{path}")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


NPZ_CASES = [
    ({"x": np.zeros((3, 2))}, r"has no array 'y' .*np\.savez"),
    ({"x": np.zeros(3), "y": [0, 1, 0]}, r"x must be 2-D .*x\.reshape"),
    ({"x": np.zeros((3, 2)), "y": [0, 1]}, r"y must hold one label per row of x"),
    (
        {"x": np.zeros((3, 2)), "y": [0, 1, 0], "x_test": np.zeros((1, 2))},
        r"only one of x_test and y_test",
    ),
    (
        {"x": [[0, 1], [1, np.inf], [2, 2]], "y": [0, 1, 0]},
        r"row 1 of x holds inf",
    ),
    (
        {
            "x": np.zeros((2, 2)),
            "y": [0, 1],
            "x_test": np.zeros((2, 3)),
            "y_test": [0, 1],
        },
        r"x_test has shape \(2, 3\) but x has 2 features",
    ),  # fmt: skip
    (
        {
            "x": np.zeros((2, 2)),
            "y": [0, 1],
            "x_test": np.zeros((2, 2)),
            "y_test": [1, 2],
        },
        r"row 1 of y_test has label 2, but the training labels run 0\.\.1",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("arrays", "message"), NPZ_CASES)
def test_each_bad_npz_gets_its_message_naming_the_file_and_row(
    tmp_path, arrays, message
):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(ValueError, match=message) as err:
        files.load(f"npz:{path}")
    assert str(path) in str(err.value)


def test_a_missing_file_and_a_bad_kind_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.csv does not exist .*check the path"):
        files.load(f"csv:{tmp_path / 'nope.csv'}")
    with pytest.raises(ValueError, match=r"names no file — write npz:PATH"):
        files.load("csv:")
    assert not files.is_file("mnist") and files.is_file("npz:a.npz")


def _file_config(tmp_path, n_train=40, n_test=20):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = np.arange(60) % 3
    path = _npz(tmp_path, x=x, y=y, x_test=x[:30], y_test=y[:30])
    cfg = early_stopping.Config(
        dataset=f"npz:{path}", widths=(5, 8, 3), n_train=n_train, n_test=n_test,
        n_val=10, batch_size=10, epochs=4, n_snapshots=3, n_record=3, energy_rank=2,
    )  # fmt: skip
    return path, cfg


def test_a_config_pins_the_files_hash_so_a_changed_file_is_another_run(tmp_path):
    path, cfg = _file_config(tmp_path)
    digest = files.sha256_of(path)
    assert cfg.dataset == f"npz:{path}#sha256={digest}"
    key = config_hash(config_dict(cfg))
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["x"][0, 0] += 1.0  # one number changes
    np.savez(path, **arrays)
    changed = early_stopping.Config(
        **{**config_dict(cfg), "dataset": f"npz:{path}", "widths": (5, 8, 3),
           "seeds": (0,)}
    )  # fmt: skip
    assert config_hash(config_dict(changed)) != key
    with pytest.raises(ValueError, match=r"changed since this config was recorded"):
        early_stopping.Config(**{**config_dict(cfg), "widths": (5, 8, 3)})


def test_a_sweeps_key_changes_with_the_files_content(tmp_path):
    path = _csv(tmp_path, "1,0\n2,1\n")
    settings = {"dataset": f"csv:{path}"}

    def key():
        return sweep_key("study", settings, {}, seeds=1, quick=False, version="v")

    before = key()
    assert key() == before
    path.write_text("1,0\n3,1\n")
    assert key() != before


def test_early_stopping_trains_on_an_npz_file(tmp_path):
    _, cfg = _file_config(tmp_path)
    result = early_stopping.run(cfg)
    assert result["test_loss"].shape[-1] == len(result["record_epochs"])
    assert np.isfinite(result["test_loss"]).all()


def test_early_stopping_names_widths_that_do_not_fit_the_file(tmp_path):
    path, cfg = _file_config(tmp_path)
    with pytest.raises(ValueError, match=r"widths must start at 5 features and end"):
        early_stopping.Config(**{**config_dict(cfg), "widths": (784, 8, 10)})


def test_a_toml_files_dataset_path_is_taken_from_its_folder(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "s.toml").write_text(
        'dataset = "csv:data.csv"\n[sweep]\nx = ["npz:/abs/a.npz", "mnist"]\n'
    )
    settings, axes = load_toml(folder / "s.toml")
    assert settings["dataset"] == f"csv:{folder / 'data.csv'}"
    assert axes["x"] == ["npz:/abs/a.npz", "mnist"]


def test_reading_a_dataset_files_name_does_not_start_jax():
    code = (
        "import sys; import reglab.lab.overrides, reglab.lab.replay;"
        " print('jax' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "False", done.stderr


def test_a_file_name_whose_quotes_the_shell_stripped_is_still_a_string():
    from reglab.lab.overrides import parse_value

    assert parse_value("csv:data/x.csv") == "csv:data/x.csv"  # --set dataset="..."
    assert parse_value('"npz:a b.npz"') == "npz:a b.npz"
