"""The command line's faults (issue 24): each costly mistake is refused in one line
before work starts, nothing crashes, and no command clobbers another's report."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reglab import cli


def _reglab(*argv, env=None, **kw) -> subprocess.CompletedProcess:
    """Run the real command (python -m reglab) and return what it did."""
    env = {**os.environ, "REGLAB_CPU_DEVICES": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "reglab", *argv], env=env, text=True,
        capture_output=True, timeout=kw.pop("timeout", 120), **kw,
    )  # fmt: skip


def _one_line_error(p: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert p failed with one 'reglab:' line holding each needle; return it."""
    assert p.returncode != 0, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("reglab: "), p.stderr
    for needle in needles:
        assert needle in last, last
    return last


def _fill_store(path: Path, n: int) -> None:
    """Record n finished runs of a made-up config (real SQLite, no training)."""
    from reglab.store import Store

    with Store(path) as store:
        for seed in range(n):
            run = store.start_run("mlm_masking", {"n_draws": 5}, seed, code_version="t")
            store.end_run(run.id, "finished")


# 10. --store DIR/ names a folder, as a trailing slash says


def test_store_with_a_trailing_slash_is_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["runs", "--store", "newdir/"]) == 0
    assert (tmp_path / "newdir").is_dir()
    assert (tmp_path / "newdir" / "runs.sqlite").is_file()
    monkeypatch.setenv("REGLAB_STORE", "fromenv/")
    assert cli.main(["runs"]) == 0
    assert (tmp_path / "fromenv" / "runs.sqlite").is_file()


# 11. every command takes --json; a closed pipe ends the command quietly


def test_list_json_gives_every_experiment_and_setting(capsys):
    from reglab import experiments
    from reglab.settings import SETTINGS

    assert cli.main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert list(listed["experiments"]) == list(experiments.NAMES)
    assert listed["experiments"]["weight_decay"]["defaults"]["epochs"] == 10000
    assert [s["name"] for s in listed["settings"]] == [s.name for s in SETTINGS]


def test_runs_json_into_a_closed_pipe_exits_0_quietly(tmp_path):
    store = tmp_path / "runs.sqlite"
    _fill_store(store, 400)  # ~200 kB of JSON: more than a pipe holds
    env = {**os.environ, "REGLAB_CPU_DEVICES": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "reglab", "runs", "--json", "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert p.stdout.read(100).startswith(b"[")  # `| head -c 100`
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err, err


# 4. seeds are checked with the other settings, before JAX trains or a row is stored


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("[0,0]", r"seeds must be distinct, got \[0, 0\] \(seed 0 twice"),
        ("[-1]", r"seeds must be integers in \[0, 2\*\*32\), got -1 in \[-1\]"),
        ("[]", r"seeds must (list|hold) at least one seed"),
    ],
)
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_bad_seeds_are_refused_before_any_run_is_recorded(
    tmp_path, seeds, message, command
):
    store = tmp_path / "store"
    argv = [command, "mlm_masking", "--set", f"seeds={seeds}", "--store", str(store)]
    argv += ["--out", str(tmp_path / "o"), "--no-progress"]
    if command == "sweep":
        argv += ["--grid", "n_draws=4,5"]
    with pytest.raises(SystemExit, match=message):
        cli.main(argv)
    assert not store.exists()  # no row, not even the database


# 3. a grid point listed twice is refused, not trained and stored twice


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (["n_draws=5,5"], r"--grid n_draws lists 5 twice \(\[5, 5\]\)"),
        (["band_sigmas=0.001,1,1e-3"], r"--grid band_sigmas lists 0.001 twice"),
    ],
)
def test_a_grid_point_listed_twice_is_refused_before_training(tmp_path, grid, message):
    store = tmp_path / "store"
    argv = ["sweep", "mlm_masking", "--store", str(store), "--no-progress"]
    argv += ["--out", str(tmp_path / "o"), *(a for g in grid for a in ("--grid", g))]
    with pytest.raises(SystemExit, match=message):
        cli.main(argv)
    assert not store.exists()


# 7. a platform JAX cannot start is named before any run is recorded


