"""Resume: a run killed mid-training continues from its checkpoint and ends with the
numbers of a run never interrupted."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from reglab.store import Store

# 2 train calls (the L2/L1 sweep, then proximal L1) of 20 chunks; a checkpoint at
# every chunk's end (REGLAB_CHECKPOINT_SECONDS=0) so one exists early
RUN = ["run", "weight_decay", "--quick", "--set", "epochs=300", "--set",
       "grid_resolution=10", "--seeds", "1", "--jobs", "1",
       "--no-progress"]  # fmt: skip


def _reglab(store: Path, *argv, **kw):
    env = {**os.environ, "REGLAB_CPU_DEVICES": "1", "REGLAB_CHECKPOINT_SECONDS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "reglab", *argv, "--store", str(store / "runs.sqlite")],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
    )  # fmt: skip


def _checkpointed(store: Path) -> bool:
    """Return True once a running run has a stored checkpoint."""
    try:
        with sqlite3.connect(store / "runs.sqlite", timeout=5) as con:
            q = (
                "SELECT count(*) FROM artifacts JOIN runs ON runs.id = run_id"
                " WHERE name = 'checkpoint-last' AND status = 'running'"
            )
            return con.execute(q).fetchone()[0] > 0
    except sqlite3.OperationalError:  # not created yet
        return False


def _numbers(store: Path) -> tuple[list, dict]:
    """Return the finished runs' (config hash, seed, claims) and their result."""
    p = _reglab(store, "export", "--format", "json", "--status", "finished")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    rows = json.loads(out)
    assert len(rows) == 1
    with Store(store / "runs.sqlite") as s:
        arrays = s.load_arrays(rows[0]["id"], "result")
    return [(r["config_hash"], r["seed"], r["claims"]) for r in rows], arrays


def test_kill_9_mid_training_then_the_same_command_resumes_to_the_same_numbers(
    tmp_path,
):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cut = _reglab(a, *RUN, "--out", str(a / "o"), start_new_session=True)
    whole = _reglab(b, *RUN, "--out", str(b / "o"))  # uninterrupted, side by side
    deadline = time.monotonic() + 60
    while not _checkpointed(a) and time.monotonic() < deadline:
        assert cut.poll() is None, cut.communicate()[1]
        time.sleep(0.05)
    os.killpg(cut.pid, signal.SIGKILL)  # the whole process tree, no goodbye
    cut.wait()
    resumed = _reglab(a, *RUN, "--out", str(a / "o"))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "resumed from epoch" in out + err
    _, err = whole.communicate(timeout=120)
    assert whole.returncode == 0, err
    (claims_a, arrays_a), (claims_b, arrays_b) = _numbers(a), _numbers(b)
    assert claims_a == claims_b
    assert arrays_a.keys() == arrays_b.keys()
    for k in arrays_a:
        np.testing.assert_array_equal(arrays_a[k], arrays_b[k], err_msg=k)
    with Store(a / "runs.sqlite") as s:
        (run,) = s.list_runs()  # the interrupted run itself was resumed
        assert run.status == "finished" and "resumed_from_epoch" in run.info
