"""A 16-point noise x strength weight-decay sweep: `reglab sweep` vs one `reglab run`
per point, the same sweep through `--executor ray`, and the cached re-run.

    python benchmarks/sweep.py [--epochs 1000] [--seeds 2] [--no-ray] [--cached-only]

Each point is the weight-decay experiment with one nonzero L2 strength (and the
unregularized baseline) at one noise level. Prints points per second of each path,
their ratio, the seconds of the cached re-run (target < 2 s), and Ray's start-up
(a local Ray started and stopped, timed alone; each sweep command pays it once).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOISES = (0.05, 0.1, 0.2, 0.3)
STRENGTHS = (0.0025, 0.005, 0.01, 0.02)


def reglab(*argv: str, cache: Path | None = None) -> float:
    """Run `python -m reglab ARGV` (compile cache in cache, if given); wall seconds."""
    env = {**os.environ, **({"REGLAB_CACHE": str(cache)} if cache else {})}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reglab", *argv], check=True,
                   stdout=subprocess.DEVNULL, env=env)  # fmt: skip
    return time.perf_counter() - t0


def ray_startup() -> float:
    """Return the seconds to start and stop a local Ray, as `--executor ray` does."""
    code = (
        "import ray; ray.init(address='local', num_cpus=2, include_dashboard=False,"
        " _node_ip_address='127.0.0.1', log_to_driver=False); ray.shutdown()"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    t1 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import ray"], check=True)
    return (t1 - t0) - (time.perf_counter() - t1)  # less the import


def point_settings(strength: float) -> list[str]:
    """Return --set flags for the sweep [0, strength] (claims read that strength)."""
    return ["--set", f"l2_strengths=[0,{strength}]", "--set", f"l2_moderate={strength}",
            "--set", f"l2_mid={strength}"]  # fmt: skip


def main() -> None:
    """Time the three paths and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    parser.add_argument(
        "--cached-only", action="store_true",
        help="only the sweep and its cached re-run (no Ray, no one-at-a-time runs)",
    )  # fmt: skip
    args = parser.parse_args()
    fixed = ["--seeds", str(args.seeds), "--no-progress", "--set",
             f"epochs={args.epochs}", "--set", "l1_strengths=[0]",
             "--set", "l1_mid=0", "--set", "prox_strengths=[]"]  # fmt: skip
    noises = ["--grid", "noise=" + ",".join(map(str, NOISES))]
    n = len(NOISES) * len(STRENGTHS)
    with tempfile.TemporaryDirectory() as tmp:
        a, b, r = Path(tmp, "sweep"), Path(tmp, "one"), Path(tmp, "ray")
        a.mkdir(), b.mkdir(), r.mkdir()

        def sweep_all(store: Path = a, *executor: str) -> float:
            # l2_moderate and l2_mid must be swept strengths, so the strength axis
            # is one sweep command per strength, each over the noise axis (and
            # each with its own report folder)
            return sum(
                reglab(  # each executor starts from its own empty compile cache
                    "sweep",
                    "weight_decay",
                    *noises,
                    *fixed,
                    *point_settings(s),
                    "--store",
                    str(store),
                    "--out",
                    str(store / f"o{s}"),
                    *executor,
                    cache=store / "cache",
                )  # fmt: skip
                for s in STRENGTHS
            )

        sweep_s = sweep_all()
        cached_s = sweep_all()
        k = len(STRENGTHS)
        if args.cached_only:
            print(f"reglab sweep     {n / sweep_s:6.3f} points/s ({sweep_s:.1f} s)")
            print(f"cached re-run of the sweep: {cached_s:.2f} s over {k} commands,"
                  f" {cached_s / k:.2f} s each (target < 2 s)")  # fmt: skip
            return
        ray_s = None if args.no_ray else sweep_all(r, "--executor", "ray")
        start_s = None if args.no_ray else ray_startup()
        one_s = sum(
            reglab("run", "weight_decay", *fixed, "--set", f"noise={noise}",
                   *point_settings(s), "--store", str(b), "--out", str(b / "o"))
            for noise in NOISES
            for s in STRENGTHS
        )  # fmt: skip
    print(f"{n} points x {args.seeds} seeds, {args.epochs} epochs")
    print(f"reglab sweep     {n / sweep_s:6.3f} points/s ({sweep_s:.1f} s)")
    print(f"one reglab run   {n / one_s:6.3f} points/s ({one_s:.1f} s)")
    print(f"sweep vs one at a time: {one_s / sweep_s:.2f}x")
    if ray_s is not None:  # one command, hence one Ray start-up, per strength
        net = ray_s - k * start_s
        print(
            f"sweep on Ray     {n / ray_s:6.3f} points/s ({ray_s:.1f} s);"
            f" {n / net:.3f} points/s less {k} Ray start-ups"
        )
        print(
            f"Ray start-up {start_s:.1f} s per command (local Ray started and"
            f" stopped); Ray vs local sweep: {sweep_s / ray_s:.2f}x"
        )
    print(f"cached re-run of the sweep: {cached_s:.2f} s over {k} commands,"
          f" {cached_s / k:.2f} s each (target < 2 s)")  # fmt: skip


if __name__ == "__main__":
    main()