@pytest.mark.skipif(
    any(importlib.util.find_spec(f"jax_cuda{v}_plugin") for v in (12, 13)),
    reason="JAX for CUDA is installed here: the platform may start",
)
def test_a_platform_jax_cannot_start_is_named_before_any_run_is_recorded(tmp_path):
    store = tmp_path / "store"
    p = _reglab("run", "mlm_masking", "--set", "n_draws=5", "--store", str(store),
                "--out", str(tmp_path / "o"), "--no-progress",
                env={"JAX_PLATFORMS": "cuda"})  # fmt: skip
    _one_line_error(p, "JAX_PLATFORMS=cuda", "unset JAX_PLATFORMS")
    assert not store.exists()


# 9. more CPU devices than cores is refused, not reported as "trained on 1000"


def test_more_cpu_devices_than_cores_is_refused(tmp_path):
    from reglab.placement import available_cores

    n = available_cores() + 998
    store = tmp_path / "store"
    p = _reglab("run", "mlm_masking", "--set", "n_draws=5", "--store", str(store),
                "--out", str(tmp_path / "o"), "--no-progress",
                env={"REGLAB_CPU_DEVICES": str(n)})  # fmt: skip
    _one_line_error(p, f"REGLAB_CPU_DEVICES={n}", f"at most {available_cores()}")
    assert not store.exists()


# 8. the playground on a busy or impossible port: one line, no abort


