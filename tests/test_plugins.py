"""Plug-ins from outside: the example package found as installed, from the command line.

The example (examples/reglab-confidence-penalty) is made findable without touching
the shared environment: its package and a dist-info whose entry points are its
pyproject's, in a temporary folder on PYTHONPATH of a subprocess.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from reglab.store import Store

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "reglab-confidence-penalty"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Return a folder where the example is installed: package and dist-info."""
    root = tmp_path_factory.mktemp("site")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    package = EXAMPLE / "src" / "reglab_confidence_penalty"
    shutil.copytree(package, root / package.name)
    dist = root / f"reglab_confidence_penalty-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\n"
        f"Version: {project['version']}\n"
    )
    points = project["entry-points"]["reglab.regularizers"]
    (dist / "entry_points.txt").write_text(
        "[reglab.regularizers]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
    )
    return root


def command(site: Path | None, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run python -m ARGS with the site (if any) and reglab's sources on the path."""
    paths = [str(site)] if site else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(ROOT / "src")])}
    env.pop("REGLAB_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_example_package_passes_its_own_tests(site, tmp_path):
    done = command(site, "pytest", "-q", "-p", "no:cacheprovider",
                   str(EXAMPLE / "tests"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_sweep_over_the_plugins_setting_trains_stores_and_lists_it(site, tmp_path):
    listed = command(site, "reglab", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "confidence_penalty" in listed.stdout.split("per-member settings")[1]
    store = tmp_path / "store" / "runs.sqlite"
    done = command(site, "reglab", "sweep", "playground",
                   "--grid", "confidence_penalty=0,0.5", "--set", "epochs=20",
                   "--set", "hidden=[16]", "--seeds", "1", "--jobs", "1",
                   "--store", str(store), "--out", str(tmp_path / "out"),
                   "--no-progress", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with Store(store) as runs_store:
        runs = runs_store.list_runs(experiment="playground", status="finished")
        by_beta = {r.config["confidence_penalty"]: r for r in runs}
        assert sorted(by_beta) == [0.0, 0.5]
        plain, penalized = (
            runs_store.load_arrays(by_beta[b].id, "result") for b in (0.0, 0.5)
        )
    differ = [k for k in plain if not np.array_equal(plain[k], penalized[k])]
    assert differ, "the penalty changed nothing"


def test_a_plugin_that_fails_to_import_is_named_before_any_training(tmp_path):
    done = command(None, "reglab", "run", "playground", "--plugin", "no_such_plugin",
                   "--store", str(tmp_path / "s"), cwd=tmp_path)  # fmt: skip
    assert done.returncode != 0
    assert "reglab: plug-in 'no_such_plugin' failed to import" in done.stderr
    assert "Traceback" not in done.stderr
    toml = tmp_path / "study.toml"
    toml.write_text('plugins = "reglab_confidence_penalty"\nepochs = 10\n')
    done = command(None, "reglab", "run", "playground", "-c", str(toml),
                   "--store", str(tmp_path / "s"), cwd=tmp_path)  # fmt: skip
    assert (
        "plugins in" in done.stderr and "must be a list of module names" in done.stderr
    )


def test_plugin_option_reaches_spawned_workers(site, tmp_path):
    # the package on the path without its dist-info: found through plugins only,
    # and by the two worker processes (--jobs 2) through $REGLAB_PLUGINS
    bare = tmp_path / "bare"
    package = "reglab_confidence_penalty"
    shutil.copytree(site / package, bare / package)
    toml = tmp_path / "page.toml"
    toml.write_text(f'plugins = ["{package}"]\nepochs = 5\nhidden = [8]\n'
                    "[sweep]\nconfidence_penalty = [0.0, 0.3]\n")  # fmt: skip
    where = ["--store", str(tmp_path / "s"), "--out", str(tmp_path / "o")]
    done = command(bare, "reglab", "sweep", "playground", "-c", str(toml),
                   "--jobs", "2", *where, "--no-progress", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with Store(tmp_path / "s") as runs_store:
        runs = runs_store.list_runs(experiment="playground", status="finished")
    assert sorted(r.config["confidence_penalty"] for r in runs) == [0.0, 0.3]
