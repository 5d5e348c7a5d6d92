"""The ``reglab`` command: reproduce the post's figures and check its claims."""

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


def _enable_compile_cache() -> None:
    """Keep compiled programs across processes: later runs skip most compilation."""
    import jax

    cache = Path(os.environ.get("REGLAB_CACHE", Path.home() / ".cache" / "reglab"))
    jax.config.update("jax_compilation_cache_dir", str(cache / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _parse_names(only: str | None) -> list[str]:
    if not only:
        return list(experiments.NAMES)
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

    names = _parse_names(args.only)
    if args.seeds < 1:
        raise SystemExit(
            f"reglab: --seeds must be >= 1, got {args.seeds}; use 1 for the post's runs"
        )
    out = Path(args.out)
    _check_writable(out)
    configs = {}
    for name in names:  # build every config first: bad settings fail before training
        mod = experiments.get(name)
        cfg = mod.Config(seeds=tuple(range(args.seeds)))
        configs[name] = cfg.quick() if args.quick else cfg
    _enable_compile_cache()

    console = Console(stderr=True)
    start = time.perf_counter()
    done = _Outputs()
    try:
        for name in names:
            _one_experiment(name, configs[name], out, args, console, done)
    finally:  # an interrupted or failing run still reports what finished
        if done.sections:
            page = _write_outputs(out, done, args.quick, time.perf_counter() - start)
            n_pass = sum(c["passed"] for c in done.claims)
            console.print(
                f"{n_pass} of {len(done.claims)} claims pass;"
                f" total {time.perf_counter() - start:.1f} s"
            )
            print(f"report: {page.resolve()}")
    return 0


@dataclasses.dataclass
class _Outputs:
    sections: list = dataclasses.field(default_factory=list)
    claims: list = dataclasses.field(default_factory=list)
    metrics: dict = dataclasses.field(default_factory=dict)


def _one_experiment(name, cfg, out: Path, args, console, done: _Outputs) -> None:
    """Train (or reload) one experiment, save it, render its figures and claims."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from reglab.experiments.base import Result, config_dict
    from reglab.report import Section, save_figure, save_slider

    mod = experiments.get(name)
    directory = out / name
    saved = directory / "result.json"
    cached = False
    if not args.force and saved.exists():
        meta = json.loads(saved.read_text())
        cached = meta.get("config") == json.loads(json.dumps(config_dict(cfg)))
    if cached:
        result = Result.load(directory)
        console.print(f"[bold]{name}[/]: re-rendering the saved result")
    else:
        with Progress(
            TextColumn(f"[bold]{name}[/]"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=args.no_progress,
        ) as bar:
            task = bar.add_task(name, total=1.0)

            def progress(done_epochs: int, total: int) -> None:
                bar.update(task, completed=done_epochs / max(total, 1))

            t0 = time.perf_counter()
            result = mod.run(cfg, progress=progress)
            result.timings["total_s"] = time.perf_counter() - t0
        result.save(directory)
        console.print(f"[bold]{name}[/]: trained in {result.timings['total_s']:.1f} s")
    figures = [
        (str(save_figure(f, directory).relative_to(out)), f.caption)
        for f in mod.figures(result)
    ]
    sliders = [
        save_slider(sl, directory / "sliders", out)
        for sl in getattr(mod, "sliders", lambda r: [])(result)
    ]
    claims = mod.claims(result)
    for c in claims:
        mark = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
        console.print(
            f"  {mark} {c.name}: {c.measured:.4g} {c.comparison} {c.threshold:.4g}"
        )
    done.claims += [{"experiment": name, **c.to_dict()} for c in claims]
    done.metrics[name] = {"timings": result.timings, "notes": result.notes} | {
        c.name: c.measured for c in claims
    }
    done.sections.append(
        Section(
            name,
            result.config,
            figures,
            sliders,
            claims,
            result.timings,
            result.notes,
            cached,
        )
    )


def _write_outputs(out: Path, done: _Outputs, quick: bool, total: float) -> Path:
    """Write claims.json, metrics.json, metrics.csv and index.html; return the page."""
    from reglab.report import write_report

    (out / "claims.json").write_text(json.dumps(done.claims, indent=2))
    (out / "metrics.json").write_text(json.dumps(done.metrics, indent=2))
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["experiment", "claim", "measured", "threshold", "passed"])
        for c in done.claims:
            writer.writerow(
                [c["experiment"], c["name"], c["measured"], c["threshold"], c["passed"]]
            )
    return write_report(
        out,
        done.sections,
        title="reglab: regularization, reproduced" + (" (quick run)" if quick else ""),
        versions=_versions(),
        total_seconds=total,
    )


def list_experiments(args: argparse.Namespace) -> int:
    """Print each experiment and its default settings."""
    del args
    for name in experiments.NAMES:
        cfg = experiments.get(name).Config()
        fields = ", ".join(
            f"{f.name}={getattr(cfg, f.name)!r}" for f in dataclasses.fields(cfg)
        )
        print(f"{name}: {fields}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the reglab console script."""
    parser = argparse.ArgumentParser(prog="reglab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="regenerate every figure of the post")
    rep.add_argument("--only", help="comma-separated experiment names")
    rep.add_argument("--quick", action="store_true", help="cut epochs: a smoke run")
    rep.add_argument("--out", default="reglab-out", help="output directory")
    rep.add_argument("--seeds", type=int, default=1, help="seeds per experiment")
    rep.add_argument("--force", action="store_true", help="retrain even if saved")
    rep.add_argument("--no-progress", action="store_true", help="hide progress bars")
    rep.set_defaults(func=reproduce)
    lst = sub.add_parser("list", help="list the experiments and their settings")
    lst.set_defaults(func=list_experiments)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
