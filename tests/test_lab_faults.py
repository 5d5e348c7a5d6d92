"""Faults: kill -9 mid-sweep resumes to the same numbers, workers die with their
parent, Ctrl-C stops promptly, two processes on one store train once."""

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SWEEP = ["sweep", "mlm_masking", "--grid", "band_sigmas=range(2.0,8.0,0.5)",
         "--seeds", "2", "--no-progress"]  # fmt: skip


def _reglab(*argv, **kw):
    env = {**os.environ, "REGLAB_CPU_DEVICES": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "reglab", *argv], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
    )  # fmt: skip


def _finished(store: Path) -> int:
    db = store / "runs.sqlite"
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
            q = "SELECT count(*) FROM runs WHERE status = 'finished'"
            return con.execute(q).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _numbers(store: Path) -> list:
    """Return each finished run's (config hash, seed, claims) from `reglab export`."""
    p = _reglab("export", "--format", "json", "--status", "finished",
                "--store", str(store / "runs.sqlite"))  # fmt: skip
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    rows = [(r["config_hash"], r["seed"], r["claims"]) for r in json.loads(out)]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _children(pid: int) -> set[int]:
    """Return every descendant of pid (Linux /proc)."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = Path(f"/proc/{p}/task").iterdir()
            kids = {int(k) for t in tasks for k in (t / "children").read_text().split()}
        except OSError:
            continue
        todo += list(kids - found)
        found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_mid_sweep_then_the_same_command_gives_the_same_numbers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    p = _reglab(*SWEEP, "--jobs", "1", "--store", str(a), "--out", str(a / "o"))
    deadline = time.monotonic() + 60
    while _finished(a) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    p.kill()
    p.wait()
    assert 2 <= _finished(a) < 24  # killed mid-sweep
    resumed = _reglab(*SWEEP, "--jobs", "1", "--store", str(a), "--out", str(a / "o"))
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "from the store" in err
    whole = _reglab(*SWEEP, "--jobs", "1", "--store", str(b), "--out", str(b / "o"))
    assert whole.wait(timeout=120) == 0
    assert _numbers(a) == _numbers(b)


def _statuses(store: Path) -> dict[str, int]:
    """Return how many runs of the store at store/runs.sqlite have each status."""
    db = store / "runs.sqlite"
    if not db.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
            q = "SELECT status, count(*) FROM runs GROUP BY status"
            return dict(con.execute(q).fetchall())
    except sqlite3.OperationalError:
        return {}


def _wait_for(what, done, seconds: float = 180.0) -> None:
    """Poll done() until it holds; fail naming what after a generous bound."""
    deadline = time.monotonic() + seconds  # a safety net, not the judgement
    while not done():
        assert time.monotonic() < deadline, f"no {what} after {seconds:.0f} s"
        time.sleep(0.1)


def test_workers_exit_when_their_parent_is_killed_and_ctrl_c_is_prompt(tmp_path):
    # Judged by events, not wall time (CI runs on loaded machines): Ctrl-C stops the
    # sweep with its work unfinished and says so, and no worker outlives its parent.
    n_points = 6
    for how in (signal.SIGKILL, signal.SIGINT):
        store = tmp_path / how.name
        store.mkdir()
        grid = f"n_draws=range(20000,{20000 + 1000 * n_points},1000)"
        p = _reglab("sweep", "mlm_masking", "--grid", grid, "--jobs", "2",
                    "--no-progress", "--store", str(store), "--out", str(store / "o"),
                    start_new_session=True)  # fmt: skip
        _wait_for("two workers", lambda p=p: len(_children(p.pid)) >= 2)
        _wait_for("runs training", lambda s=store: _statuses(s).get("running"))
        kids = _children(p.pid)
        t0 = time.monotonic()
        os.kill(p.pid, how)
        _, err = p.communicate(timeout=300)
        stopped = time.monotonic() - t0
        gone = lambda kids=kids: not any(_alive(k) for k in kids)  # noqa: E731
        _wait_for(f"the workers' exit after {how.name}", gone)
        if how == signal.SIGINT:
            assert p.returncode != 0, err
            assert "interrupted" in err and "Traceback" not in err, err
            statuses = _statuses(store)
            # stopped, not finished: the unfinished runs say so (in {stopped:.1f} s)
            assert statuses.get("interrupted", 0) >= 1, (statuses, stopped, err)
            assert statuses.get("finished", 0) < n_points, (statuses, stopped)
            assert "running" not in statuses, statuses


def test_two_processes_on_one_store_train_once(tmp_path):
    argv = ["run", "mlm_masking", "--set", "n_draws=800", "--jobs", "1",
            "--no-progress", "--json", "--store", str(tmp_path)]  # fmt: skip
    ps = [_reglab(*argv, "--out", str(tmp_path / f"o{i}")) for i in range(2)]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in ps]
    assert sorted(o[0]["trained"] for o in outs) == [False, True]
    assert outs[0][0]["runs"] == outs[1][0]["runs"]


MLM = ["mlm_masking", "--set", "n_draws=5", "--jobs", "1", "--no-progress"]


def _earlier(store: Path) -> str:
    """Train a cheap run into store; return its id."""
    p = _reglab("run", *MLM, "--json", "--store", str(store), "--out",
                str(store.parent / "earlier"))  # fmt: skip
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    return json.loads(out)[0]["runs"]["0"]


def _readable(store: Path, run_id: str) -> None:
    """Assert run_id is finished and its stored result still loads (sha256 checked)."""
    from reglab.store import Store

    with Store(store) as s:
        assert s.get(run_id).status == "finished"
        assert s.load_arrays(run_id, "result")


@pytest.mark.parametrize("kind", ["foreign", "bytes"])
@pytest.mark.parametrize("command", ["runs", "sweep", "run"])
def test_a_foreign_store_file_is_named_with_the_fix_and_left_unchanged(
    tmp_path, kind, command
):
    from reglab import cli

    path = tmp_path / "notes.sqlite"
    if kind == "foreign":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
    else:
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    before = path.read_bytes()
    out = ["--out", str(tmp_path / "o")]
    sweep = ["sweep", *MLM, "--grid", "n_draws=2,3", *out]
    argv = {"runs": ["runs"], "run": ["run", *MLM, *out], "sweep": sweep}[command]
    what = "an SQLite database but not" if kind == "foreign" else "not an SQLite"
    with pytest.raises(SystemExit, match=f"^reglab: {path} is {what}.*--store"):
        cli.main([*argv, "--store", str(path)])
    assert path.read_bytes() == before


def test_a_store_folder_that_cannot_be_made_is_named_with_the_fix(tmp_path):
    from reglab import cli

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the store's folder must go")
    store = blocker / "runs" / "runs.sqlite"
    with pytest.raises(
        SystemExit, match=f"^reglab: cannot open the run store {store}: .*make"
    ):
        cli.main(["runs", "--store", str(store)])
    assert blocker.read_text().startswith("a file")


def _no_bigger_than(limit: int):
    def limit_files() -> None:  # in the child: writes past limit fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def test_a_full_disk_while_saving_a_result_is_one_line_and_earlier_runs_stay(
    tmp_path,
):
    store = tmp_path / "store" / "runs.sqlite"
    earlier = _earlier(store)
    big = ["sweep", "weight_decay", "--quick", "--grid", "epochs=2", "--seeds", "1",
           "--set", "widths=[2,8,8,2]", "--set", "n_train=40", "--set", "n_test=40",
           "--set", "grid_resolution=250", "--set", "prox_strengths=[]",
           "--jobs", "1", "--no-progress", "--store", str(store),
           "--out", str(tmp_path / "o")]  # fmt: skip
    # a 1 MiB file limit: the store and compile cache fit, the ~7 MiB result does not
    p = _reglab(*big, preexec_fn=_no_bigger_than(1 << 20))
    _, err = p.communicate(timeout=300)
    assert p.returncode == 1 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"reglab: cannot write artifact {store.parent}/artifacts/")
    assert (
        "File too large — free disk space" in last and "earlier runs are intact" in last
    )
    _readable(store, earlier)
    from reglab.store import Store

    with Store(store) as s:
        (failed,) = s.list_runs("weight_decay")
        assert failed.status == "failed" and "cannot write artifact" in failed.error
