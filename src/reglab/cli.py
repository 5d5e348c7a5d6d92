"""The reglab command: reproduce the post's figures and check its claims."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from reglab import experiments
from reglab.lab import outputs


def _parse_names(only: str | None, everything: bool = False) -> list[str]:
    if only is None:
        return list(experiments.NAMES if everything else experiments.POST)
    names = [n.strip().replace("-", "_") for n in only.split(",") if n.strip()]
    if not names:
        raise SystemExit(
            f"reglab: --only {only!r} names no experiment; choose from"
            f" {', '.join(experiments.NAMES)}"
        )
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


def _open_lab(args: argparse.Namespace):
    """Return the Lab on --store / $REGLAB_STORE (created if missing)."""
    from reglab.lab.runner import Lab
    from reglab.store import Store

    return Lab(Store(getattr(args, "store", None)), force=getattr(args, "force", False))


def _download(args: argparse.Namespace) -> None:
    """Fetch the full datasets (checksummed) and point $REGLAB_DATA at them."""
    if not getattr(args, "download", False):
        return
    from reglab import data
    from reglab.data.vision import ENV_DATA, default_cache_dir

    root = Path(os.environ.get(ENV_DATA) or default_cache_dir())
    for name in ("mnist", "fashion_mnist"):
        for split in ("train", "test"):
            data.load(name, split=split, data_dir=root, download=True)
    os.environ[ENV_DATA] = str(root)  # workers inherit it
    print(f"full datasets in {root}", file=sys.stderr)


def _execute(args, jobs_list, out: Path | None, console, on_done=None):
    """Run jobs through the store with bars; return the Done list."""
    from reglab.lab.driver import execute, make_executor

    lab = _open_lab(args)
    kind = getattr(args, "executor", "local")
    executor = make_executor(getattr(args, "jobs", 1), len(jobs_list), kind)
    with lab.lock(jobs_list):
        return execute(
            lab, jobs_list, out=out, executor=executor, console=console,
            no_progress=args.no_progress, on_done=on_done,
        )  # fmt: skip


def reproduce(args: argparse.Namespace) -> int:
    """Run (or reload) each experiment, render figures and claims, write the report."""
    from rich.console import Console

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
    jobs = []
    for name in names:  # build every config first: bad settings fail before training
        cfg = experiments.get(name).Config(seeds=tuple(range(args.seeds)))
        jobs.append((name, cfg.quick() if args.quick else cfg))
    whole = names in (list(experiments.POST), list(experiments.NAMES))
    args.title = None if whole else f"reglab reproduce: {', '.join(names)}"
    args.title = args.title and args.title + (" (quick run)" if args.quick else "")
    outputs.claim_folder(out, "reproduce", ", ".join(names), same=", ".join(names),
                         overwrite=args.overwrite)  # fmt: skip
    _check_memory(jobs)
    _start_jax()  # after every check: a refused command never starts JAX
    _download(args)
    return _render_jobs(args, jobs, out, Console(stderr=True))


def _render_jobs(args, jobs, out: Path, console) -> int:
    """Train or load jobs, render their sections, write the report; print a summary."""
    start = time.perf_counter()
    done = outputs.Outputs(quick=args.quick)
    try:
        finished = _execute(
            args, jobs, out, console, on_done=lambda d: done.add(d.section, console)
        )
    finally:  # an interrupted or failing run still reports what finished
        if done.sections:
            order = {n: i for i, (n, _) in enumerate(jobs)}
            done.sections.sort(key=lambda s: order[s.name])
            page = outputs.write_outputs(
                out, done, args.quick, time.perf_counter() - start, args.title
            )
            n_pass = sum(c.passed for s in done.sections for c in s.claims)
            n_all = sum(len(s.claims) for s in done.sections)
            console.print(
                f"{n_pass} of {n_all} claims pass; total"
                f" {time.perf_counter() - start:.1f} s"
            )
            if not getattr(args, "json", False):
                print(f"report: {page.resolve()}")
    if getattr(args, "json", False):
        print(json.dumps([_done_json(d) for d in finished], indent=2))
    return 0


def _done_json(d) -> dict:
    """Return a finished job as JSON: runs, config, claims, whether it trained."""
    return {
        "experiment": d.name,
        "runs": {str(s): r for s, r in sorted(d.plan.runs.items())},
        "trained": d.trained,
        "config": d.result.config,
        "claims": [c.to_dict() for c in d.claims],
    }


def _settings(args: argparse.Namespace) -> tuple[dict, dict]:
    """Return (settings, grid axes) from -c FILE.toml, --set and --grid."""
    from reglab.lab.overrides import load_toml, parse_sets
    from reglab.lab.sweep import parse_grid

    settings, axes = load_toml(args.config) if args.config else ({}, {})
    settings.pop("plugins", None)  # loaded before any work (_load_plugins)
    settings |= parse_sets(args.set)
    for item in getattr(args, "grid", None) or []:
        key, values = parse_grid(item)
        axes[key] = values
    for key, values in axes.items():
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice and key != "metrics":
            raise SystemExit(
                f"reglab: --grid {key} lists {twice[0]!r} twice ({values}) — each"
                " value once: the same point would be trained and stored twice"
            )
    return settings, axes


def _experiment(name: str):
    try:
        return experiments.get(name.replace("-", "_"))
    except ValueError as e:
        raise SystemExit(f"reglab: {e}") from None


def run(args: argparse.Namespace) -> int:
    """Run one experiment with any settings changed; figures, claims, report."""
    from rich.console import Console

    from reglab.lab.overrides import build_config

    mod = _experiment(args.experiment)
    settings, axes = _settings(args)
    if axes:
        raise SystemExit(
            f"reglab: {args.config} has a [sweep] table — use `reglab sweep"
            f" {mod.NAME} -c {args.config}`"
        )
    cfg = build_config(mod, settings, seeds=args.seeds, quick=args.quick)
    from reglab.experiments.base import config_dict
    from reglab.store import config_hash

    what = f"{mod.NAME} {config_hash(config_dict(cfg))[:8]}"
    out = Path(args.out or Path("reglab-run") / what.replace(" ", "-"))
    _check_writable(out)
    outputs.claim_folder(out, "run", what, same=mod.NAME, overwrite=args.overwrite)
    args.title = outputs.run_title(mod.NAME, settings, args.quick)
    _check_memory([(mod.NAME, cfg)])
    _start_jax()
    _download(args)
    return _render_jobs(args, [(mod.NAME, cfg)], out, Console(stderr=True))


def sweep(args: argparse.Namespace) -> int:
    """Run the product of the grid axes; report claims against each axis."""
    from rich.console import Console

    from reglab.lab.sweep import grid_points, write_summary
    from reglab.lab.sweep_report import write_sweep_report

    name = args.experiment.replace("-", "_")
    if name not in experiments.NAMES:
        _experiment(name)  # the one-line error
    settings, axes = _settings(args)
    if not axes:
        raise SystemExit(
            "reglab: sweep needs at least one --grid KEY=V1,V2 (or a [sweep] table)"
        )
    chosen = [*axes.pop("metrics", []), *args.metric]  # [sweep] metrics: not an axis
    points = grid_points(axes)
    console = Console(stderr=True)
    start = time.perf_counter()
    what = f"{name} {_sweep_name(args, name, settings, axes)}"
    if args.executor == "ray":  # a missing Ray is refused before a folder is made
        from reglab.lab.ray_executor import require_ray

        require_ray()
    args.out = args.out or str(Path("reglab-sweep") / what.replace(" ", "-"))
    _check_writable(Path(args.out))
    outputs.claim_folder(Path(args.out), "sweep", what, same=name,
                         overwrite=args.overwrite)  # fmt: skip
    key, rows = _replay(args, name, settings, axes)
    from reglab.lab.sweep_metrics import add_metrics
    from reglab.store import Store

    if rows is None:
        rows = _sweep(args, name, settings, axes, points, console, chosen)
        with Store(args.store) as store:
            store.record_sweep(key, name, rows)
    if chosen:
        with Store(args.store) as store:
            add_metrics(store, name, rows, chosen)
    out = Path(args.out)
    _check_writable(out)
    write_summary(out, rows)
    title = f"reglab sweep: {name} over {', '.join(axes)}" + (
        " (quick run)" if args.quick else ""
    )
    page = write_sweep_report(out, name, title, rows)
    n_trained = sum(r["trained"] for r in rows)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        outputs.print_sweep(rows, console)
        print(f"sweep: {out.resolve() / 'sweep.json'}; report: {page.resolve()}")
    console.print(
        f"{len(points)} points ({n_trained} trained, {len(points) - n_trained} from the"
        f" store) in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _sweep_name(args, name: str, settings: dict, axes: dict) -> str:
    """Return a short name of the sweep's inputs that no code edit changes."""
    from reglab.lab.replay import sweep_key

    return sweep_key(name, settings, axes, seeds=args.seeds, quick=args.quick,
                     version="")[:8]  # fmt: skip


