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


def test_histories_are_metric_arrays_at_their_own_epochs():
    arrays = {
        "record_epochs": np.array([0, 5, 10]),
        "val_epochs": np.array([0, 1, 2]),  # same length: the name decides
        "train_loss": np.arange(12.0).reshape(2, 2, 3),  # (seeds, strengths, R)
        "user_val_loss": np.ones((2, 3)),
        "test_rel_conf": np.ones((2, 3)),  # reliability bins, not a history
        "ragged_accuracy": np.ones((2, 4)),  # no epochs of this length
    }
    seeds = seed_histories(Result("x", {}, arrays), 2)
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
