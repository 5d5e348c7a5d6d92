"""A sweep end to end: its report, its replay from the store, each run's histories."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reglab import cli
from reglab.experiments.base import Result
from reglab.lab.histories import seed_histories
from reglab.lab.sweep_report import axis_figure, figure_name

AXES = ["--grid", "noise=0.1,0.2", "--grid", "epochs=2,4"]
TINY = [
    "sweep", "weight_decay", "--quick", *AXES, "--seeds", "2",
    "--set", "widths=[2,8,8,2]", "--set", "n_train=40", "--set", "n_test=40",
    "--set", "grid_resolution=3", "--set", "prox_strengths=[]",
    "--no-progress", "--jobs", "1", "--json",
]  # fmt: skip


def _sweep(where) -> list:
    """Run the tiny sweep in this process; return its rows (its sweep.json)."""
    assert cli.main([*TINY, *where]) == 0
    return json.loads(Path(where[-1], "sweep.json").read_text())


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Run a tiny 2x2 weight-decay sweep (2 seeds) once; return its folder and rows."""
    root = tmp_path_factory.mktemp("sweep")
    where = ["--store", str(root / "store"), "--out", str(root / "out")]
    return root, where, _sweep(where)


def _replay(where) -> tuple[list, bool]:
    """Run the same sweep in a fresh process; return its rows and whether JAX loaded."""
    code = (
        "import json, sys; from reglab import cli;"
        f" assert cli.main({[*TINY, *where]!r}) == 0;"
        " print(json.dumps('jax' in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    *rows, jax_loaded = done.stdout.strip().rsplit("\n", 1)
    return json.loads(rows[0]), json.loads(jax_loaded)


def test_the_report_names_each_axis_and_shows_its_figure(swept, browser):
    root, _, rows = swept
    out = root / "out"
    page = (out / "index.html").read_text()
    for axis in ("noise", "epochs"):
        assert f"against {axis}" in page and (out / figure_name(axis)).is_file()
        assert f'src="{figure_name(axis)}"' in page
    claims = list(rows[0]["claims"])
    assert page.count('<table class="claims"') == len(claims)
    view = browser.new_page()
    view.goto((out / "index.html").as_uri())
    widths = [
        img.evaluate("i => i.naturalWidth") for img in view.query_selector_all("img")
    ]
    assert len(widths) == 2 and all(w > 0 for w in widths)  # both figures load
    n_rows = view.locator(f'table[data-claim="{claims[0]}"] tbody tr').count()
    assert n_rows == 4  # a row per grid point
    view.close()


def test_the_same_sweep_replays_from_the_store_without_jax(swept):
    root, where, rows = swept
    page = root / "out" / "index.html"
    before = page.stat().st_mtime_ns
    again, jax_loaded = _replay(where)
    assert not jax_loaded
    assert [r["trained"] for r in rows] == [True] * 4
    assert [r["trained"] for r in again] == [False] * 4
    assert [r["claims"] for r in again] == [r["claims"] for r in rows]
    assert page.stat().st_mtime_ns == before  # nothing changed: not re-rendered


def test_each_run_stores_its_histories_at_the_record_epochs(swept, capsys):
    _, where, rows = swept
    store = where[:2]
    run_id = rows[-1]["runs"]["1"]  # epochs=4, seed 1
    cli.main(["show", run_id, "--json", *store])
    shown = json.loads(capsys.readouterr().out)
    curves = {k: v for k, v in shown["metrics"].items() if "loss_curve" in k}
    assert curves and all(len(v["values"]) == len(v["steps"]) for v in curves.values())
    assert curves["l2_train_loss_curve/0"]["steps"][-1] == 4  # the last epoch
    cli.main(["show", run_id, *store])
    assert "metric l2_train_loss_curve/0:" in capsys.readouterr().out
    cli.main(["export", "--format", "csv", "--metrics", *store])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "run,experiment,seed,metric,step,value"
    mine = [line for line in lines if line.startswith(run_id)]
    assert len(mine) == sum(len(v["values"]) for v in shown["metrics"].values())


def test_a_corrupt_result_is_not_replayed_and_its_point_retrains(swept):
    root, where, rows = swept
    holder = rows[0]["runs"]["0"]
    (npz,) = root.rglob(f"artifacts/{holder}/result.*.npz")
    npz.write_bytes(npz.read_bytes()[:-7])
    again = _sweep(where)
    assert [r["trained"] for r in again] == [True, False, False, False]
    assert again[0]["claims"] == rows[0]["claims"]  # retrained to the same numbers


def _oracle(values) -> tuple[float, float, float]:
    """Seed mean and 95% t interval of two seeds, by hand (t_0.975 with 1 dof)."""
    m = sum(values) / 2
    half = 12.706 * abs(values[0] - values[1]) / 2**0.5 / 2**0.5
    return m, m - half, m + half


def test_chosen_metrics_are_seed_means_in_json_csv_table_and_page(swept, capsys):
    root, where, rows = swept
    out = root / "metrics-out"  # the replay test's page stays as it is
    cfg = root / "sweep.toml"
    cfg.write_text('[sweep]\nmetrics = ["l2_test_acc/3"]\n')
    argv = [*TINY, *where[:2], "--out", str(out), "-c", str(cfg), "--metric",
            "l2_train_loss_curve/8", "--metric", "l1_diverged/0"]  # fmt: skip
    assert cli.main(argv) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["trained"] for r in shown] == [False] * 4  # replayed: metrics only read
    saved = json.loads((out / "sweep.json").read_text())
    assert [r["metrics"] for r in saved] == [r["metrics"] for r in shown]
    from reglab.store import Store

    with Store(where[1]) as store:
        for r in saved:
            holder = store.get(r["runs"]["0"]).info["group_run"]
            acc = store.load_arrays(holder, "result")["l2_test_acc"][:, 3]  # (seeds,)
            m = r["metrics"]["l2_test_acc/3"]
            assert m["per_seed"] == acc.tolist()
            assert m["interval"] == pytest.approx(_oracle(acc.tolist())[1:], abs=1e-3)
            curves = [
                store.metrics(r["runs"][s])["l2_train_loss_curve/8"] for s in "01"
            ]
            last = [float(c.values[-1]) for c in curves]  # the store's history
            assert r["metrics"]["l2_train_loss_curve/8"]["mean"] == pytest.approx(
                sum(last) / 2, rel=1e-6
            )
    lines = (out / "sweep.csv").read_text().splitlines()
    assert lines[0] == "noise,epochs,kind,name,mean,lo,hi,passed,agreement"
    assert sum(",metric,l2_test_acc/3," in line for line in lines) == 4
    page = (out / "index.html").read_text()
    assert page.count('<table class="metrics"') == 3
    assert 'data-metric="l1_diverged/0"' in page