def _replay(args, name: str, settings: dict, axes: dict) -> tuple[str, list | None]:
    """Return the sweep's key and its recorded points if they still hold (no JAX)."""
    from reglab.lab.replay import recorded

    fresh = args.force or args.download  # --download: the user wants the data now
    return recorded(args.store, name, settings, axes, seeds=args.seeds,
                    quick=args.quick, look=not fresh)  # fmt: skip


def _sweep(args, name, settings, axes, points, console, chosen) -> list[dict]:
    """Check every point, train or load each through the store; return the rows."""
    if args.executor == "ray":  # before JAX: Ray forks its daemons
        from reglab.lab.ray_executor import connect

        connect(args.address, args.jobs or None)
    from reglab.lab.driver import JobsFailed
    from reglab.lab.overrides import build_config, check_key
    from reglab.lab.sweep import summarize
    from reglab.lab.sweep_metrics import first_point_check, stored_check
    from reglab.store import Store

    mod = _experiment(name)
    for key in axes:
        check_key(key, mod.Config, mod.NAME)
    configs = [  # every point is checked before anything trains
        build_config(mod, settings | p, seeds=args.seeds, quick=args.quick)
        for p in points
    ]
    _check_distinct(points, configs)
    _check_memory([(mod.NAME, c) for c in configs])
    _confirm_size(args, mod.NAME, len(points), len(configs[0].seeds))
    _check_writable(Path(args.out))  # first: --store DIR/ with --out DIR/o is a folder
    _start_jax(platform=args.executor != "ray")  # Ray's tasks may run on other hosts
    if chosen:
        with Store(args.store) as store:  # names known from a stored run: refused now
            stored_check(store, chosen, mod.NAME)
    _download(args)
    try:
        check = first_point_check(chosen, mod.NAME)
        done = _execute(args, [(mod.NAME, c) for c in configs], None, console, check)
    except JobsFailed as e:  # name each failed point by its settings
        labels = [" ".join(f"{k}={v}" for k, v in p.items()) for p in points]
        raise JobsFailed(e.failed, labels, "points") from None
    return summarize(points, done)


