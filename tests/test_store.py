"""The run store: round trips, cache keys, refusals, faults and concurrent writers."""

import contextlib
import multiprocessing
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from reglab.store import (
    APPLICATION_ID,
    MIGRATIONS,
    Store,
    StoreError,
    config_hash,
    resolve_path,
)
from reglab.store.artifacts import read_npz

CONFIG = {"l2_strength": 0.01, "epochs": 100, "data_seed": 0, "seeds": [0, 1]}
CLAIM = {
    "name": "l2_shrinks",
    "statement": "L2 shrinks the weights",
    "measured": 0.5,
    "threshold": 1.0,
    "comparison": "<",
    "passed": True,
    "detail": "norms at the last epoch",
}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "runs.sqlite") as s:
        yield s


def started(store, seed=0, config=CONFIG, code_version="v1", experiment="wd"):
    return store.start_run(experiment, config, seed, code_version=code_version)


def test_resolve_path_prefers_argument_then_env_then_default(tmp_path, monkeypatch):
    monkeypatch.delenv("REGLAB_STORE", raising=False)
    assert resolve_path() == resolve_path(None)
    assert str(resolve_path()) == os.path.join("reglab-runs", "runs.sqlite")
    monkeypatch.setenv("REGLAB_STORE", str(tmp_path / "env.sqlite"))
    assert resolve_path() == tmp_path / "env.sqlite"
    assert resolve_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
    assert resolve_path(tmp_path) == tmp_path / "runs.sqlite"  # a folder


def test_config_hash_ignores_seeds_and_key_order_but_not_data_seed():
    h = config_hash(CONFIG)
    assert h == config_hash({**CONFIG, "seeds": [7]})
    assert h == config_hash(dict(reversed(list(CONFIG.items()))))
    assert h != config_hash({**CONFIG, "data_seed": 1})
    assert h != config_hash({**CONFIG, "l2_strength": 0.02})
    assert len(h) == 64 and int(h, 16) >= 0


def test_config_hash_rejects_values_json_cannot_hold():
    with pytest.raises(TypeError, match="must be JSON types.*got object"):
        config_hash({"x": object()})


def test_new_store_records_schema_version_and_application_id(tmp_path):
    Store(tmp_path / "runs.sqlite").close()
    Store(tmp_path / "runs.sqlite").close()  # reopening applies nothing twice
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    names = [r[0] for r in db.execute("SELECT name FROM migrations")]
    assert (
        names == [fn.__name__ for fn in MIGRATIONS] == ["m001_initial", "m002_sweeps"]
    )


def test_start_run_records_key_and_provenance(store):
    run = store.start_run("wd", CONFIG, 3, code_version="abc", device="cpu:0")
    assert (run.experiment, run.seed, run.code_version) == ("wd", 3, "abc")
    assert (run.status, run.ended_utc, run.device) == ("running", None, "cpu:0")
    assert run.config == CONFIG and run.config_hash == config_hash(CONFIG)
    assert run.pid == os.getpid() and run.host and run.python_version
    assert run.reglab_version == "0.1.0" and run.jax_version
    assert len(run.id) == 12 and int(run.id, 16) >= 0


def test_find_returns_the_newest_finished_run_with_the_same_key(store):
    first, second = started(store), started(store)
    assert store.find("wd", CONFIG, 0, "v1") is None  # both still running
    assert store.find("wd", CONFIG, 0, "v1", status="running").id == second.id
    store.end_run(first.id, "finished")
    store.end_run(second.id, "finished", info={"timings": {"train": 1.5}})
    found = store.find("wd", {**CONFIG, "seeds": [0]}, 0, "v1")
    assert found.id == second.id and found.info == {"timings": {"train": 1.5}}
    assert store.find("wd", CONFIG, 1, "v1") is None
    assert store.find("wd", CONFIG, 0, "v2") is None
    assert store.find("dropout", CONFIG, 0, "v1") is None
    assert store.find("wd", {**CONFIG, "epochs": 200}, 0, "v1") is None


