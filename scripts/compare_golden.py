"""Re-run the quick reproduction into a fresh store and compare it with a golden one.

    python scripts/compare_golden.py /tmp/golden/store/runs.sqlite [--fresh DIR]

The golden store was made by ``reglab reproduce --quick --all --seeds 2 --store ...``
on the code before a change; the same command runs here with the current code, and
every stored result array of every run (matched by experiment, config hash and seed)
must be bit-identical (same dtype, shape and bytes; NaN where NaN). The .npz files'
sha256 is not compared: their metadata may differ while the numbers do not; nor are
the run ids a checkpoint holds (``lab/runs``), which every store draws afresh.
Exit status 0 when every array matches, 1 otherwise (each difference printed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from reglab.store import Store

# arrays that name things of one store, not numbers: a checkpoint's run ids
IGNORED = frozenset({"lab/runs"})


def runs_by_key(store: Store) -> dict[tuple[str, str, int], object]:
    """Return the finished runs of a store by (experiment, config hash, seed)."""
    runs = {}
    for run in store.list_runs(status="finished"):
        runs.setdefault((run.experiment, run.config_hash, run.seed), run)
    return runs


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Return whether two arrays are bit for bit the same (dtype, shape, bytes)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def compare(golden_path: Path, fresh_path: Path) -> list[str]:
    """Return one line per difference between the two stores' result arrays."""
    problems: list[str] = []
    with Store(golden_path) as golden, Store(fresh_path) as fresh:
        old, new = runs_by_key(golden), runs_by_key(fresh)
        for key in sorted(set(old) ^ set(new)):
            where = "golden" if key in old else "fresh"
            problems.append(f"{key}: only in the {where} store")
        n_arrays = 0
        for key in sorted(set(old) & set(new)):
            names_old = {a.name for a in golden.artifacts(old[key].id)}
            names_new = {a.name for a in fresh.artifacts(new[key].id)}
            if names_old != names_new:
                problems.append(f"{key}: artifacts {names_old} vs {names_new}")
            for name in sorted(names_old & names_new):
                a = golden.load_arrays(old[key].id, name)
                b = fresh.load_arrays(new[key].id, name)
                if set(a) != set(b):
                    problems.append(f"{key} {name}: arrays {set(a) ^ set(b)} differ")
                for k in sorted((set(a) & set(b)) - IGNORED):
                    n_arrays += 1
                    if not same(a[k], b[k]):
                        problems.append(f"{key} {name}/{k}: values differ")
        print(f"compared {n_arrays} arrays of {len(set(old) & set(new))} runs")
    return problems


def main() -> int:
    """Run the reproduction into a fresh store and compare; print the outcome."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("golden", type=Path, help="the golden runs.sqlite")
    parser.add_argument("--fresh", type=Path, help="reuse this store's folder")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    folder = args.fresh or Path(tempfile.mkdtemp(prefix="reglab-golden-"))
    fresh = folder / "runs.sqlite"
    if not fresh.exists():
        command = [sys.executable, "-m", "reglab", "reproduce", "--quick", "--all",
                   "--seeds", str(args.seeds), "--store", str(fresh),
                   "--out", str(folder / "out"), "--no-progress"]  # fmt: skip
        print("running:", " ".join(command), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    problems = compare(args.golden, fresh)
    for line in problems:
        print("DIFF", line)
    print("bit-identical" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
