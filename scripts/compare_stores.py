"""Compare two run stores bit for bit: every stored result array, history and claim.

    python scripts/compare_stores.py OLD/runs.sqlite NEW/runs.sqlite
    python scripts/compare_stores.py OLD/runs.sqlite NEW/runs.sqlite \
        --reports OLD_OUT NEW_OUT     # and the two reports' figures and claims

Runs are matched by (experiment, config hash, seed), the store's own key, so two
stores made by different code versions of the same command line compare. For each
matched seed, the Result arrays of its group (the artifact on the group's first run)
must hold the same names with the same dtype, shape and bytes (NaN equal to NaN as
bytes are), its metric histories the same steps and values (wall-clock timings
left out: they are measured, not computed), and its claims the same measured values
and verdicts. Prints one line per difference and a summary; exits 1
if anything differs or a run is missing from either store.

With ``--reports``, the two report folders' figures (PNG bytes; SVG text with its
date and matplotlib's random clip-path ids left out) and claims.json must match too.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from reglab.store import Store

TIMINGS = ("compile_s", "run_s", "total_s")  # seconds: they differ run to run


def finished(store: Store) -> dict[tuple[str, str, int], object]:
    """Return (experiment, config hash, seed) -> newest finished run."""
    out = {}
    for run in store.list_runs(status="finished"):  # newest first: keep the first
        out.setdefault((run.experiment, run.config_hash, run.seed), run)
    return out


def same_array(a: np.ndarray, b: np.ndarray) -> str | None:
    """Return why a and b differ (dtype, shape or bytes), or None if identical."""
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} vs {b.dtype}"
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if a.dtype.kind == "O":
        return None if a.tolist() == b.tolist() else "objects differ"
    if np.ascontiguousarray(a).tobytes() != np.ascontiguousarray(b).tobytes():
        diff = "values differ"
        if a.dtype.kind in "fc":
            bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
            diff += f" at {int(bad.sum())} of {a.size}, max |d| "
            diff += f"{float(np.nanmax(np.abs(a - b))):.3g}"
        return diff
    return None


def compare_arrays(label: str, old: dict, new: dict) -> list[str]:
    """Return the differences between two dicts of arrays, one line each."""
    out = [f"{label}: array {k} only in the old store" for k in old.keys() - new]
    out += [f"{label}: array {k} only in the new store" for k in new.keys() - old]
    for k in sorted(old.keys() & new.keys()):
        why = same_array(np.asarray(old[k]), np.asarray(new[k]))
        if why:
            out.append(f"{label}: array {k}: {why}")
    return out


def claims_of(store: Store, run_id: str) -> dict[str, tuple]:
    """Return claim name -> (measured, per-seed values, passed) of a run."""
    return {
        c["name"]: (c["measured"], tuple(c.get("per_seed") or ()), c["passed"])
        for c in store.claims(run_id)
    }


def compare(old_path: Path, new_path: Path) -> tuple[list[str], int, int]:
    """Return (differences, seeds compared, arrays compared) of two stores."""
    diffs: list[str] = []
    n_arrays = 0
    with Store(old_path) as old, Store(new_path) as new:
        a, b = finished(old), finished(new)
        diffs += [f"{k}: only in the old store" for k in sorted(a.keys() - b.keys())]
        diffs += [f"{k}: only in the new store" for k in sorted(b.keys() - a.keys())]
        groups: dict[tuple[str, str], int] = {}
        for key in sorted(a.keys() & b.keys()):
            ra, rb = a[key], b[key]
            label = f"{key[0]} {key[1][:10]} seed {key[2]}"
            if ra.info.get("group") != rb.info.get("group"):
                diffs.append(f"{label}: group {ra.info.get('group')} vs"
                             f" {rb.info.get('group')}")  # fmt: skip
            ha, hb = ra.info.get("group_run", ra.id), rb.info.get("group_run", rb.id)
            if (ha, hb) not in groups:
                arrays_a = old.load_arrays(ha, "result")
                arrays_b = new.load_arrays(hb, "result")
                n_arrays += len(arrays_a)
                diffs += compare_arrays(label, arrays_a, arrays_b)
                groups[(ha, hb)] = 1
            ma, mb = old.metrics(ra.id), new.metrics(rb.id)
            for k in TIMINGS:
                ma.pop(k, None), mb.pop(k, None)
            diffs += compare_arrays(
                f"{label} history",
                {f"{k}.{f}": getattr(v, f) for k, v in ma.items() for f in v._fields},
                {f"{k}.{f}": getattr(v, f) for k, v in mb.items() for f in v._fields},
            )
            ca, cb = claims_of(old, ra.id), claims_of(new, rb.id)
            for name in sorted(ca.keys() | cb.keys()):
                if ca.get(name) != cb.get(name):
                    diffs.append(
                        f"{label}: claim {name}: {ca.get(name)} vs {cb.get(name)}"
                    )
        return diffs, len(a.keys() & b.keys()), n_arrays


# what differs between two SVGs of one figure: the date and matplotlib's random ids
SVG_NOISE = re.compile(rb"<dc:date>[^<]*</dc:date>|\b(?:id|clip-path|xlink:href)"
                       rb"=\"(?:url\()?#?[A-Za-z0-9_-]+\)?\"")  # fmt: skip


def compare_reports(old: Path, new: Path) -> tuple[list[str], int]:
    """Return (differences, files compared) of two report folders' figures."""
    names = {p.relative_to(old) for p in old.rglob("*") if p.suffix in (".png", ".svg")}
    names |= {
        p.relative_to(new) for p in new.rglob("*") if p.suffix in (".png", ".svg")
    }
    diffs = []
    for name in sorted(names | {Path("claims.json")}):
        a, b = old / name, new / name
        if not (a.exists() and b.exists()):
            diffs.append(f"{name}: only in {'the old' if a.exists() else 'the new'}")
            continue
        da, db = a.read_bytes(), b.read_bytes()
        if name.suffix == ".svg":
            da, db = SVG_NOISE.sub(b"", da), SVG_NOISE.sub(b"", db)
        if da != db:
            diffs.append(f"{name}: differs")
    return diffs, len(names) + 1


def main(argv: list[str] | None = None) -> int:
    """Compare the stores named on the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the reference store (runs.sqlite)")
    parser.add_argument("new", type=Path, help="the store to check against it")
    parser.add_argument("--reports", type=Path, nargs=2, metavar=("OLD", "NEW"),
                        help="also compare two report folders (--out)")  # fmt: skip
    args = parser.parse_args(argv)
    diffs, n_seeds, n_arrays = compare(args.old, args.new)
    what = f"{n_seeds} seeds and {n_arrays} result arrays"
    if args.reports:
        more, n_files = compare_reports(*args.reports)
        diffs += more
        what += f" and {n_files} report files"
    for line in diffs:
        print(line)
    verdict = "identical" if not diffs else f"{len(diffs)} differences"
    print(f"{what} compared: {verdict}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