def test_get_accepts_a_unique_prefix_and_names_unknown_or_ambiguous_ones(store):
    runs = [started(store, seed=i) for i in range(17)]  # two share a first digit
    assert store.get(runs[0].id[:12]) == runs[0]
    assert store.get(runs[0].id.upper()) == runs[0]
    firsts = [r.id[0] for r in runs]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(StoreError, match=f"run id '{shared}' is ambiguous.*more of"):
        store.get(shared)
    with pytest.raises(StoreError, match="no run 'zz' in .*runs.sqlite.*reglab runs"):
        store.get("zz")


def test_list_runs_is_newest_first_and_filters(store):
    a = started(store, experiment="wd")
    b = started(store, experiment="dropout")
    c = started(store, experiment="wd")
    store.end_run(a.id, "failed", error="ValueError: diverged")
    assert [r.id for r in store.list_runs()] == [c.id, b.id, a.id]
    assert [r.id for r in store.list_runs(experiment="wd")] == [c.id, a.id]
    assert [r.id for r in store.list_runs("wd", "failed")] == [a.id]
    assert store.get(a.id).error == "ValueError: diverged"
    with pytest.raises(ValueError, match="status must be one of.*got 'done'"):
        store.list_runs(status="done")


def test_end_run_refuses_running_and_unknown_runs(store):
    with pytest.raises(ValueError, match="status must be one of.*got 'running'"):
        store.end_run(started(store).id, "running")
    with pytest.raises(StoreError, match="no run 'abc' in"):
        store.end_run("abc", "finished")


def test_metric_history_round_trips_with_nan_and_steps(store):
    run = started(store)
    store.log_metrics(run.id, "loss", np.array([0.5, np.nan, np.inf], np.float32))
    store.log_metrics(run.id, "acc", [0.25, 0.75], steps=[10, 20])
    history = store.metrics(run.id)
    assert list(history) == ["acc", "loss"]
    np.testing.assert_array_equal(history["acc"].steps, [10, 20])
    np.testing.assert_array_equal(history["acc"].values, [0.25, 0.75])
    np.testing.assert_array_equal(history["loss"].values, [0.5, np.nan, np.inf])
    with pytest.raises(ValueError, match=r"steps must be integers, one per value"):
        store.log_metrics(run.id, "acc", [1.0, 2.0], steps=[0.5, 1.5])
    with pytest.raises(StoreError, match="no run 'ffff'"):
        store.log_metrics("ffff", "acc", [1.0])


def test_claims_round_trip_in_recorded_order(store):
    run = started(store)
    other = {**CLAIM, "name": "a_first", "measured": float("nan"), "passed": False}
    store.record_claims(run.id, [CLAIM, other])
    got = store.claims(run.id)
    assert [c["name"] for c in got] == ["l2_shrinks", "a_first"]
    assert got[0] == CLAIM
    assert np.isnan(got[1]["measured"]) and got[1]["passed"] is False


def test_arrays_round_trip_bit_for_bit(store):
    run = started(store)
    rng = np.random.default_rng(0)
    arrays = {
        "w": rng.normal(size=(3, 4, 5)).astype(np.float32),
        "odd": np.array([np.nan, -0.0, np.inf, 1e-45], np.float32),
        "steps": np.arange(7, dtype=np.int64),
        "mask": rng.random(9) > 0.5,
        "labels": np.array(["l1", "l2", "λ₂"]),
    }
    artifact = store.save_arrays(run.id, "result", arrays)
    assert artifact.bytes == (store.root / artifact.path).stat().st_size
    loaded = store.load_arrays(run.id, "result")
    assert list(loaded) == list(arrays)
    for key, a in arrays.items():
        assert loaded[key].dtype == a.dtype and loaded[key].shape == a.shape
        assert loaded[key].tobytes() == a.tobytes()
    assert store.artifacts(run.id) == [artifact]


def test_object_arrays_are_refused_rather_than_pickled(store):
    with pytest.raises(TypeError, match="'bad' has dtype object.*pickle"):
        store.save_arrays(started(store).id, "result", {"bad": np.array([{}, 1])})
    with pytest.raises(ValueError, match="artifact name must be letters"):
        store.save_arrays(started(store).id, "../escape", {"x": np.zeros(1)})


