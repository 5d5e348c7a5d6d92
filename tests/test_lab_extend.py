"""Extend: a stored run asked for more epochs goes on from its end, not from scratch,
and ends with the numbers of the longer run trained afresh."""

from pathlib import Path

import numpy as np

from reglab import cli
from reglab.store import Store

# weight decay, two train calls (the L2/L1 sweep, proximal L1), records every 20
RUN = ["run", "weight_decay", "--set", "widths=[2,8,8,2]", "--set", "n_train=40",
       "--set", "n_test=40", "--set", "grid_resolution=3", "--set",
       "l2_strengths=[0,0.01]", "--set", "l1_strengths=[0,0.001]", "--set",
       "prox_strengths=[0.001]", "--set", "l2_moderate=0.01", "--set", "l2_mid=0.01",
       "--set", "l1_mid=0.001", "--set", "record_every=20", "--seeds", "2",
       "--jobs", "1", "--no-progress"]  # fmt: skip


def _run(store: Path, epochs: int, out: str, capsys) -> str:
    where = ["--store", str(store / "runs.sqlite"), "--out", str(store / out)]
    assert cli.main([*RUN, "--set", f"epochs={epochs}", *where]) == 0
    said = capsys.readouterr()
    return said.err + said.out


def _result(store: Path, epochs: int) -> tuple[dict[str, np.ndarray], list[str]]:
    with Store(store / "runs.sqlite") as s:
        (run,) = [
            r
            for r in s.list_runs("weight_decay", status="finished")
            if r.config["epochs"] == epochs and r.seed == 0
        ]
        holder = run.info.get("group_run", run.id)
        return s.load_arrays(holder, "result"), run.info["notes"]


def test_more_epochs_of_a_stored_run_go_on_from_its_end(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    _run(a, 40, "short", capsys)
    assert "going on from the 40-epoch run" in _run(a, 100, "long", capsys)
    _run(b, 100, "long", capsys)  # afresh, in another store
    (extended, notes), (fresh, _) = _result(a, 100), _result(b, 100)
    went_on = "went on from the end of the same run for 40 epochs, not from 0"
    assert notes.count(went_on) == 2  # both train calls: the sweep, proximal L1
    assert set(extended) == set(fresh)
    for k in fresh:
        if fresh[k].dtype.kind in "fiub":
            np.testing.assert_array_equal(extended[k], fresh[k], err_msg=k)
    assert "going on" not in _run(a, 100, "again", capsys)  # now from the store
