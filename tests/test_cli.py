"""The reglab command: bad input fails before training; the report renders."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from reglab import cli, experiments


def test_unknown_experiment_fails_before_training(tmp_path):
    with pytest.raises(
        SystemExit, match="unknown experiment 'moons' in --only; choose from"
    ):
        cli.main(["reproduce", "--only", "moons", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("only", [",", " , ,", ""])
def test_only_naming_no_experiment_fails_in_one_line(tmp_path, only):
    with pytest.raises(SystemExit, match="names no experiment; choose from"):
        cli.main(["reproduce", "--only", only, "--out", str(tmp_path)])


@pytest.mark.parametrize("seeds", ["0", "-2"])
def test_bad_seed_count_fails_before_training(tmp_path, seeds):
    with pytest.raises(SystemExit, match=f"--seeds must be >= 1, got {seeds}"):
        cli.main(["reproduce", "--seeds", seeds, "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unwritable_output_directory_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SystemExit, match="cannot write to --out"):
        cli.main(["reproduce", "--out", str(blocker / "sub")])


def test_default_runs_the_posts_figures_and_all_adds_the_rest():
    assert cli._parse_names(None) == list(experiments.POST)
    assert cli._parse_names(None, everything=True) == list(experiments.NAMES)
    assert cli._parse_names("adamw") == ["adamw"]
    with pytest.raises(SystemExit):  # argparse: not both
        cli.main(["reproduce", "--all", "--only", "adamw"])


def test_list_names_every_experiment(capsys):
    cli.main(["list"])
    out = capsys.readouterr().out
    for name in experiments.POST:
        assert out.count(f"\n{name}:") + out.startswith(f"{name}:") == 1
    for name in experiments.BEYOND:
        assert out.count(f"{name} (beyond the post: --all):") == 1
    from reglab.settings import table as settings_table

    table = out.split("per-member settings")[1].splitlines()[1:]
    assert [line.split()[0] for line in table] == [s.name for s in settings_table()]
    p_drop = [s.name for s in settings_table()].index("p_drop")
    assert "p_drop" in table[p_drop] and "[0, 1)" in table[p_drop]


@pytest.mark.slow
def test_quick_reproduce_writes_every_artifact(quick_report, capsys):
    out = quick_report
    claims = json.loads((out / "claims.json").read_text())
    assert {c["experiment"] for c in claims} == set(experiments.NAMES)
    for c in claims:
        assert {"name", "measured", "threshold", "passed"} <= c.keys()
    for name in experiments.NAMES:
        assert list((out / name).glob("*.png")) and list((out / name).glob("*.svg"))
    assert (out / "metrics.csv").read_text().startswith("experiment,claim")
    # A second run with the same settings loads every result from the store.
    capsys.readouterr()
    again = ["reproduce", "--quick", "--all", "--seeds", "2", "--no-progress"]
    again += ["--out", str(out)]
    cli.main(again + ["--store", str(out / "store"), "--json"])
    done = json.loads(capsys.readouterr().out)
    assert {d["experiment"] for d in done} == set(experiments.NAMES)
    assert not any(d["trained"] for d in done)


@pytest.mark.slow
@pytest.mark.browser
def test_report_renders_in_headless_chromium(quick_report, browser):
    page_url = (Path(quick_report) / "index.html").resolve().as_uri()
    page = browser.new_page()
    page.goto(page_url)
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all(
        "figure img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
    )
    n_rows = page.eval_on_selector_all("table.claims tbody tr", "r => r.length")
    summary = page.inner_text("#claims-summary")
    sliders = page.query_selector_all("figure.slider")
    for fig in sliders:  # move each slider: its panel must change and load
        img, slider = fig.query_selector("img"), fig.query_selector("input")
        before = img.get_attribute("src")
        target = "0" if slider.get_attribute("value") != "0" else "1"
        slider.fill(target)
        page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img)
        assert img.get_attribute("src") != before
    assert len(widths) >= 10 and all(w > 0 for w in widths)
    assert n_rows == len(json.loads((quick_report / "claims.json").read_text()))
    assert "claims pass" in summary


def test_negative_jobs_fails_before_training(tmp_path):
    with pytest.raises(SystemExit, match="--jobs must be >= 0"):
        cli.main(["reproduce", "--jobs", "-1", "--out", str(tmp_path)])


@pytest.mark.slow
def test_one_process_and_worker_processes_give_the_same_claims(tmp_path):
    # one process with 2 CPU devices against workers with 1 device each: the member
    # layout never depends on the devices, so even dropout (Adam, per-batch masks)
    # must agree to the bit
    runs = {}
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        args = ["reproduce", "--quick", "--no-progress", "--jobs", jobs, "--seeds", "2"]
        args += ["--store", str(tmp_path / f"store{jobs}")]
        cli.main(args + ["--only", "mlm_masking,dropout", "--out", str(out)])
        runs[jobs] = json.loads((out / "claims.json").read_text())
    assert runs["1"] == runs["2"]


def test_xla_level_is_set_once_and_a_users_choice_is_kept(monkeypatch):
    from reglab.placement import configure_xla

    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    configure_xla()
    configure_xla()
    flags = os.environ["XLA_FLAGS"]
    assert flags == "--xla_dump_to=/tmp/x --xla_backend_optimization_level=1"
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    configure_xla()
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=3"


def test_every_run_records_its_loss_and_accuracy_histories(quick_report):
    from reglab.store import Store

    expected = {  # a history each experiment's Result holds, at its record epochs
        "augmentation": "test_accuracy/1",
        "weight_decay": "l2_train_loss_curve/0",
        "dropout": "train_loss_curve/0",
        "label_smoothing": "train_loss/0",
        "early_stopping": "user_val_loss",
    }
    with Store(quick_report / "store") as store:
        for name, metric in expected.items():
            (run, *_) = store.list_runs(name, "finished")
            h = store.metrics(run.id)[metric]
            assert h.steps.size > 1 and (np.diff(h.steps) > 0).all(), name
            assert np.isfinite(h.values).all(), name