def test_corrupt_truncated_or_missing_artifact_raises_naming_the_path(store):
    run = started(store)
    artifact = store.save_arrays(run.id, "result", {"x": np.arange(1000.0)})
    path = store.root / artifact.path
    data = path.read_bytes()
    path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(StoreError, match=f"{path}.*corrupt.*sha256.*retrain"):
        store.load_arrays(run.id, "result")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match=f"{path}.*corrupt"):
        store.load_arrays(run.id, "result")
    path.unlink()
    with pytest.raises(StoreError, match=f"{path} cannot be read.*retrain"):
        store.load_arrays(run.id, "result")
    with pytest.raises(StoreError, match="has no artifact 'figures'"):
        store.load_arrays(run.id, "figures")


def test_read_npz_never_unpickles_and_names_a_truncated_file(tmp_path):
    path = tmp_path / "result.npz"
    np.savez(path, bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(StoreError, match=f"{path} is not a valid .npz.*pickle"):
        read_npz(path)
    np.savez_compressed(path, x=np.arange(100))
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(StoreError, match=f"{path} is not a valid .npz"):
        read_npz(path)


def test_checkpoint_is_replaced_whole_and_the_old_file_removed(store):
    run = started(store)
    assert store.load_checkpoint(run.id, "last") is None
    store.save_checkpoint(run.id, "last", {"w": np.ones(4), "epoch": np.array(1)})
    store.save_checkpoint(run.id, "last", {"w": np.zeros(4), "epoch": np.array(2)})
    store.save_checkpoint(run.id, "best", {"w": np.ones(4), "epoch": np.array(1)})
    last = store.load_checkpoint(run.id, "last")
    assert last["epoch"] == 2 and not last["w"].any()
    assert store.load_checkpoint(run.id, "best")["epoch"] == 1
    files = sorted(p.name for p in (store.artifacts_dir / run.id).iterdir())
    assert [f.split(".")[0] for f in files] == ["checkpoint-best", "checkpoint-last"]
    with pytest.raises(ValueError, match="which must be one of.*got 'first'"):
        store.save_checkpoint(run.id, "first", {})


def test_gc_deletes_only_unreferenced_files_and_counts_their_bytes(store):
    run = started(store)
    store.save_arrays(run.id, "result", {"x": np.arange(10)})
    orphan = store.artifacts_dir / "gone" / "result.0.npz"
    orphan.parent.mkdir()
    orphan.write_bytes(b"x" * 1234)
    assert store.gc() == (0, 0)  # younger than the grace period
    assert store.gc(grace_s=0) == (1, 1234)
    assert not orphan.parent.exists()
    assert store.load_arrays(run.id, "result")["x"].sum() == 45


def test_delete_removes_the_run_its_rows_and_files(store):
    keep, gone = started(store), started(store)
    for run in (keep, gone):
        store.log_metrics(run.id, "loss", [1.0, 2.0])
        store.record_claims(run.id, [CLAIM])
        store.save_arrays(run.id, "result", {"x": np.arange(3)})
    store.delete(gone.id)
    assert [r.id for r in store.list_runs()] == [keep.id]
    assert store.metrics(gone.id) == {} and store.claims(gone.id) == []
    assert (
        store.artifacts(gone.id) == [] and not (store.artifacts_dir / gone.id).exists()
    )
    assert len(store.metrics(keep.id)["loss"].values) == 2
    with pytest.raises(StoreError, match=f"no run '{gone.id}'"):
        store.delete(gone.id)


def test_store_from_a_newer_reglab_is_refused_and_left_byte_identical(tmp_path):
    path = tmp_path / "runs.sqlite"
    with Store(path) as store:
        started(store)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    before = path.read_bytes()
    files = sorted(p.name for p in tmp_path.iterdir())  # the file, its open lock
    with pytest.raises(StoreError, match=f"{path} was written by a newer reglab.*upg"):
        Store(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no -wal, no -shm


def test_foreign_databases_and_other_files_are_refused_unchanged(tmp_path):
    foreign = tmp_path / "notes.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    other_app = tmp_path / "other.sqlite"
    db = sqlite3.connect(other_app)
    db.execute("PRAGMA application_id = 7")
    db.commit()
    db.close()
    text = tmp_path / "runs.txt"
    text.write_text("epoch,loss\n1,0.5\n")
    for path, why in [
        (foreign, r"not a reglab run store \(application_id 0x0, 1 schema"),
        (other_app, r"not a reglab run store \(application_id 0x7"),
        (text, "not an SQLite database .* choose another path with --store"),
    ]:
        before = path.read_bytes()
        with pytest.raises(StoreError, match=f"{path}.*{why}"):
            Store(path)
        assert path.read_bytes() == before


def test_damaged_database_is_named(tmp_path):
    path = tmp_path / "runs.sqlite"
    with Store(path) as store:
        started(store)
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # header intact, pages garbage
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=f"run store {path}.*move it aside"):
        Store(path).list_runs()


def test_wal_by_default_and_the_rollback_journal_when_forced(tmp_path):
    with Store(tmp_path / "a.sqlite") as store:
        assert store.journal_mode == "wal"
    with Store(tmp_path / "b.sqlite", journal="delete") as store:
        assert store.journal_mode == "delete"
        started(store)
        assert store.list_runs()[0].status == "running"
    with pytest.raises(ValueError, match="journal must be 'wal' or 'delete'"):
        Store(tmp_path / "c.sqlite", journal="memory")


def test_a_held_lock_times_out_with_a_clear_message(store):
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with (
        Store(store.path, busy_timeout_s=0.1) as impatient,
        pytest.raises(StoreError, match=f"{store.path}.*locked.*over 0.1 s; retry"),
    ):
        started(impatient)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert started(store).status == "running"


def _write_runs(path, journal, n_runs, writer, barrier):
    """Insert n_runs finished runs with 10 metric values and one claim each."""
    barrier.wait()  # all open the fresh store at once: migrations race too
    with Store(path, journal=journal) as store:
        for i in range(n_runs):
            run = store.start_run("wd", {"writer": writer}, i, code_version="v1")
            store.log_metrics(run.id, "loss", np.full(10, writer + i / 100))
            store.record_claims(run.id, [CLAIM])
            store.end_run(run.id, "finished")


# The rollback journal syncs and backs off more per commit: fewer runs keep it short.
@pytest.mark.parametrize(("journal", "n_runs"), [("wal", 50), ("delete", 20)])
def test_four_writer_processes_at_once_lose_nothing(tmp_path, journal, n_runs):
    path = tmp_path / "runs.sqlite"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_write_runs, args=(path, journal, n_runs, w, barrier))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Store(path, journal=journal) as store:
        runs = store.list_runs(status="finished")
        assert len({r.id for r in runs}) == len(runs) == 4 * n_runs
        assert sorted((r.config["writer"], r.seed) for r in runs) == [
            (w, i) for w in range(4) for i in range(n_runs)
        ]
        # 10 values of w + i/100 per run: 10 * (n_runs * (0+1+2+3) + 4 * sum(i)/100)
        total = 10 * (6 * n_runs + 4 * sum(range(n_runs)) / 100)
        count = store._db.execute("SELECT count(*), sum(value) FROM metrics")
        assert count.fetchone()[:] == (40 * n_runs, pytest.approx(total))
        claims = store._db.execute("SELECT count(*) FROM claims").fetchone()[0]
        assert claims == 4 * n_runs