def _check_memory(jobs: list[tuple[str, object]]) -> None:
    """Refuse a config whose records and tables cannot fit here, before JAX starts."""
    from reglab.lab.memory import check_memory
    from reglab.placement import requested_cpu_devices

    devices = requested_cpu_devices()
    for name, cfg in jobs:
        check_memory(name, cfg, devices)


ASK_ABOVE_RUNS = 100  # a sweep training more runs than this is confirmed first


def _seconds_per_run(store_path: str | None, name: str) -> float | None:
    """Return the median training seconds per seed of name's stored runs, if any."""
    from reglab.store import Store, resolve_path

    if not resolve_path(store_path).is_file():
        return None
    with Store(store_path) as store:
        runs = store.list_runs(name, "finished")[:20]
    per_seed = [
        r.info["timings"]["total_s"] / len(r.info.get("group", [r.seed]))
        for r in runs
        if "total_s" in r.info.get("timings", {})
    ]
    return sorted(per_seed)[len(per_seed) // 2] if per_seed else None


def _confirm_size(args, name: str, n_points: int, n_seeds: int) -> None:
    """Ask before a sweep past ASK_ABOVE_RUNS runs (refuse without a terminal)."""
    n_runs = n_points * n_seeds
    if n_runs <= ASK_ABOVE_RUNS or args.yes:
        return
    each = _seconds_per_run(args.store, name)
    if each is None:
        time_ = f"time unknown: no finished {name} run in the store to time it by"
    else:
        total = n_runs * each / max(1, args.jobs or os.cpu_count() or 1)
        hours = f"{total / 3600:.1f} h" if total >= 3600 else f"{total / 60:.0f} min"
        time_ = f"about {hours} at {each:.2g} s a run, timed from stored {name} runs"
    size = (
        f"this sweep trains {n_points} points x {n_seeds} seed"
        f"{'s' if n_seeds > 1 else ''} = {n_runs} runs ({time_})"
    )
    if sys.stdin.isatty() and sys.stderr.isatty():
        print(f"reglab: {size}. Start it? [y/N] ", end="", file=sys.stderr, flush=True)
        if input().strip().lower() in ("y", "yes"):
            return
        raise SystemExit("reglab: sweep not started")
    raise SystemExit(
        f"reglab: {size} — add --yes to start it, or narrow the grid (sweeps of more"
        f" than {ASK_ABOVE_RUNS} runs are confirmed first)"
    )


def _check_distinct(points: list[dict], configs: list) -> None:
    """Refuse two grid points that make the same config (1 and 1.0 of a float)."""
    from reglab.experiments.base import config_dict

    seen: dict[str, dict] = {}
    for point, cfg in zip(points, configs, strict=True):
        key = json.dumps(config_dict(cfg), sort_keys=True)
        if key in seen:
            raise SystemExit(
                f"reglab: the grid points {seen[key]} and {point} make the same"
                " config — each point once: it would be trained and stored twice"
            )
        seen[key] = point


def list_experiments(args: argparse.Namespace) -> int:
    """Print each experiment and its default settings (or them as JSON)."""
    from reglab import regularizers, settings  # the registry fills the table
    from reglab.experiments.base import config_dict

    rows = settings.describe()
    if args.json:
        listed = {
            "experiments": {
                name: {
                    "in_post": name in experiments.POST,
                    "defaults": config_dict(experiments.get(name).Config()),
                }
                for name in experiments.NAMES
            },
            "settings": [
                dict(zip(("name", "default", "allowed", "meaning"), r, strict=True))
                for r in rows
            ],  # fmt: skip
        }
        print(json.dumps(listed, indent=2))
        return 0
    for name in experiments.NAMES:
        cfg = experiments.get(name).Config()
        fields = ", ".join(
            f"{f.name}={getattr(cfg, f.name)!r}" for f in dataclasses.fields(cfg)
        )
        where = "" if name in experiments.POST else " (beyond the post: --all)"
        print(f"{name}{where}: {fields}")
    print("\nper-member settings (reglab.settings; one value per ensemble member):")
    plugins = regularizers.plugin_rows()
    if plugins:
        print(f"  (plug-ins: {', '.join(s.name for s in plugins)})")
    width = max(len(r[0]) for r in rows)
    for name, default, allowed, meaning in rows:
        print(f"  {name:<{width}}  {default:<8}  {allowed:<13}  {meaning}")
    return 0


def playground(args: argparse.Namespace) -> int:
    """Serve the live playground until interrupted."""
    _check_port(args.host, args.port)  # before the app's imports: in a second
    from reglab.playground import serve

    _start_jax()
    serve(args.host, args.port, open_browser=not args.no_browser, store=args.store)
    return 0


def doctor(args: argparse.Namespace) -> int:
    """Say what is wrong with a run store; write a damaged one's runs to a new one."""
    from reglab.store import resolve_path
    from reglab.store.doctor import examine

    into = Path(args.into) if args.into else None
    for line in examine(resolve_path(args.store), into):
        print(line)
    return 0


def _check_port(host: str, port: int) -> None:
    """Refuse a port out of range or already taken, before JAX or uvicorn start."""
    import socket

    if not 1 <= port <= 65535:
        raise SystemExit(
            f"reglab: --port must be in [1, 65535], got {port} — e.g. --port 8765"
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn
            probe.bind(address)
    except OSError as err:
        why = err.strerror or str(err)
        raise SystemExit(
            f"reglab: cannot serve on {host}:{port} ({why}) — another program may"
            f" hold it; choose another with --port, e.g. --port {port % 65535 + 1}"
        ) from None


STORE_HELP = "run store (default ./reglab-runs/runs.sqlite, or $REGLAB_STORE)"


def _common(p: argparse.ArgumentParser, *, out: bool = True) -> None:
    """Add the options reproduce, run and sweep share."""
    p.add_argument("--quick", action="store_true", help="cut epochs: a smoke run")
    if out:
        p.add_argument(
            "--out", default="reglab-out",
            help="output directory (reproduce: reglab-out; run and sweep: a folder"
            " of their own under reglab-run/ or reglab-sweep/)",
        )  # fmt: skip
        p.add_argument(
            "--overwrite", action="store_true",
            help="replace another command's report in --out",
        )  # fmt: skip
    p.add_argument("--store", help=STORE_HELP)
    p.add_argument("--force", action="store_true", help="retrain even if stored")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument(
        "--download", action="store_true",
        help="fetch the full MNIST and Fashion-MNIST (checksummed) before running",
    )  # fmt: skip
    p.add_argument(
        "--jobs", type=int, default=0,
        help="experiments (or sweep points) at once, each in its own process"
        " (default: one per core)",
    )  # fmt: skip
    _plugin_option(p)


def _plugin_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import a regularizer plug-in module (repeatable); its settings then"
        " work like the built-ins'",
    )  # fmt: skip


def _load_plugins(args: argparse.Namespace) -> None:
    """Import --plugin modules and a -c file's top-level plugins, before any work."""
    from reglab.lab import LabError
    from reglab.lab.overrides import load_toml

    modules = list(getattr(args, "plugin", None) or [])
    if getattr(args, "config", None):
        listed = load_toml(args.config)[0].get("plugins", [])
        if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
            raise LabError(
                f"plugins in {args.config} must be a list of module names, got"
                f' {listed!r} — e.g. plugins = ["reglab_confidence_penalty"]'
            )
        modules += listed
    if modules:
        from reglab import regularizers

        try:
            regularizers.load_plugins(modules)
        except ValueError as e:
            raise LabError(str(e)) from None


def _settings_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment name (reglab list)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a Config setting, VALUE as TOML: epochs=500, l2_strengths=[0,0.01]",
    )  # fmt: skip
    p.add_argument("-c", "--config", metavar="FILE.toml", help="settings from TOML")
    p.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: the Config's)")


