"""The Ray executor: the same numbers as the local one, a dying worker is retried,
a point that still fails is named while the others finish, an existing cluster
is reached by --address. One local Ray (2 CPUs, 127.0.0.1) serves the module."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from reglab import cli

SWEEP = ["sweep", "mlm_masking", "--grid", "band_sigmas=2.0,2.5,3.0", "--seeds", "1",
         "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def local_ray():
    """Start one local Ray for the module (no dashboard, this machine only)."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             _node_ip_address="127.0.0.1", log_to_driver=False)  # fmt: skip
    yield ray
    ray.shutdown()


def _numbers(store) -> list:
    """Return each finished run's (config hash, seed, claims) from `reglab export`."""
    db = str(store / "runs.sqlite")
    p = subprocess.run(
        [sys.executable, "-m", "reglab", "export", "--format", "json", "--status",
         "finished", "--store", db], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = [(r["config_hash"], r["seed"], r["claims"]) for r in json.loads(p.stdout)]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _sweep(where, *extra) -> None:
    args = [*SWEEP, "--store", str(where), "--out", str(where / "o"), *extra]
    assert cli.main(args) == 0


def test_without_ray_the_executor_fails_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.chdir(tmp_path)  # the default output folder would be made here
    with pytest.raises(SystemExit) as e:
        cli.main([*SWEEP, "--store", str(tmp_path / "store"), "--executor", "ray"])
    assert str(e.value) == 'reglab: --executor ray needs Ray: pip install "reglab[ray]"'
    assert not (tmp_path / "reglab-sweep").exists()  # refused before any folder
    assert not (tmp_path / "store").exists()


def test_ray_and_local_executors_give_identical_numbers(local_ray, tmp_path):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    _sweep(local, "--jobs", "2")
    _sweep(on_ray, "--executor", "ray")
    assert len(_numbers(on_ray)) == 3
    assert _numbers(on_ray) == _numbers(local)


def test_a_worker_that_dies_once_is_retried_and_the_sweep_completes(
    local_ray, tmp_path, monkeypatch, capsys
):
    marker = tmp_path / "died"
    monkeypatch.setenv("REGLAB_TEST_DIE_ONCE", str(marker))  # the task's test hook
    _sweep(tmp_path, "--executor", "ray")
    assert marker.exists()  # one worker did die
    assert "3 points (3 trained, 0 from the store)" in capsys.readouterr().err
    assert len(_numbers(tmp_path)) == 3


def test_a_point_that_still_fails_is_named_and_a_rerun_trains_only_it(
    local_ray, tmp_path, monkeypatch, capsys
):
    from reglab.lab import ray_executor

    monkeypatch.setattr(ray_executor, "MAX_RETRIES", 0)  # the one death is final
    monkeypatch.setenv("REGLAB_TEST_DIE_ONCE", str(tmp_path / "died"))
    with pytest.raises(SystemExit, match=r"1 of 3 points failed \(band_sigmas=\d"):
        _sweep(tmp_path, "--executor", "ray")
    assert len(_numbers(tmp_path)) == 2  # the others finished and were saved
    capsys.readouterr()
    _sweep(tmp_path, "--executor", "ray")  # the marker exists: nobody dies now
    assert "3 points (1 trained, 2 from the store)" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_address_reaches_a_ray_started_with_ray_start(tmp_path):
    pytest.importorskip("ray")
    port = _free_port()
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    temp = tempfile.mkdtemp(prefix="rlray-")  # short: Ray's sockets live in it
    # --block: the head's processes end with this one, so no `ray stop`, which would
    # end every Ray on the machine
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--include-dashboard=false", "--num-cpus", "2",
         "--disable-usage-stats", "--temp-dir", temp], env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert head.poll() is None and time.monotonic() < deadline, "no head"
            time.sleep(0.2)
        p = subprocess.run(
            [sys.executable, "-m", "reglab", *SWEEP, "--executor", "ray", "--address",
             f"127.0.0.1:{port}", "--store", str(tmp_path), "--out",
             str(tmp_path / "o")], capture_output=True, text=True, timeout=180,
            env=env,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        assert "3 points (3 trained, 0 from the store)" in p.stderr
    finally:
        head.send_signal(signal.SIGTERM)  # ray start --block stops its node
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)  # the group this test started
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)
    assert len(_numbers(tmp_path)) == 3


def test_ray_tasks_send_progress_and_checkpoints_to_the_driver(local_ray):
    from reglab import experiments
    from reglab.lab.overrides import build_config
    from reglab.lab.ray_executor import RayExecutor
    from reglab.lab.worker import Checkpoint, Progress, Task, work

    tiny = {"widths": [2, 8, 8, 2], "n_train": 40, "n_test": 40, "epochs": 4,
            "grid_resolution": 3, "prox_strengths": []}  # fmt: skip
    cfg = build_config(experiments.get("weight_decay"), tiny, seeds=1, quick=True)
    executor = RayExecutor()
    events, results = [], {}
    try:
        task = Task("weight_decay", cfg, "p")  # tag "p"
        for tag, value in executor.run(work, [("p", task)]):
            events += executor.drain()  # what the driver's bars and store receive
            if tag is not None:
                results[tag] = value
    finally:
        executor.close(cancel=False)
    assert not isinstance(results["p"], BaseException), results["p"]
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and all(e.tag == "p" for e in progress)
    assert progress[-1].done == progress[-1].total  # up to the end
    saved = [e for e in events if isinstance(e, Checkpoint)]
    assert saved and all(e.tag == "p" for e in saved)  # the driver stores them
    assert int(saved[-1].arrays["meta/epoch"]) == 4  # the last one: training's end