def _start_and_exit(path):
    with Store(path) as store:
        started(store)


def test_a_run_whose_process_died_is_orphaned_and_can_restart(store):
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_start_and_exit, args=(store.path,))
    proc.start()
    proc.join(timeout=60)
    (dead,) = store.list_runs()
    mine = started(store)
    assert dead.pid == proc.pid and dead.orphaned() and not mine.orphaned()
    store.end_run(mine.id, "interrupted")
    assert not store.get(mine.id).orphaned()  # only running runs can be orphans
    again = store.restart_run(dead.id)
    assert again.pid == os.getpid() and again.status == "running"
    assert not again.orphaned()


def _earlier_run(store):
    run = started(store)
    store.log_metrics(run.id, "loss", [3.0, 2.0, 1.0])
    store.save_arrays(run.id, "result", {"w": np.arange(12.0)})
    store.end_run(run.id, "finished")
    return run


def _assert_intact(path, run):
    with Store(path) as store:
        assert store.find("wd", CONFIG, 0, "v1").id == run.id
        assert store.load_arrays(run.id, "result")["w"].tobytes() == (
            np.arange(12.0).tobytes()
        )
        np.testing.assert_array_equal(store.metrics(run.id)["loss"].values, [3, 2, 1])


def test_an_unwritable_artifact_folder_is_named_and_earlier_runs_stay(store):
    earlier = _earlier_run(store)
    run = started(store, seed=1)
    (store.artifacts_dir / run.id).write_text("a file where a folder must go")
    with pytest.raises(
        StoreError,
        match=f"cannot write artifact {store.artifacts_dir}"
        f"/{run.id}/result.*make .* writable",
    ):
        store.save_arrays(run.id, "result", {"w": np.ones(3)})
    assert store.artifacts(run.id) == []
    _assert_intact(store.path, earlier)


