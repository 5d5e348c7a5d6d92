"""Time `reglab reproduce` from a cold start: per experiment, total, peak memory.

    python benchmarks/reproduce.py [--quick] [--seeds 3] [--only NAMES]

Each run is a fresh process with an empty compilation cache and a fresh output
directory, so nothing is reused. With --seeds N > 1 the same run also times one seed,
and prints the cost ratio N seeds : 1 seed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(seeds: int, quick: bool, only: str | None) -> dict:
    """Run reproduce in a child process; return its timings and peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        out, cache = Path(tmp) / "out", Path(tmp) / "cache"
        cmd = [sys.executable, "-m", "reglab.cli", "reproduce", "--no-progress"]
        cmd += ["--out", str(out), "--seeds", str(seeds), "--force"]
        cmd += ["--quick"] if quick else []
        cmd += ["--only", only] if only else []
        env = {**os.environ, "REGLAB_CACHE": str(cache)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        metrics = json.loads((out / "metrics.json").read_text())
    return {
        "wall": wall,
        "peak_mb": max(peak_kb, before) / 1024,
        "experiments": {k: v["timings"] for k, v in metrics.items()},
    }


def show(label: str, run: dict) -> None:
    """Print one run's table."""
    print(label)
    print(f"  {'experiment':<18}{'compile s':>10}{'run s':>8}{'total s':>9}")
    for name, t in run["experiments"].items():
        print(
            f"  {name:<18}{t.get('compile_s', 0):>10.2f}{t.get('run_s', 0):>8.2f}"
            f"{t.get('total_s', 0):>9.2f}"
        )
    print(f"  wall clock (process start to report) {run['wall']:.1f} s")
    print(f"  peak memory (max RSS) {run['peak_mb']:.0f} MB")


def main() -> None:
    """Print the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--only")
    args = parser.parse_args()
    many = run_once(args.seeds, args.quick, args.only)
    show(
        f"reglab reproduce{' --quick' if args.quick else ''} --seeds {args.seeds}", many
    )
    if args.seeds > 1:
        one = run_once(1, args.quick, args.only)
        show("same, --seeds 1", one)
        print(
            f"{args.seeds} seeds cost {many['wall'] / one['wall']:.2f}x one seed"
            f" ({many['wall']:.1f} s vs {one['wall']:.1f} s)"
        )


if __name__ == "__main__":
    main()
