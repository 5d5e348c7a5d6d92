"""Runs through the store: cached seeds load, new seeds train, records read back."""

import json
import sys

import numpy as np
import pytest

from reglab import cli
from reglab.experiments.base import Result
from reglab.lab.runner import merge

MLM = ["mlm_masking", "--set", "n_draws=5", "--no-progress", "--jobs", "1"]


def _result(seeds, seed_axis=("seeds", "acc", "w"), **arrays):
    return Result("x", {"seeds": list(seeds)}, {"seeds": np.array(seeds), **arrays},
                  seed_axis=seed_axis)  # fmt: skip


def test_merge_joins_per_seed_arrays_and_keeps_shared_ones():
    a = _result((0, 1), acc=np.array([[0.5, 0.6], [0.7, 0.8]]), grid=np.arange(2))
    b = _result((2,), acc=np.array([[0.9, 1.0]]), grid=np.arange(2))
    m = merge([((0, 1), a), ((2,), b)])
    assert m.arrays["seeds"].tolist() == [0, 1, 2]
    assert m.arrays["acc"].shape == (3, 2) and m.arrays["grid"].tolist() == [0, 1]
    assert m.config["seeds"] == [0, 1, 2] and m.seed_axis == ("seeds", "acc")


def test_merge_reads_the_declared_seed_axis_instead_of_shapes():
    same = np.array([[1.0, 2.0], [3.0, 4.0]])  # by shape: per seed or shared?
    groups = [((0, 1), (0, 1)), ((2, 3), (2, 3))]
    rows = merge([(g, _result(s, acc=same)) for g, s in groups])
    assert rows.arrays["acc"].shape == (4, 2)  # declared per seed: joined
    shared = merge([(g, _result(s, grid=same)) for g, s in groups])
    assert shared.arrays["grid"] is not None and shared.arrays["grid"].shape == (2, 2)
    differ = [((0,), _result((0,), grid=same)), ((1,), _result((1,), grid=same + 1))]
    assert merge(differ) is None  # shared arrays that differ cannot join
    ragged = [((0,), _result((0,), w=np.zeros((1, 3)))),
              ((1,), _result((1,), w=np.zeros((1, 4))))]  # fmt: skip
    assert merge(ragged) is None
    bare = [((s,), _result((s,), seed_axis=())) for s in (0, 1)]
    assert merge(bare) is None  # a Result that declares nothing is not guessed at


def test_a_declared_seed_axis_must_hold_one_row_per_seed():
    with pytest.raises(ValueError, match=r"'acc' is declared with a seed axis but"
                       r" has shape \(3,\) for 2 seeds"):  # fmt: skip
        _result((0, 1), acc=np.zeros(3))
    patterns = Result("x", {"seeds": [0]}, {"l2_acc": np.zeros(1), "grid": np.zeros(5)},
                      seed_axis=("*_acc",))  # fmt: skip
    assert patterns.seed_axis == ("l2_acc",)  # patterns kept as the names they match


def _main(capsys, *argv):
    capsys.readouterr()
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


def test_run_caches_shows_toml_and_remakes_from_it(tmp_path, capsys, monkeypatch):
    store, out = str(tmp_path / "store"), str(tmp_path / "out")
    where = ["--store", store, "--out", out]
    first = json.loads(_main(capsys, "run", *MLM, "--seeds", "2", "--json", *where))
    assert first[0]["trained"] and set(first[0]["runs"]) == {"0", "1"}
    again = json.loads(_main(capsys, "run", *MLM, "--seeds", "2", "--json", *where))
    assert not again[0]["trained"] and again[0]["runs"] == first[0]["runs"]
    assert again[0]["claims"] == first[0]["claims"]
    run_id = first[0]["runs"]["0"]
    toml = _main(capsys, "show", run_id[:6], "--toml", "--store", store)
    assert "n_draws = 5" in toml and "seeds = [0, 1]" in toml
    (tmp_path / "r.toml").write_text(toml)
    remade = ["run", "mlm_masking", "-c", str(tmp_path / "r.toml"), "--json"]
    remade = json.loads(_main(capsys, *remade, "--no-progress", "--jobs", "1", *where))
    assert not remade[0]["trained"] and remade[0]["runs"] == first[0]["runs"]
    listed = json.loads(_main(capsys, "runs", "--json", "--store", store))
    assert {r["id"] for r in listed} == set(first[0]["runs"].values())
    assert all(r["status"] == "finished" and r["claims"] for r in listed)
    shown = json.loads(_main(capsys, "show", run_id, "--json", "--store", store))
    assert shown["config"]["n_draws"] == 5 and shown["code_version"]
    assert {a["name"] for a in shown["artifacts"]} == {"result"}
    exported = json.loads(_main(capsys, "export", "--format", "json", "--store", store))
    assert len(exported) == 2 and exported[0]["claims"]
    csv = _main(capsys, "export", "--format", "csv", "--store", store)
    assert csv.startswith("run,experiment,seed,status") and run_id in csv
    ids = list(first[0]["runs"].values())
    table = json.loads(_main(capsys, "compare", *ids, "--json", "--store", store))
    assert table["seed"] == [0, 1] and table["claims"]
    assert "deleted 0" in _main(capsys, "gc", "--store", store)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as where it is not installed
    with pytest.raises(SystemExit, match="needs the mlflow package — pip install"):
        cli.main(["export", "--format", "mlflow", "--tracking-uri", "file:/tmp/x",
                  "--store", store])  # fmt: skip


def test_a_corrupt_stored_result_is_named_and_retrained(tmp_path, capsys):
    store, out = tmp_path / "store", str(tmp_path / "out")
    where = ["--store", str(store), "--out", out, "--json"]
    first = json.loads(_main(capsys, "run", *MLM, *where))
    (npz,) = tmp_path.rglob("result.*.npz")
    npz.write_bytes(npz.read_bytes()[:40])  # truncated
    capsys.readouterr()
    assert cli.main(["run", *MLM, *where]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert again[0]["trained"] and again[0]["claims"] == first[0]["claims"]
    assert str(npz) in captured.err.replace("\n", "")


def test_more_seeds_train_only_the_new_seed(tmp_path, capsys):
    tiny = [
        "sweep", "weight_decay", "--quick", "--grid", "epochs=2",
        "--set", "widths=[2,8,8,2]", "--set", "n_train=40", "--set", "n_test=40",
        "--set", "grid_resolution=3", "--set", "prox_strengths=[]",
        "--no-progress", "--jobs", "1", "--json",
        "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o"),
    ]  # fmt: skip
    one = json.loads(_main(capsys, *tiny, "--seeds", "1"))
    two = json.loads(_main(capsys, *tiny, "--seeds", "2"))
    assert one[0]["trained"] and two[0]["trained"]
    assert two[0]["runs"]["0"] == one[0]["runs"]["0"]  # seed 0 was loaded
    c1 = two[0]["claims"]["moderate_l2_ignores_flips"]
    assert len(c1["per_seed"]) == 2
    assert (
        c1["per_seed"][0]
        == one[0]["claims"]["moderate_l2_ignores_flips"]["per_seed"][0]
    )
    three = json.loads(_main(capsys, *tiny, "--seeds", "2"))
    assert not three[0]["trained"] and three[0]["claims"] == two[0]["claims"]