def test_a_full_disk_while_saving_is_named_and_earlier_runs_stay(store):
    earlier = _earlier_run(store)
    run = started(store, seed=1)
    noise = np.random.default_rng(0).integers(0, 255, 4 << 20, dtype=np.uint8)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))  # files stop at 1 MiB
    try:
        with pytest.raises(StoreError, match="cannot write artifact .*free disk space"):
            store.save_arrays(run.id, "result", {"noise": noise})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert store.artifacts(run.id) == []
    assert list((store.artifacts_dir / run.id).iterdir()) == []  # no temporary left
    _assert_intact(store.path, earlier)


def _header(path) -> bytes:
    """Return the first 100 bytes of the file at path (call with no store open)."""
    with open(path, "rb") as fh:
        return fh.read(100)


def test_a_second_store_on_a_file_keeps_the_first_ones_locks(tmp_path):
    # Closing a descriptor drops every POSIX lock of the process on the file. When
    # the header was read by open() and close(), another process that opened and
    # closed the store next took itself for the last user and deleted the -wal and
    # -shm under the first store: its next commits went nowhere or broke the file.
    path = tmp_path / "runs.sqlite"
    first = Store(path)
    run = started(first)
    Store(path).close()
    code = "import sys; from reglab.store import Store; Store(sys.argv[1]).close()"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert (tmp_path / "runs.sqlite-wal").exists()
    assert (tmp_path / "runs.sqlite-shm").exists()
    first.log_metrics(run.id, "loss", np.arange(2000.0))
    first.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with Store(path) as store:
        assert store.metrics(run.id)["loss"].values.size == 2000


def _saving(store, *, threads: bool):
    """In threads, hold the Lab's lock files as the playground's save does."""
    if not threads:  # the processes stay light: no JAX to import
        return contextlib.nullcontext()
    from reglab.experiments import mlm_masking
    from reglab.lab.runner import Lab

    return Lab(store).lock([(mlm_masking.NAME, mlm_masking.Config())])


def _churn(path, writer, rounds, counts, go=None):
    """Open a store, record a run, close it; rounds times (or until go is cleared:
    threads, which also take the Lab's lock files as the playground's save does).

    Puts (writer, runs recorded) on counts, or (writer, the error) if one failed.
    """
    if go is not None:
        go.wait()
    n = 0
    try:
        while n < rounds or (go is not None and go.is_set()):
            with Store(path) as store, _saving(store, threads=go is not None):
                run = store.start_run("stress", {"w": writer}, n, code_version="v1")
                store.log_metrics(run.id, f"loss_{writer}", np.arange(40.0) + n)
                store.end_run(run.id, "finished")
            n += 1
            time.sleep(0.002)  # a gap: a process that closes may be the last one
    except Exception as e:  # noqa: BLE001 - the test names it
        counts.put((writer, f"{type(e).__name__}: {e}"))
        return
    counts.put((writer, n))