def parser() -> argparse.ArgumentParser:
    """Return the reglab argument parser."""
    top = argparse.ArgumentParser(prog="reglab", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="regenerate every figure of the post")
    which = rep.add_mutually_exclusive_group()
    which.add_argument("--only", help="comma-separated experiment names")
    which.add_argument(
        "--all",
        action="store_true",
        help="the post's experiments and those beyond it: "
        + ", ".join(experiments.BEYOND),
    )
    rep.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="seeds per experiment (default 3: claims get intervals; 1 is the post's"
        " single run)",
    )
    _common(rep)
    rep.set_defaults(func=reproduce)
    one = sub.add_parser("run", help="one experiment with any settings changed")
    _settings_options(one)
    _common(one)
    one.set_defaults(func=run, out=None)
    swp = sub.add_parser("sweep", help="the product of --grid axes, each point a run")
    _settings_options(swp)
    swp.add_argument(
        "--grid", action="append", default=[], metavar="KEY=V1,V2,...",
        help="a grid axis: values, or range(a,b[,step]) (b excluded)",
    )  # fmt: skip
    swp.add_argument(
        "--metric", action="append", default=[], metavar="NAME",
        help="a Result number per seed to show against each axis, e.g. l2_test_acc/3"
        " (a history's last value: l2_train_loss_curve/3)",
    )  # fmt: skip
    _common(swp)
    swp.add_argument(
        "--executor", choices=("local", "ray"), default="local",
        help="local: worker processes here; ray: one Ray task per point (reglab[ray])",
    )  # fmt: skip
    swp.add_argument(
        "--address", metavar="ADDR",
        help="with --executor ray: an existing Ray cluster (default: a local Ray)",
    )  # fmt: skip
    swp.add_argument(
        "--yes", action="store_true",
        help=f"start a sweep of more than {ASK_ABOVE_RUNS} runs without asking",
    )  # fmt: skip
    swp.set_defaults(func=sweep, out=None)
    lst = sub.add_parser("list", help="list the experiments and their settings")
    _plugin_option(lst)
    lst.add_argument("--json", action="store_true", help="print them as JSON")
    lst.set_defaults(func=list_experiments)
    from reglab.lab.inspect import add_parsers

    add_parsers(sub, STORE_HELP)
    play = sub.add_parser("playground", help="train the post's networks live in a page")
    play.add_argument("--port", type=int, default=8765, help="default 8765")
    play.add_argument(
        "--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)"
    )
    play.add_argument("--no-browser", action="store_true", help="do not open a browser")
    play.add_argument(
        "--store", help="run store that 'save' writes to (default: ./reglab-runs)"
    )
    _plugin_option(play)
    play.set_defaults(func=playground)
    doc = sub.add_parser(
        "doctor", help="check a run store; recover a damaged one's runs"
    )
    doc.add_argument("--store", help=STORE_HELP)
    doc.add_argument(
        "--into", help="new store to write (default: beside it, .recovered)"
    )
    doc.set_defaults(func=doctor)
    return top