def test_playground_on_a_busy_port_or_past_65535_is_one_line(tmp_path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = _reglab("playground", "--no-browser", "--port", str(port), timeout=60)
    _one_line_error(busy, f"cannot serve on 127.0.0.1:{port}", "--port")
    assert busy.returncode == 1
    wrong = _reglab("playground", "--no-browser", "--port", "99999", timeout=60)
    _one_line_error(wrong, "--port must be in [1, 65535], got 99999")
    assert wrong.returncode == 1


# 6. SIGTERM is Ctrl-C: the runs it stops end 'interrupted', the workers go too


def _statuses(store: Path) -> list[str]:
    import sqlite3

    if not (store / "runs.sqlite").exists():
        return []
    try:
        with sqlite3.connect(store / "runs.sqlite", timeout=5) as con:
            return [r[0] for r in con.execute("SELECT status FROM runs")]
    except sqlite3.OperationalError:
        return []


def test_sigterm_ends_the_running_rows_as_interrupted(tmp_path):
    import signal
    import time

    store = tmp_path / "store"
    store.mkdir()
    env = {**os.environ, "REGLAB_CPU_DEVICES": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "reglab", "sweep", "mlm_masking", "--grid",
         "n_draws=range(20000,22000,1000)", "--jobs", "2", "--no-progress",
         "--store", str(store), "--out", str(tmp_path / "o")],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while "running" not in _statuses(store) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "running" in _statuses(store)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode != 0 and "Traceback" not in err, err
    assert "interrupted" in err.strip().splitlines()[-1], err
    assert _statuses(store) and "running" not in _statuses(store)


# 12. mlflow without its database packages names them; its INFO lines stay out


def test_mlflow_export_names_the_missing_database_packages(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("mlflow")
    store = tmp_path / "runs.sqlite"
    _fill_store(store, 1)
    for name in ("sqlalchemy", "alembic"):  # as with mlflow-skinny alone
        monkeypatch.setitem(sys.modules, name, None)
    uri = f"sqlite:///{tmp_path / 'ml.db'}"
    with pytest.raises(SystemExit) as raised:
        cli.main(["export", "--format", "mlflow", "--tracking-uri", uri,
                  "--store", str(store)])  # fmt: skip
    message = str(raised.value)
    assert "needs sqlalchemy and alembic, not installed here" in message
    assert "pip install sqlalchemy alembic" in message
    assert "registry" not in message


def test_mlflow_export_keeps_mlflows_info_lines_out_of_the_terminal(tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")  # a database store: MLflow logs its migration
    pytest.importorskip("alembic")
    store = tmp_path / "runs.sqlite"
    _fill_store(store, 1)
    uri = f"sqlite:///{tmp_path / 'ml.db'}"
    p = _reglab("export", "--format", "mlflow", "--tracking-uri", uri, "--store",
                str(store))  # fmt: skip
    assert p.returncode == 0, p.stderr
    said = p.stderr.strip().splitlines()
    assert said == [f"logged 1 runs to {uri} (0 already there)"]


# 5. each command's report has its own folder; another's is not replaced silently


def _title(page: Path) -> str:
    import re

    return re.search(r"<title>(.*?)</title>", page.read_text(), re.S).group(1)


def test_each_command_writes_its_own_report_and_never_replaces_anothers(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    store = ["--store", str(tmp_path / "store"), "--no-progress", "--jobs", "1"]
    cli.main(["reproduce", "--only", "mlm_masking", "--quick", "--seeds", "1", *store])
    page = tmp_path / "reglab-out" / "index.html"
    assert _title(page) == "reglab reproduce: mlm_masking (quick run)"
    before = page.read_text()
    run = ["run", "mlm_masking", "--set", "n_draws=5", *store]
    with pytest.raises(SystemExit, match="holds the report of `reglab reproduce`"):
        cli.main([*run, "--out", "reglab-out"])
    assert page.read_text() == before
    cli.main(run)  # its own folder, named after the experiment and its config
    (own,) = (tmp_path / "reglab-run").glob("mlm_masking-*/index.html")
    assert _title(own) == "reglab run: mlm_masking with n_draws=5"
    for grid in ("n_draws=4,5", "n_draws=6,7"):
        cli.main(["sweep", "mlm_masking", "--grid", grid, *store])
    sweeps = sorted((tmp_path / "reglab-sweep").glob("mlm_masking-*/index.html"))
    assert len(sweeps) == 2  # the second sweep kept the first one's report
    assert all(_title(s) == "reglab sweep: mlm_masking over n_draws" for s in sweeps)
    cli.main([*run, "--out", "reglab-out", "--overwrite"])
    assert _title(page) == "reglab run: mlm_masking with n_draws=5"


# 2. a large sweep is confirmed first; rows and locks come as each point starts;
# reglab rm deletes what is not wanted


def test_a_sweep_past_the_size_limit_is_refused_without_a_terminal(tmp_path):
    from reglab.store import Store

    store = tmp_path / "runs.sqlite"
    with Store(store) as s:  # one timed run of the experiment: the estimate's clock
        run = s.start_run("mlm_masking", {"n_draws": 5}, 0, code_version="t")
        s.end_run(run.id, "finished", info={"timings": {"total_s": 2.0}, "group": [0]})
    argv = ["sweep", "mlm_masking", "--grid", "n_draws=range(1,10001)", "--jobs", "2",
            "--store", str(store), "--out", str(tmp_path / "o")]  # fmt: skip
    p = _reglab(*argv, stdin=subprocess.DEVNULL)
    _one_line_error(
        p, "this sweep trains 10000 points x 1 seed = 10000 runs",
        "about 2.8 h at 2 s a run", "add --yes",
    )  # fmt: skip
    with Store(store) as s:
        assert [r.id for r in s.list_runs()] == [run.id]  # nothing recorded
    assert not (tmp_path / "locks").exists() or not any((tmp_path / "locks").iterdir())


def test_rows_and_locks_come_as_points_start_not_all_at_once(tmp_path):
    import signal
    import time

    store = tmp_path / "store"
    store.mkdir()
    env = {**os.environ, "REGLAB_CPU_DEVICES": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "reglab", "sweep", "mlm_masking", "--grid",
         "n_draws=range(20000,26000,1000)", "--jobs", "1", "--no-progress",
         "--store", str(store), "--out", str(tmp_path / "o")],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not _statuses(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into its training, past the bookkeeping of its start
    p.send_signal(signal.SIGINT)  # Ctrl-C while the first point trains
    _, err = p.communicate(timeout=60)
    statuses = _statuses(store)
    assert 1 <= len(statuses) <= 3, (statuses, err)  # of 6 points: those started
    assert "running" not in statuses
    assert not list((store / "locks").glob("*.lock"))  # none left behind


def test_rm_deletes_runs_by_id_or_every_interrupted_one(tmp_path, capsys):
    from reglab.store import Store

    store = tmp_path / "runs.sqlite"
    with Store(store) as s:
        ids = []
        for seed, status in enumerate(["finished", "interrupted", "interrupted"]):
            run = s.start_run("mlm_masking", {"n_draws": 5}, seed, code_version="t")
            s.end_run(run.id, status)
            ids.append(run.id)
        held = s.start_run("mlm_masking", {"n_draws": 6}, 0, code_version="t")
        s.save_arrays(held.id, "result", {"x": [1.0]})
        s.end_run(held.id, "finished", info={"group": [0, 1], "group_run": held.id})
        beside = s.start_run("mlm_masking", {"n_draws": 6}, 1, code_version="t")
        s.end_run(beside.id, "finished", info={"group": [0, 1], "group_run": held.id})
    where = ["--store", str(store)]
    assert cli.main(["rm", "--status", "interrupted", *where]) == 0
    assert "deleted 2 runs" in capsys.readouterr().out
    assert cli.main(["rm", ids[0][:8], *where]) == 0
    with pytest.raises(SystemExit, match=f"run {held.id} holds the stored result of"):
        cli.main(["rm", held.id, *where])  # its group's other seed loads from it
    assert cli.main(["rm", held.id, beside.id, *where]) == 0
    with Store(store) as s:
        assert s.list_runs() == []
    with pytest.raises(SystemExit, match="rm --status must be one of interrupted"):
        cli.main(["rm", "--status", "finished", *where])


# 1. a run that cannot fit in memory is refused with the estimate and the fix


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_epochs_too_many_to_fit_are_refused_before_anything_starts(tmp_path, command):
    from reglab.lab.memory import available_bytes

    have = available_bytes()
    if have is None:
        pytest.skip("no way to read the memory available here")
    epochs = 10**9 if have < 20 * 2**30 else 2 * 10**9  # past what this machine has
    store = tmp_path / "store"
    argv = [command, "weight_decay", "--set", f"epochs={epochs}", "--store",
            str(store), "--out", str(tmp_path / "o"), "--no-progress"]  # fmt: skip
    if command == "sweep":
        argv += ["--grid", "noise=0.1,0.2"]
    with pytest.raises(SystemExit) as raised:
        cli.main(argv)
    message = str(raised.value)
    assert message.startswith(f"reglab: weight_decay: epochs={epochs} needs about")
    assert "available here — lower epochs (the default is 10000)" in message
    assert not store.exists()


def test_epochs_past_int32_are_refused_and_every_default_fits():
    from reglab import experiments
    from reglab.lab import LabError
    from reglab.lab.memory import check_memory, estimate_bytes

    for name in experiments.NAMES:  # every default config: well under 100 MB
        assert estimate_bytes(experiments.get(name).Config(), devices=8) < 100 * 2**20
    cfg = experiments.get("dropout").Config(epochs=2**31)
    with pytest.raises(LabError, match=r"epochs=2147483648 is past 2147483647"):
        check_memory("dropout", cfg, devices=1)


# Also seen: runs, show and export flag a damaged artifact; runs has a header


def test_runs_show_and_export_flag_a_damaged_artifact(tmp_path, capsys):
    from reglab.store import Store

    store = tmp_path / "runs.sqlite"
    with Store(store) as s:
        run = s.start_run("mlm_masking", {"n_draws": 5}, 0, code_version="t")
        art = s.save_arrays(run.id, "result", {"x": [1.0, 2.0, 3.0]})
        s.end_run(run.id, "finished")
        fine = s.start_run("mlm_masking", {"n_draws": 6}, 0, code_version="t")
        s.save_arrays(fine.id, "result", {"x": [1.0]})
        s.end_run(fine.id, "finished")
    path = tmp_path / art.path
    path.write_bytes(path.read_bytes()[:-1] + b"\0")  # same size, other bytes
    where = ["--store", str(store)]
    cli.main(["runs", *where])
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["run", "experiment", "seed", "status"]
    assert len(lines) == 2 and not any("ARTIFACT" in line for line in lines)
    path.write_bytes(path.read_bytes()[:40])  # truncated: its size says so
    cli.main(["runs", *where])
    flagged = [ln for ln in capsys.readouterr().out.splitlines() if "ARTIFACT" in ln]
    assert flagged == [ln for ln in flagged if ln.startswith(run.id)] and flagged
    assert "result (damaged)" in flagged[0]
    cli.main(["show", run.id, *where])
    assert "DAMAGED, retrain it" in capsys.readouterr().out
    cli.main(["export", "--format", "json", *where])
    said = capsys.readouterr()
    exported = {r["id"]: r for r in json.loads(said.out)}
    assert exported[run.id]["artifacts"][0]["state"] == "damaged"
    assert exported[fine.id]["artifacts"][0]["state"] == "ok"
    assert f"run {run.id} has a damaged artifact: result (damaged)" in said.err


# Also seen: the sweep table fits 80 columns piped and counts what it shows; a
# verdict on the mean says when its 95% interval includes the threshold


def _claims_of(values_by_name: dict) -> dict:
    from reglab.experiments.base import Claim

    claims = {}
    for name, values in values_by_name.items():
        c = Claim.over_seeds(name, "a statement", values, 0.0, ">")
        claims[name] = {**c.to_dict(), "per_seed": list(c.per_seed)}
    return claims


def test_the_sweep_table_fits_80_columns_and_marks_an_unsettled_verdict():
    import io

    from rich.console import Console

    from reglab.lab.outputs import print_sweep

    long_names = [
        "mc_instantiations_as_rough_as_no_dropout",  # the longest, 40 characters
        "l1_sparser_than_l2_at_mid",
        "moderate_l2_ignores_flipped_labels",
        "dropout_narrows_the_gap",
    ]
    rows = [
        {"point": {"noise": noise, "epochs": epochs}, "seeds": [0, 1, 2],
         "claims": _claims_of({n: [0.5, -0.1, 0.3] if i == 0 else [1.0, 1.1, 0.9]
                               for i, n in enumerate(long_names)})}
        for noise in (0.1, 0.2) for epochs in (1000, 2000)
    ]  # fmt: skip
    out = io.StringIO()
    print_sweep(rows, Console(file=out, width=80, force_terminal=False))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    for name in long_names:
        assert text.count(name) == 4, text  # whole, once per point
    assert "4 grid points x 4 claims, 3 seeds each" in text
    assert text.count("pass*") == 4 and "2/3" in text and "3/3" in text
    assert "* the 95% interval includes the threshold" in text


def test_a_claim_whose_interval_includes_the_threshold_says_so(tmp_path):
    import io

    from rich.console import Console

    from reglab.experiments.base import Claim
    from reglab.lab.outputs import Outputs
    from reglab.report import Section, write_report

    unsettled = Claim.over_seeds("augmented_beats_plain", "s", [0.5, -0.1, 0.3], 0, ">")
    settled = Claim.over_seeds("clear", "s", [1.0, 1.1, 0.9], 0, ">")
    assert unsettled.passed and unsettled.interval[0] < 0  # the case
    section = Section("exp", {}, [], [], [unsettled, settled], {"total_s": 1.0})
    out = io.StringIO()
    Outputs().add(section, Console(file=out, width=120, force_terminal=False))
    lines = out.getvalue().splitlines()
    assert "pass (interval includes the threshold) augmented_beats_plain" in lines[1]
    assert lines[2].split()[:2] == ["pass", "clear:"]
    page = write_report(tmp_path, [section], title="t", versions={}, total_seconds=1)
    assert page.read_text().count("pass (interval includes the threshold)") == 1


# Also seen: without a terminal, each experiment says when it starts training


def test_without_a_terminal_each_experiment_says_when_it_starts(tmp_path):
    p = _reglab("reproduce", "--only", "mlm_masking", "--quick", "--seeds",
                "1", "--jobs", "1", "--store", str(tmp_path / "s"), "--out",
                str(tmp_path / "o"), timeout=600)  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    start = lines.index("mlm_masking: training seeds [0]")
    done = [i for i, ln in enumerate(lines) if ln.startswith("mlm_masking: trained")]
    assert done and start < done[0]


# Also seen: the library's predict and Ensemble name a bad input width or seed


def test_predict_with_the_wrong_width_and_a_negative_seed_are_clear_errors():
    import numpy as np

    from reglab import nn
    from reglab.ensemble import Ensemble
    from reglab.train import predict

    with pytest.raises(ValueError, match=r"seeds must be integers in \[0, 2\*\*32\)"):
        Ensemble.grid(seeds=[-1], learning_rate=0.15)
    spec = nn.MLPSpec(widths=(2, 4, 2))
    params = {k: np.zeros((1, 1, *v.shape), np.float32)
              for k, v in nn.init_mlp(jax_key(), spec).items()}  # fmt: skip
    assert predict(spec, params, np.zeros((3, 2))).shape == (1, 1, 3, 2)
    with pytest.raises(
        ValueError, match=r"x must be \(examples, 2\).*got shape \(3, 5\)"
    ):
        predict(spec, params, np.zeros((3, 5)))


def jax_key():
    import jax

    return jax.random.PRNGKey(0)