def _check_store(path, written, held_run, n_held):
    """Assert path's header and pages are sound and every recorded run is there."""
    head = _header(path)
    assert head[:16] == b"SQLite format 3\x00", f"{path} starts {head[:8]!r}"
    assert int.from_bytes(head[68:72], "big") == APPLICATION_ID
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
    with Store(path) as store:
        runs = store.list_runs("stress", status="finished")
        found = sorted((r.config["w"], r.seed) for r in runs)
        assert found == sorted((w, s) for w, n in written.items() for s in range(n))
        values = store.metrics(held_run.id)["held"].values
        assert values.size == 20 and values[0] == n_held - 1


def test_threads_and_processes_reopening_stores_beside_a_held_one_corrupt_nothing(
    tmp_path,
):
    # The pattern of the test suite's sweeps: this process holds a store open (a
    # Lab's, left to the garbage collector) and opens and closes others on the same
    # file from its threads, while another process opens and closes it too.
    # Closing any descriptor on the file drops this process's POSIX locks on it;
    # the other process's close then deleted the live -wal and -shm, and a later
    # checkpoint wrote a metrics page over the header ("not an SQLite database").
    paths = [tmp_path / f"s{i}" / "runs.sqlite" for i in range(2)]
    ctx = multiprocessing.get_context("spawn")
    counts, go = ctx.Queue(), threading.Event()
    procs = [
        ctx.Process(target=_churn, args=(path, f"p{i}", 20, counts))
        for i, path in enumerate(paths)
    ]
    threads = [
        threading.Thread(target=_churn, args=(path, f"t{i}{j}", 0, counts, go))
        for i, path in enumerate(paths)
        for j in range(2)
    ]
    held = [Store(path) for path in paths]
    mine = [started(store, experiment="held") for store in held]
    for worker in procs + threads:
        worker.start()
    go.set()
    n_held = 0
    while any(p.is_alive() for p in procs) or n_held < 30:
        for store, run in zip(held, mine, strict=True):  # the held stores write too
            store.log_metrics(run.id, "held", np.arange(20.0) + n_held)
        n_held += 1
        time.sleep(0.005)
    go.clear()
    for worker in threads + procs:
        worker.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    written = dict(counts.get(timeout=10) for _ in procs + threads)
    assert all(isinstance(n, int) for n in written.values()), written
    for store in held:
        store.close()
    for i, path in enumerate(paths):
        mine_here = {w: n for w, n in written.items() if w[1] == str(i)}
        _check_store(path, mine_here, mine[i], n_held)


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_migration_backs_up_the_store_first(tmp_path, journal):
    path = tmp_path / "runs.sqlite"
    with Store(path, journal=journal) as store:
        run = started(store)
    with contextlib.closing(sqlite3.connect(path)) as db:  # as reglab wrote before m002
        db.execute("DROP TABLE sweeps")
        db.execute("DELETE FROM migrations WHERE name = 'm002_sweeps'")
        db.execute("PRAGMA user_version = 1")
        db.commit()
    assert not list(tmp_path.glob("*.bak"))  # a new store is not backed up
    with Store(path, journal=journal) as store:
        assert store.get(run.id).status == "running"
        store.record_sweep("key", "wd", [])  # the migrated table
    (backup,) = tmp_path.glob("runs.sqlite.v1-*.bak")
    with contextlib.closing(sqlite3.connect(backup)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("SELECT id FROM runs").fetchall() == [(run.id,)]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        assert "runs" in tables and "sweeps" not in tables
    Store(path, journal=journal).close()  # up to date now: no second backup
    assert len(list(tmp_path.glob("*.bak"))) == 1


def _filled(path, n_runs=3, *, leave_open=False):
    """Record n_runs finished runs (metrics, claims, arrays) and a sweep in path."""
    store = Store(path)
    for i in range(n_runs):
        run = started(store, seed=i)
        store.log_metrics(run.id, "loss_curve/0", np.linspace(1.0, 0.0, 300) + i)
        store.record_claims(run.id, [CLAIM])
        store.save_arrays(run.id, "result", {"w": np.arange(5.0) * i})
        store.end_run(run.id, "finished", info={"i": i})
    store.record_sweep("key", "wd", [{"point": {"noise": 0.1}}])
    if leave_open:
        os._exit(0)  # a killed process: its last commits stay in the -wal
    store.close()


def _contents(path) -> list:
    """Return every run of the store with its metrics, claims and arrays."""
    with Store(path) as store:
        return [
            (
                run,
                {k: v.values.tolist() for k, v in store.metrics(run.id).items()},
                store.claims(run.id),
                store.load_arrays(run.id, "result")["w"].tolist(),
            )
            for run in store.list_runs()
        ] + [store.find_sweep("key")]


def test_a_damaged_header_is_named_and_the_doctor_rebuilds_it(tmp_path, capsys):
    from reglab import cli

    path = tmp_path / "runs.sqlite"
    _filled(path)
    expected = _contents(path)
    data = bytearray(path.read_bytes())
    data[:100] = bytes(100)  # the header gone, the schema after it intact
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"damaged run store.*`reglab doctor --st"):
        Store(path)
    assert cli.main(["doctor", "--store", str(path)]) == 0
    said = capsys.readouterr().out
    assert "header rebuilt: " in said and "3 runs, 900 metrics, 3 claims" in said
    assert path.read_bytes() == bytes(data)  # the damaged file is left as it is
    assert _contents(tmp_path / "runs.recovered.sqlite") == expected
    assert cli.main(["doctor", "--store", str(tmp_path / "runs.recovered.sqlite")]) == 0
    assert "is sound" in capsys.readouterr().out


