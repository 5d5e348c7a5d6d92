"""Sweeps on Ray: tests/ray/cases_ray.py, run by a pytest of their own.

Ray's driver, once started in a process, keeps C++ threads that write into file
descriptors Ray no longer holds. In the long-lived test process a later test's run
store, opened on such a recycled descriptor, came out with Ray's bytes over its
SQLite header (every full run; never with the Ray tests left out). A `reglab`
command is one process whose Ray stops at exit; the tests get the same: their own
interpreter.
"""

import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "ray" / "cases_ray.py"


def test_the_ray_cases_pass_in_an_interpreter_of_their_own():
    pytest.importorskip("ray")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]
