"""The playground: tests/playground/cases_playground.py, run by a pytest of their own.

The playground's engines keep training threads (and the programs they compiled) for
the life of their server; in the long-lived test process, a later test compiling a
program then died in JAX's persistent-cache write (a segmentation fault in two of two
full runs, never with the playground's cases left out of the process). A served
playground is a process of its own; its tests get the same: their own interpreter.
"""

import subprocess
import sys
from pathlib import Path

CASES = Path(__file__).parent / "playground" / "cases_playground.py"


def test_the_playground_cases_pass_in_an_interpreter_of_their_own():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]
