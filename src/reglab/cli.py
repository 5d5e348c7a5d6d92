"""The reglab command: reproduce the post's figures and check its claims."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

from reglab import experiments


def _parse_names(only: str | None, everything: bool = False) -> list[str]:
    if not only:
        return list(experiments.NAMES if everything else experiments.POST)
    names = [n.strip().replace("-", "_") for n in only.split(",") if n.strip()]
    for n in names:
        if n not in experiments.NAMES:
            raise SystemExit(
                f"reglab: unknown experiment {n!r} in --only; choose from"
                f" {', '.join(experiments.NAMES)}"
            )
    return names


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise SystemExit(
            f"reglab: cannot write to --out {str(out)!r} ({err.strerror});"
            " choose a writable directory"
        ) from err


def _versions() -> dict[str, str]:
    import jax
    import matplotlib
    import numpy

    import reglab

    return {
        "reglab": reglab.__version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
    }


def reproduce(args: argparse.Namespace) -> int:
    """Run (or reload) each experiment, render figures and claims, write the report."""
    from rich.console import Console

    from reglab.reproduce import configure_xla

    configure_xla()  # before any JAX computation creates the backend
    names = _parse_names(args.only, args.all)
    if args.seeds < 1:
        raise SystemExit(
            f"reglab: --seeds must be >= 1, got {args.seeds}; use 1 for the post's runs"
        )
    if args.jobs < 0:
        raise SystemExit(
            f"reglab: --jobs must be >= 0 (0 = one per core), got {args.jobs}"
        )
    out = Path(args.out)
    _check_writable(out)
    configs = {}
    for name in names:  # build every config first: bad settings fail before training
        mod = experiments.get(name)
        cfg = mod.Config(seeds=tuple(range(args.seeds)))
        configs[name] = cfg.quick() if args.quick else cfg
    console = Console(stderr=True)
    start = time.perf_counter()
    done = _Outputs(quick=args.quick)
    jobs = min(args.jobs or os.cpu_count() or 1, len(names))
    try:
        if jobs == 1:
            _run_here(names, configs, out, args, console, done)
        else:
            _run_in_workers(names, configs, out, args, console, done, jobs)
    finally:  # an interrupted or failing run still reports what finished
        if done.sections:
            order = {n: i for i, n in enumerate(names)}
            done.sections.sort(key=lambda s: order[s.name])
            page = _write_outputs(out, done, args.quick, time.perf_counter() - start)
            n_pass = sum(c.passed for s in done.sections for c in s.claims)
            n_all = sum(len(s.claims) for s in done.sections)
            console.print(
                f"{n_pass} of {n_all} claims pass; total"
                f" {time.perf_counter() - start:.1f} s"
            )
            print(f"report: {page.resolve()}")
    return 0


@dataclasses.dataclass
class _Outputs:
    quick: bool = False
    sections: list = dataclasses.field(default_factory=list)

    def add(self, section, console) -> None:
        """Keep a finished section and print its outcome."""
        self.sections.append(section)
        what = (
            "re-rendered the saved result"
            if section.cached
            else (f"trained in {section.timings.get('total_s', 0):.1f} s")
        )
        console.print(f"[bold]{section.name}[/]: {what}")
        from reglab.report import failure_reason

        for c in section.claims:
            mark = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
            agree = f" ({c.agreement})" if len(c.per_seed) > 1 else ""
            console.print(
                f"  {mark} {c.name}: {c.measured:.4g} {c.comparison}"
                f" {c.threshold:.4g}{agree}",
                highlight=False,
            )
            if not c.passed:
                console.print(f"       why: {failure_reason(c, self.quick)}")


def _bar(console, disable: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description:<16}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=disable,
    )


def _run_here(names, configs, out, args, console, done: _Outputs) -> None:
    """Run the experiments one after another in this process."""
    from reglab.reproduce import enable_compile_cache, render

    enable_compile_cache()
    for name in names:
        with _bar(console, args.no_progress) as bar:
            task = bar.add_task(name, total=1.0)

            def progress(epochs: int, total: int, bar=bar, task=task) -> None:
                bar.update(task, completed=epochs / max(total, 1))

            section = render(name, configs[name], out, force=args.force,
                             progress=progress)  # fmt: skip
        done.add(section, console)


def _run_in_workers(names, configs, out, args, console, done, jobs: int) -> None:
    """Run the experiments in worker processes, longest first, one per core."""
    import multiprocessing as mp
    import queue
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from reglab.placement import ENV, available_cores
    from reglab.reproduce import worker

    # each worker claims its share of the cores as JAX CPU devices (reglab.placement)
    os.environ.setdefault(ENV, str(max(1, available_cores() // jobs)))
    ctx = mp.get_context("spawn")  # a fresh interpreter: no JAX state is forked
    manager = ctx.Manager()
    events = manager.Queue()
    longest_first = sorted(names, key=experiments.LONGEST_FIRST.index)
    with (
        ProcessPoolExecutor(jobs, mp_context=ctx) as pool,
        _bar(console, args.no_progress) as bar,
    ):
        tasks = {n: bar.add_task(n, total=1.0) for n in longest_first}
        pending = {
            pool.submit(worker, n, configs[n], out, args.force, events): n
            for n in longest_first
        }
        try:
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        name, epochs, total = events.get_nowait()
                    except queue.Empty:
                        break
                    bar.update(tasks[name], completed=epochs / max(total, 1))
                for future in finished:
                    name = pending.pop(future)
                    bar.update(tasks[name], completed=1.0, visible=False)
                    done.add(future.result(), console)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    manager.shutdown()


def _write_outputs(out: Path, done: _Outputs, quick: bool, total: float) -> Path:
    """Write claims.json, metrics.json, metrics.csv and index.html; return the page."""
    from reglab.report import write_report

    claims = [
        {"experiment": s.name, **c.to_dict()} for s in done.sections for c in s.claims
    ]
    metrics = {
        s.name: {"timings": s.timings, "notes": s.notes}
        | {c.name: c.measured for c in s.claims}
        for s in done.sections
    }
    (out / "claims.json").write_text(json.dumps(claims, indent=2))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["experiment", "claim", "measured", "threshold", "passed"])
        for c in claims:
            writer.writerow(
                [c["experiment"], c["name"], c["measured"], c["threshold"], c["passed"]]
            )
    return write_report(
        out,
        done.sections,
        title="reglab: regularization, reproduced" + (" (quick run)" if quick else ""),
        versions=_versions(),
        total_seconds=total,
        quick=quick,
    )


def list_experiments(args: argparse.Namespace) -> int:
    """Print each experiment and its default settings."""
    del args
    for name in experiments.NAMES:
        cfg = experiments.get(name).Config()
        fields = ", ".join(
            f"{f.name}={getattr(cfg, f.name)!r}" for f in dataclasses.fields(cfg)
        )
        where = "" if name in experiments.POST else " (beyond the post: --all)"
        print(f"{name}{where}: {fields}")
    from reglab.settings import describe

    print("\nper-member settings (reglab.settings; one value per ensemble member):")
    rows = describe()
    width = max(len(r[0]) for r in rows)
    for name, default, allowed, meaning in rows:
        print(f"  {name:<{width}}  {default:<8}  {allowed:<13}  {meaning}")
    return 0


def playground(args: argparse.Namespace) -> int:
    """Serve the live playground until interrupted."""
    from reglab.playground import serve

    serve(args.host, args.port, open_browser=not args.no_browser, store=args.store)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the reglab console script."""
    parser = argparse.ArgumentParser(prog="reglab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="regenerate every figure of the post")
    which = rep.add_mutually_exclusive_group()
    which.add_argument("--only", help="comma-separated experiment names")
    which.add_argument(
        "--all",
        action="store_true",
        help="the post's experiments and those beyond it: "
        + ", ".join(experiments.BEYOND),
    )
    rep.add_argument("--quick", action="store_true", help="cut epochs: a smoke run")
    rep.add_argument("--out", default="reglab-out", help="output directory")
    rep.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="seeds per experiment (default 3: claims get intervals; 1 is the post's"
        " single run)",
    )
    rep.add_argument("--force", action="store_true", help="retrain even if saved")
    rep.add_argument("--no-progress", action="store_true", help="hide progress bars")
    rep.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="experiments run at once, each in its own process (default: one per core)",
    )
    rep.set_defaults(func=reproduce)
    lst = sub.add_parser("list", help="list the experiments and their settings")
    lst.set_defaults(func=list_experiments)
    play = sub.add_parser("playground", help="train the post's networks live in a page")
    play.add_argument("--port", type=int, default=8765, help="default 8765")
    play.add_argument(
        "--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)"
    )
    play.add_argument("--no-browser", action="store_true", help="do not open a browser")
    play.add_argument(
        "--store", help="run store that 'save' writes to (default: ./reglab-runs)"
    )
    play.set_defaults(func=playground)
    args = parser.parse_args(argv)
    from reglab.placement import claim_cpu_devices

    try:
        claim_cpu_devices()  # one JAX CPU device per core, before JAX starts
    except ValueError as err:
        raise SystemExit(f"reglab: {err}") from None
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