def test_an_unknown_metric_is_refused_before_training_with_the_closest_name(swept):
    root, where, _ = swept
    from reglab.store import Store

    with Store(where[1]) as store:
        before = len(store.list_runs())
    argv = [*TINY, *where[:2], "--out", str(root / "bad"), "--grid", "noise=0.3",
            "--metric", "l2_test_accuracy/3"]  # fmt: skip
    with pytest.raises(SystemExit, match=r"no metric 'l2_test_accuracy/3' — did you"
                       r" mean l2_test_acc/3\?.*l2_test_acc/0\.\.8"):  # fmt: skip
        cli.main(argv)
    with Store(where[1]) as store:
        assert len(store.list_runs()) == before  # the new noise=0.3 points: untrained


def test_the_first_finished_point_checks_the_names_when_none_is_stored(swept):
    _, where, rows = swept
    from types import SimpleNamespace

    from reglab.experiments.base import Result
    from reglab.lab import LabError
    from reglab.lab.sweep_metrics import first_point_check
    from reglab.store import Store

    with Store(where[1]) as store:
        info = store.get(rows[-1]["runs"]["0"]).info
        arrays = store.load_arrays(info["group_run"], "result")
    result = Result("weight_decay", {}, arrays, seed_axis=info["seed_axis"])
    done = SimpleNamespace(result=result,
                           cfg=SimpleNamespace(seeds=(0, 1)))  # fmt: skip
    first_point_check(["l2_test_acc/8", "l1_train_loss_curve/0"], "wd")(done)
    check = first_point_check(["l2_test_acc/9"], "wd")
    with pytest.raises(LabError, match=r"'l2_test_acc/9' — did you mean l2_test_acc/"
                       r".*the same command with a listed --metric"):  # fmt: skip
        check(done)
    check(done)  # only the first point is checked


