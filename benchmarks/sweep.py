"""A 16-point noise x strength weight-decay sweep: `reglab sweep` vs one `reglab run`
per point, and the cached re-run of the sweep.

    python benchmarks/sweep.py [--epochs 1000] [--seeds 2]

Each point is the weight-decay experiment with one nonzero L2 strength (and the
unregularized baseline) at one noise level. Prints points per second of both paths,
their ratio, and the seconds of the cached re-run (target < 2 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOISES = (0.05, 0.1, 0.2, 0.3)
STRENGTHS = (0.0025, 0.005, 0.01, 0.02)


def reglab(*argv: str) -> float:
    """Run `python -m reglab ARGV` and return its wall seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reglab", *argv], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def point_settings(strength: float) -> list[str]:
    """Return --set flags for the sweep [0, strength] (claims read that strength)."""
    return ["--set", f"l2_strengths=[0,{strength}]", "--set", f"l2_moderate={strength}",
            "--set", f"l2_mid={strength}"]  # fmt: skip


def main() -> None:
    """Time the three paths and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    fixed = ["--seeds", str(args.seeds), "--no-progress", "--set",
             f"epochs={args.epochs}", "--set", "l1_strengths=[0]",
             "--set", "l1_mid=0", "--set", "prox_strengths=[]"]  # fmt: skip
    noises = ["--grid", "noise=" + ",".join(map(str, NOISES))]
    n = len(NOISES) * len(STRENGTHS)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "sweep"), Path(tmp, "one")
        a.mkdir(), b.mkdir()
        where = ["--store", str(a), "--out", str(a / "o")]

        def sweep_all() -> float:
            # l2_moderate and l2_mid must be swept strengths, so the strength axis
            # is one sweep command per strength, each over the noise axis
            return sum(
                reglab(
                    "sweep", "weight_decay", *noises, *fixed, *point_settings(s), *where
                )  # fmt: skip
                for s in STRENGTHS
            )

        sweep_s = sweep_all()
        cached_s = sweep_all()
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
    print(f"cached re-run of the sweep: {cached_s:.2f} s over {len(STRENGTHS)}"
          " commands (target < 2 s)")  # fmt: skip


if __name__ == "__main__":
    main()
