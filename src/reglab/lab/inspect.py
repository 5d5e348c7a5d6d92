"""What is stored, from the command line: runs, show, compare, export, rm, gc."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from reglab.lab.exporting import (
    damaged,
    export_csv,
    export_json,
    export_metrics_csv,
    export_mlflow,
    json_safe,
    run_record,
    to_toml,
)
from reglab.store import Store


def _print_json(value: Any) -> None:
    print(json.dumps(json_safe(value), indent=2))


def runs(args: argparse.Namespace) -> int:
    """List stored runs, newest first."""
    from reglab.store import STATUSES

    if args.status and args.status not in STATUSES:
        raise SystemExit(
            f"reglab: --status must be one of {', '.join(STATUSES)},"
            f" got {args.status!r}"
        )
    with Store(args.store) as store:
        found = store.list_runs(args.experiment, args.status)
        if args.json:
            _print_json([run_record(store, r) for r in found])
            return 0
        if found:
            print(f"{'run':<12}  {'experiment':<16} {'seed':<8} {'status':<11}"
                  f" {'started (UTC)':<19}  {'config':<8}  claims")  # fmt: skip
        for r in found:
            claims = store.claims(r.id)
            n, passed = len(claims), sum(c["passed"] for c in claims)
            bad = damaged(store, r)  # sizes only: hashing every file would be slow
            print(
                f"{r.id}  {r.experiment:<16} seed {r.seed:<3} {r.status:<11}"
                f" {r.started_utc[:19]}  {r.config_hash[:8]}"
                + (f"  {passed}/{n} claims" if n else "")
                + (f"  ARTIFACT {', '.join(bad)}" if bad else "")
            )
        print(f"{len(found)} runs in {store.path}", file=sys.stderr)
    return 0


def show(args: argparse.Namespace) -> int:
    """Show one run: its config (or TOML), provenance, claims, artifacts."""
    with Store(args.store) as store:
        run = store.get(args.run)
        if args.toml:
            sys.stdout.write(to_toml(run))
            return 0
        record = run_record(store, run, histories=True)
        if args.json:
            _print_json(record)
            return 0
        shown = ("id", "experiment", "seed", "status", "started_utc", "ended_utc",
                 "code_version", "git_revision", "host", "device", "error")  # fmt: skip
        for key in shown:
            if record[key] is not None:
                print(f"{key:>13}: {record[key]}")
        print("       config:")
        for k, v in sorted(run.config.items()):
            print(f"    {k} = {v!r}")
        for c in record["claims"]:
            mark = "pass" if c["passed"] else "FAIL"
            print(f"  {mark} {c['name']}: {c['measured']:.4g} {c['comparison']}"
                  f" {c['threshold']:.4g}")  # fmt: skip
        for name, h in record["metrics"].items():
            steps, values = h["steps"], h["values"]
            print(f"  metric {name}: {len(values)} values at steps {steps[0]}.."
                  f"{steps[-1]}, last {values[-1]:.4g}")  # fmt: skip
        for a in record["artifacts"]:
            state = "" if a["state"] == "ok" else f" — {a['state'].upper()}, retrain it"
            print(f"  artifact {a['name']}: {a['path']} ({a['bytes']} bytes){state}")
    return 0


def compare(args: argparse.Namespace) -> int:
    """Print the settings that differ between runs and their claims side by side."""
    with Store(args.store) as store:
        found = [store.get(r) for r in args.runs]
        keys = sorted(set().union(*(r.config for r in found)))
        differ = {
            k: [r.config.get(k) for r in found]
            for k in keys
            if len({json.dumps(r.config.get(k)) for r in found}) > 1
        }
        claims = [{c["name"]: c for c in store.claims(r.id)} for r in found]
    names = sorted(set().union(*claims))
    table = {
        "runs": [r.id for r in found],
        "experiment": [r.experiment for r in found],
        "seed": [r.seed for r in found],
        "settings that differ": differ,
        "claims": {n: [c.get(n, {}).get("measured") for c in claims] for n in names},
    }
    if args.json:
        _print_json(table)
        return 0
    width = max([len(k) for k in [*differ, *names, "seed"]] + [4])
    row = lambda label, vals: print(  # noqa: E731
        f"{label:<{width}}  " + "  ".join(f"{str(v):>14}" for v in vals)
    )
    row("run", table["runs"])
    row("experiment", table["experiment"])
    row("seed", table["seed"])
    for k, vals in differ.items():
        row(k, vals)
    for n in names:
        row(n, [f"{v:.4g}" if v is not None else "-" for v in table["claims"][n]])
    return 0


def export(args: argparse.Namespace) -> int:
    """Write the stored runs as CSV, JSON or into MLflow."""
    with Store(args.store) as store:
        found = store.list_runs(args.experiment, args.status)
        found.sort(key=lambda r: (r.experiment, r.config_hash, r.seed, r.started_utc))
        if args.format == "mlflow":
            if not args.tracking_uri:
                raise SystemExit("reglab: --format mlflow needs --tracking-uri URI")
            n, there = export_mlflow(store, found, args.tracking_uri)
            print(f"logged {n} runs to {args.tracking_uri} ({there} already there)",
                  file=sys.stderr)  # fmt: skip
            return 0
        if args.format == "csv":
            text = (export_metrics_csv if args.metrics else export_csv)(store, found)
        else:
            text = export_json(store, found)
        bad = {r.id: damaged(store, r, hash_it=True) for r in found}
    for run_id, what in bad.items():
        if what:
            print(f"reglab: run {run_id} has a damaged artifact: {', '.join(what)}"
                  " — retrain it (the same command) or `reglab rm` it",
                  file=sys.stderr)  # fmt: skip
    if args.output:
        with open(args.output, "w", newline="") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def gc(args: argparse.Namespace) -> int:
    """Delete artifact files no run references."""
    with Store(args.store) as store:
        freed = store.gc(grace_s=args.grace)
    if args.json:
        _print_json(freed._asdict())
    else:
        print(f"deleted {freed.files} unreferenced files ({freed.bytes} bytes)")
    return 0


REMOVABLE = ("interrupted", "failed")  # --status: what a clean-up means


def _to_remove(store: Store, args: argparse.Namespace) -> list:
    """Return the runs rm names (ids or --status), refusing what must stay."""
    if bool(args.runs) == bool(args.status):
        raise SystemExit(
            "reglab: rm takes run ids or --status interrupted|failed (not both) —"
            " `reglab runs` lists them"
        )
    if args.status and args.status not in REMOVABLE:
        raise SystemExit(
            f"reglab: rm --status must be one of {', '.join(REMOVABLE)}, got"
            f" {args.status!r} — finished runs are removed by id"
        )
    found = (
        [store.get(r) for r in args.runs]
        if args.runs
        else store.list_runs(args.experiment, args.status)
    )
    ids = {r.id for r in found}
    for r in found:
        if r.status == "running" and not r.orphaned():
            raise SystemExit(
                f"reglab: run {r.id} is running (pid {r.pid} on {r.host}) — stop its"
                " command first (Ctrl-C)"
            )
        holder = r.info.get("group_run", r.id)
        others = [  # the seeds trained beside it load their result from its files
            o.id
            for o in store.list_runs(r.experiment)
            if o.id not in ids and o.info.get("group_run") == holder != o.id
        ]
        if holder == r.id and others:
            raise SystemExit(
                f"reglab: run {r.id} holds the stored result of runs"
                f" {', '.join(others)} (seeds trained together) — remove them too,"
                " or keep it"
            )
    return found


def rm(args: argparse.Namespace) -> int:
    """Delete runs (by id, or all interrupted or failed ones) with their artifacts."""
    with Store(args.store) as store:
        found = _to_remove(store, args)
        for r in found:
            store.delete(r.id)
    if args.json:
        _print_json([r.id for r in found])
    else:
        print(
            f"deleted {len(found)} runs from {store.path} (their artifact files with"
            " them; `reglab gc` collects any left unreferenced)"
        )
    return 0


def add_parsers(sub, store_help: str) -> None:
    """Add runs, show, compare, export and gc to the reglab parser."""
    p = sub.add_parser("runs", help="list stored runs")
    p.add_argument("--experiment")
    p.add_argument("--status", help="running, finished, failed or interrupted")
    p.set_defaults(func=runs)
    p = sub.add_parser("show", help="show one stored run")
    p.add_argument("run", help="run id (a unique prefix is enough)")
    p.add_argument("--toml", action="store_true", help="its config, re-runnable")
    p.set_defaults(func=show)
    p = sub.add_parser("compare", help="settings and claims of runs side by side")
    p.add_argument("runs", nargs="+", help="run ids")
    p.set_defaults(func=compare)
    p = sub.add_parser("export", help="stored runs as csv, json or into mlflow")
    p.add_argument("--format", choices=("csv", "json", "mlflow"), default="json")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (--format mlflow)")
    p.add_argument("--experiment")
    p.add_argument("--status")
    p.add_argument(
        "--metrics", action="store_true",
        help="csv: the metric histories, a row per run, metric and step",
    )  # fmt: skip
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.set_defaults(func=export)
    p = sub.add_parser("rm", help="delete stored runs: by id, or every interrupted")
    p.add_argument("runs", nargs="*", help="run ids (a unique prefix is enough)")
    p.add_argument("--status", help="every run with it: interrupted or failed")
    p.add_argument("--experiment", help="with --status: only this experiment's")
    p.set_defaults(func=rm)
    p = sub.add_parser("gc", help="delete artifact files no run references")
    p.add_argument(
        "--grace", type=float, default=3600.0,
        help="spare files younger than this many seconds (default 3600)",
    )  # fmt: skip
    p.set_defaults(func=gc)
    for name in ("runs", "show", "compare", "export", "rm", "gc"):
        parser = sub.choices[name]
        parser.add_argument("--store", help=store_help)
        if name != "export":
            parser.add_argument("--json", action="store_true", help="print JSON")