def _utc(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_mlflow_export_reads_back_through_mlflows_own_client(
    swept, tmp_path, monkeypatch
):
    mlflow = pytest.importorskip("mlflow")  # the test extra installs mlflow-skinny
    _, where, rows = swept
    uri = f"file:{tmp_path / 'mlruns'}"  # a new sqlite: one spends ~4 s migrating
    export = ["export", "--format", "mlflow", "--tracking-uri", uri, *where[:2],
              "--status", "finished"]  # fmt: skip
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    why = r"cannot log to --tracking-uri file:.*MLFLOW_ALLOW_FILE_STORE.*logs only"
    with pytest.raises(SystemExit, match=why):
        cli.main(export)  # MLflow 3 keeps its file store behind a variable
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert cli.main(export) == 0
    assert cli.main(export) == 0  # again: runs already there are not logged twice
    from reglab.store import Store

    run_id = rows[-1]["runs"]["1"]  # epochs=4, seed 1
    with Store(where[1]) as store:
        run, claims = store.get(run_id), store.claims(run_id)
        curve = store.metrics(run_id)["l2_train_loss_curve/0"]
        n_finished = len(store.list_runs(status="finished"))
        names = {a.path.rsplit("/", 1)[1] for a in store.artifacts(run_id)}
    client = mlflow.MlflowClient(uri)
    found = client.search_runs(
        [client.get_experiment_by_name("reglab/weight_decay").experiment_id],
        filter_string=f"tags.`reglab.run` = '{run_id}'",
    )
    assert len(found) == 1
    logged = found[0]
    assert logged.data.params["seed"] == "1"
    assert logged.info.status == "FINISHED"  # the run's own status and times
    assert logged.info.end_time - logged.info.start_time == pytest.approx(
        (_utc(run.ended_utc) - _utc(run.started_utc)) * 1000, abs=2
    )
    assert logged.data.params["epochs"] == "4"
    assert logged.data.params["widths"] == str(run.config["widths"])
    history = client.get_metric_history(logged.info.run_id, "l2_train_loss_curve/0")
    assert [m.step for m in history] == curve.steps.tolist()
    assert [m.value for m in history] == pytest.approx(curve.values.tolist())
    for c in claims:
        assert logged.data.metrics[f"claim.{c['name']}"] == pytest.approx(c["measured"])
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert artifacts == names  # result.<sha>.npz (the group's first run: checkpoint)
    assert {p.name for p in (tmp_path / "mlruns").rglob("*.npz")} >= names
    from reglab.lab.exporting import artifact_root

    monkeypatch.chdir(tmp_path)  # sqlite: artifacts beside the database, not in ./
    assert (
        artifact_root("sqlite:///db/m.db", "reglab/x")
        == (tmp_path / "db" / "mlartifacts" / "reglab-x").as_uri()
    )
    assert artifact_root(uri, "reglab/x") is None  # file: stores keep their own
    every = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], max_results=1000
    )
    assert len(every) == n_finished


def test_seed_scalars_index_inner_axes_and_take_a_historys_last_number():
    from reglab.lab.sweep_metrics import seed_scalars

    nan = float("nan")
    arrays = {
        "record_epochs": np.array([0, 5, 10]),
        "test_acc": np.array([[0.5, 0.6], [0.7, 0.8]]),  # (seeds, strengths)
        "val_loss": np.array([[1.0, 0.5, nan], [1.0, 0.4, 0.3]]),  # stopped early
        "W": np.ones((2, 3, 3)),  # weights: not a metric
        "x_train": np.ones((5, 2)),  # no seed axis
    }
    got = seed_scalars(arrays, ("test_acc", "val_loss", "W"))  # the declared ones
    assert sorted(got) == ["test_acc/0", "test_acc/1", "val_loss"]
    assert got["test_acc/1"].tolist() == [0.6, 0.8]
    assert got["val_loss"].tolist() == [0.5, 0.3]  # the last recorded, not NaN


def test_histories_are_metric_arrays_at_their_own_epochs():
    arrays = {
        "record_epochs": np.array([0, 5, 10]),
        "val_epochs": np.array([0, 1, 2]),  # same length: the name decides
        "train_loss": np.arange(12.0).reshape(2, 2, 3),  # (seeds, strengths, R)
        "user_val_loss": np.ones((2, 3)),
        "test_rel_conf": np.ones((2, 3)),  # reliability bins, not a history
        "ragged_accuracy": np.ones((2, 4)),  # no epochs of this length
    }
    declared = ("train_loss", "user_val_loss", "test_rel_conf", "ragged_accuracy")
    seeds = seed_histories(Result("x", {}, arrays, seed_axis=declared), 2)
    assert sorted(seeds[1]) == ["train_loss/0", "train_loss/1", "user_val_loss"]
    steps, values = seeds[1]["train_loss/1"]
    assert steps.tolist() == [0, 5, 10] and values.tolist() == [9.0, 10.0, 11.0]
    assert seeds[0]["user_val_loss"][0].tolist() == [0, 1, 2]


def _row(dataset, l2, measured, interval, passed=True):
    claim = {"measured": measured, "interval": interval, "threshold": 0.5,
             "comparison": ">", "passed": passed, "agreement": ""}  # fmt: skip
    return {"point": {"dataset": dataset, "l2": l2}, "claims": {"c": claim}}


def test_axis_figures_take_words_nan_and_off_centre_intervals():
    nan = float("nan")
    rows = [_row("mnist", 0.001, 0.6, [0.65, 0.7]),  # interval above the value
            _row("mnist", 0.1, nan, [nan, nan]),  # left out, not an error
            _row("fashion", 0.001, 0.4, [0.3, 0.5], passed=False),
            _row("fashion", 0.1, 0.55, [0.5, 0.6])]  # fmt: skip
    words = axis_figure(rows, "dataset").axes[0]
    assert [t.get_text() for t in words.get_xticklabels()] == ["mnist", "fashion"]
    assert words.get_legend_handles_labels()[1] == ["l2=0.001", "l2=0.1"]
    strengths = axis_figure(rows, "l2").axes[0]
    assert strengths.get_xscale() == "log"  # 0.001 to 0.1: two decades