@pytest.mark.parametrize("killed", [False, True], ids=["closed", "killed"])
def test_a_first_page_overwritten_by_a_metrics_page_is_recovered(
    tmp_path, capsys, killed
):
    # The damage: page 1 became a leaf index page (a metrics page); killed:
    # the last commits are still in the -wal of a process that was killed.
    from reglab import cli

    folder = tmp_path / "store"
    path = folder / "runs.sqlite"
    _filled(path, 2 if killed else 5)
    if killed:
        child = multiprocessing.get_context("spawn").Process(
            target=_filled, args=(path, 3), kwargs={"leave_open": True}
        )
        child.start()
        child.join(timeout=60)
    wal = folder / "runs.sqlite-wal"
    assert wal.exists() == killed
    shutil.copytree(folder, tmp_path / "intact")  # (nothing has it open)
    expected = _contents(tmp_path / "intact" / "runs.sqlite")
    data = bytearray(path.read_bytes())
    leaf = next(i for i in range(1, len(data) // 4096) if data[i * 4096] == 0x0A)
    data[:4096] = data[leaf * 4096 : (leaf + 1) * 4096]
    path.write_bytes(bytes(data))
    with pytest.raises(SystemExit, match=r"damaged run store: it starts b'\\n"):
        cli.main(["runs", "--store", str(path)])
    into = folder / "again.sqlite"
    assert cli.main(["doctor", "--store", str(path), "--into", str(into)]) == 0
    said = capsys.readouterr().out
    assert "is damaged: it starts b'\\n" in said
    # the -wal held page 1 anew (the killed process grew the file): its header only
    assert ("header rebuilt: " if killed else "runs recovered: ") in said
    assert path.read_bytes() == bytes(data) and wal.exists() == killed
    assert _contents(into) == expected and len(expected) == 5 + 1
    with pytest.raises(SystemExit, match=f"{into} exists"):
        cli.main(["doctor", "--store", str(path), "--into", str(into)])


def test_every_write_checks_the_header_first_and_names_the_doctor(tmp_path):
    path = tmp_path / "runs.sqlite"
    _filled(path)
    with Store(path) as store:
        run = started(store, seed=7)
        code = (  # another process writes over the header while the store is open
            "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY);"
            " os.pwrite(fd, b'\\n' + bytes(99), 0)"
        )
        subprocess.run([sys.executable, "-c", code, str(path)], check=True)
        for write in (
            lambda: store.end_run(run.id, "finished"),
            lambda: store.log_metrics(run.id, "loss", [1.0]),
            lambda: started(store, seed=8),
        ):
            with pytest.raises(StoreError, match=f"{path} is a damaged run store.*doc"):
                write()
            assert not store._db.in_transaction  # rolled back: nothing written
        assert store.get(run.id).status == "running"
