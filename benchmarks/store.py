"""Speed of the run store: open it and list 1,000 runs (the goal: under 1 s).

    python benchmarks/store.py [--runs 1000]

Creates the runs in a temporary folder (each with a realistic config, a 100-point
metric history, a claim and a small artifact), then times, best of 5: opening the
store, listing every run, a cache lookup (find) and a prefix lookup (get). The
baseline is the same SELECT through plain sqlite3 with no Run objects built; the
import of reglab.store (which imports JAX through reglab) is timed apart, in a
fresh interpreter, since `reglab runs` pays it once.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reglab.store import Store
from reglab.store.runs import COLUMNS

CLAIM = {
    "name": "l2_shrinks",
    "statement": "L2 shrinks the weights",
    "measured": 0.5,
    "threshold": 1.0,
    "comparison": "<",
    "passed": True,
}


def config(i: int) -> dict:
    """Return a config the size of a real experiment's, varying with i."""
    return {
        "l2_strengths": [0.0, 0.001, 0.01, 0.1][: 1 + i % 4],
        "noise": 0.1 * (i % 7),
        "epochs": 1000,
        "widths": [2, 64, 64, 2],
        "learning_rate": 0.15,
        "batch_size": 32,
        "n_train": 250,
        "dataset": "moons",
        "seeds": [i % 3],
    }


def best_of(fn, repeat: int = 5) -> float:
    """Return the fastest of repeat calls of fn, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.sqlite"
        start = time.perf_counter()
        with Store(path) as store:
            for i in range(args.runs):
                run = store.start_run(
                    "weight_decay", config(i), i % 3, code_version="b"
                )
                store.log_metrics(run.id, "loss", np.linspace(1, 0, 100))
                store.record_claims(run.id, [CLAIM])
                store.save_arrays(run.id, "result", {"w": np.full(64, i, np.float32)})
                store.end_run(run.id, "finished")
        create = (time.perf_counter() - start) / args.runs
        print(
            f"create: {create * 1e3:.2f} ms per run (start, metrics, claim, artifact)"
        )

        def open_and_list():
            with Store(path) as s:
                assert len(s.list_runs()) == args.runs

        def raw_select():
            db = sqlite3.connect(path)
            rows = db.execute(f"SELECT {COLUMNS} FROM runs ORDER BY started_utc")
            assert len(rows.fetchall()) == args.runs
            db.close()

        opened = best_of(lambda: Store(path).close())
        listed = best_of(open_and_list)
        raw = best_of(raw_select)
        with Store(path) as s:
            run = s.list_runs()[0]
            found = best_of(lambda: s.find("weight_decay", run.config, run.seed, "b"))
            got = best_of(lambda: s.get(run.id[:6]))
        print(f"open: {opened * 1e3:.1f} ms")
        print(
            f"open + list {args.runs} runs: {listed * 1e3:.1f} ms, plain sqlite3"
            f" {raw * 1e3:.1f} ms: {listed / raw:.1f}x"
            f" ({'under' if listed < 1 else 'OVER'} the 1 s goal)"
        )
        print(
            f"find (cache lookup): {found * 1e6:.0f} us,"
            f" get by prefix: {got * 1e6:.0f} us"
        )
    code = "import time; t = time.perf_counter(); import reglab.store;"
    code += " print(time.perf_counter() - t)"
    imported = float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    print(f"import reglab.store in a fresh interpreter: {imported * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
