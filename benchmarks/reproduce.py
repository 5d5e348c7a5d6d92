"""Time `reglab reproduce` from a cold start: per experiment, total, peak memory.

    python benchmarks/reproduce.py [--quick] [--seeds N] [--only NAMES | --all] [--warm]

Each run is a fresh process with a fresh output directory. By default the compilation
cache starts empty (a first run after install); --warm first fills a cache with an
untimed run, then times a run that reuses it (every later run on the same machine).
With --seeds N > 1 (3, the default, as `reglab reproduce` runs) the same run also times
one seed and prints the ratio. The budgets of the default full run on the 2-core
machine (issue 23): 3 seeds at most 75 s cold and 60 s warm, one seed at most 60 s
cold, at most 1.5 GB peak memory per process (max RSS of any one process). The
training alone has a floor: ``benchmarks/floor.py --cores 1`` prints it.
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


def run_once(seeds: int, quick: bool, only: str | None, cache: Path | None) -> dict:
    """Run reproduce in a child process; return its timings and peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        out, cache = Path(tmp) / "out", cache or Path(tmp) / "cache"
        cmd = [sys.executable, "-m", "reglab.cli", "reproduce", "--no-progress"]
        cmd += ["--out", str(out), "--seeds", str(seeds), "--force"]
        cmd += ["--quick"] if quick else []
        cmd += (["--all"] if only == "all" else ["--only", only]) if only else []
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
    print(
        f"  {'experiment':<18}{'compile s':>10}{'train s':>9}{'other s':>9}"
        f"{'figures s':>11}"
    )
    for name, t in run["experiments"].items():
        compile_s, run_s = t.get("compile_s", 0), t.get("run_s", 0)
        other = t.get("total_s", 0) - compile_s - run_s  # data, predict, metrics
        print(
            f"  {name:<18}{compile_s:>10.2f}{run_s:>9.2f}{other:>9.2f}"
            f"{t.get('render_s', 0):>11.2f}"
        )
    print(f"  wall clock (process start to report) {run['wall']:.1f} s")
    print(f"  peak memory (max RSS) {run['peak_mb']:.0f} MB")


def main() -> None:
    """Print the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", help="experiments (default: the post's five)")
    parser.add_argument("--all", action="store_true", help="with those beyond it")
    parser.add_argument("--warm", action="store_true", help="time with a warm cache")
    args = parser.parse_args()
    if args.all:
        args.only = "all"
    with tempfile.TemporaryDirectory() as shared:
        cache = Path(shared) if args.warm else None
        if args.warm:  # fill the cache for both seed counts, untimed
            for seeds in {1, args.seeds}:
                run_once(seeds, args.quick, args.only, cache)
        many = run_once(args.seeds, args.quick, args.only, cache)
        one = run_once(1, args.quick, args.only, cache) if args.seeds > 1 else None
    label = "warm" if args.warm else "cold (empty)"
    quick = " --quick" if args.quick else ""
    which = {None: "", "all": " --all"}.get(args.only, f" --only {args.only}")
    show(f"reglab reproduce{quick}{which} --seeds {args.seeds}, {label} compile cache",
         many)  # fmt: skip
    if one is not None:
        show("same, --seeds 1", one)
        print(
            f"{args.seeds} seeds cost {many['wall'] / one['wall']:.2f}x one seed"
            f" ({many['wall']:.1f} s vs {one['wall']:.1f} s)"
        )
    if not args.quick and args.only is None:
        budget = 60.0 if args.warm else 75.0
        budgets = [(f"--seeds {args.seeds}", many["wall"], budget, "s")]
        budgets += (
            [("--seeds 1", one["wall"], 60.0, "s")] if one and not args.warm else []
        )
        peak = max(r["peak_mb"] for r in (many, one) if r)
        budgets.append(("peak memory per process", peak, 1536.0, "MB"))
        for what, value, limit, unit in budgets:
            verdict = "within" if value <= limit else "OVER"
            print(f"budget {what}: {value:.1f} {unit} of {limit:.0f} {unit}: {verdict}")


if __name__ == "__main__":
    main()