def _start_jax(*, platform: bool = True) -> None:
    """Set XLA's level and one JAX CPU device per core, before JAX starts; with
    platform, start the backend $JAX_PLATFORMS names (failing here, not in a run)."""
    import jax

    from reglab.lab import LabError
    from reglab.placement import (
        ENV,
        available_cores,
        claim_cpu_devices,
        configure_xla,
        requested_cpu_devices,
    )

    n, cores = requested_cpu_devices(), available_cores()
    unset = jax.config.jax_num_cpu_devices == -1  # else chosen already (a test's)
    if os.environ.get(ENV, "").strip() and n > cores and unset:
        raise LabError(
            f"{ENV}={n} asks for more CPU devices than the {cores} cores this process"
            f" may use — use at most {cores}, or unset it for one device per core"
        )
    configure_xla()  # before any JAX computation creates the backend
    claim_cpu_devices()
    chosen = os.environ.get("JAX_PLATFORMS", "").strip()
    if platform and chosen:
        try:
            jax.devices()
        except Exception as err:  # noqa: BLE001 - jax raises a bare AssertionError
            why = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise LabError(
                f"JAX_PLATFORMS={chosen} names a platform JAX cannot start here"
                f" ({type(err).__name__}{': ' + why if why else ''}) — unset"
                " JAX_PLATFORMS to train on the CPU, or install JAX for that device"
                " (e.g. pip install 'jax[cuda12]' for NVIDIA GPUs)"
            ) from None


def _store_folder(args: argparse.Namespace) -> None:
    """Read --store DIR/ (or $REGLAB_STORE=DIR/) as the folder it names."""
    from reglab.store.runs import DEFAULT_PATH, ENV

    given = getattr(args, "store", None) or os.environ.get(ENV, "").strip()
    if given and given.endswith(("/", os.sep)):  # Path() drops the slash
        args.store = str(Path(given) / DEFAULT_PATH.name)


def _quiet_broken_pipe() -> int:
    """Exit 0 when stdout's reader has gone (`reglab runs --json | head`)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's final flush must not fail again
    return 0


def _terminated(signum: int, frame) -> None:
    """SIGTERM (kill, a scheduler's stop) takes Ctrl-C's path: runs end interrupted."""
    del signum, frame
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the reglab console script: known errors print one line."""
    import signal
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return _main(argv)
    except BrokenPipeError:
        return _quiet_broken_pipe()
    finally:
        if main_thread:  # main() called in-process (tests) leaves no handler behind
            signal.signal(signal.SIGTERM, before)


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    from reglab.lab import LabError
    from reglab.store import StoreError

    _store_folder(args)
    try:
        if getattr(args, "address", None) and args.executor != "ray":
            raise LabError("--address needs --executor ray")
        _load_plugins(args)  # spawned workers inherit them ($REGLAB_PLUGINS)
        return args.func(args)  # each starts JAX after its checks, if it trains
    except (LabError, StoreError, ValueError) as err:
        if isinstance(err, ValueError) and "REGLAB_" not in str(err):
            raise
        raise SystemExit(f"reglab: {err}") from None
    except BrokenPipeError:  # a ConnectionError, but not a download's
        return _quiet_broken_pipe()
    except (FileNotFoundError, ConnectionError) as err:  # data files, downloads
        raise SystemExit(f"reglab: {err}") from None
    except KeyboardInterrupt:
        print("reglab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
