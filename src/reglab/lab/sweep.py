"""Sweeps: the product of grid axes, and the executors that train its points.

``--grid KEY=V1,V2,...`` gives one axis; ``range(a,b[,step])`` is read as Hydra
writes it (b excluded). Points run through an ``Executor``: ``LocalExecutor`` hands
them to spawned worker processes (one per core); a Ray executor can take the same
seam. Workers only train and return Results: the driver alone writes to the store.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import re
import threading
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from reglab.lab import LabError
from reglab.lab.overrides import parse_value, split_assignment

RANGE = re.compile(r"range\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*(?:,\s*([^,()]+?)\s*)?\)")


def parse_range(text: str) -> list[float | int] | None:
    """Return the values of 'range(a,b[,step])' (b excluded), or None if not one."""
    m = RANGE.fullmatch(text.strip())
    if m is None:
        return None
    a, b, step = (parse_value(g) if g else None for g in m.groups())
    step = 1 if step is None else step
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)):
        raise LabError(f"range bounds must be numbers, got {text!r}")
    if step == 0:
        raise LabError(f"range step must not be 0, got {text!r}")
    n = max(0, int(-(-(b - a) // step)))  # ceil((b - a) / step)
    values = [a + i * step for i in range(n)]
    if any(isinstance(v, float) for v in (a, b, step)):
        values = [round(float(v), 12) for v in values]  # 0.1 + 2*0.1 -> 0.3
    if not values:
        raise LabError(f"{text} is empty — the end is excluded, as in Python")
    return values


def parse_grid(item: str) -> tuple[str, list[Any]]:
    """Return (key, values) of one --grid KEY=V1,V2,... or KEY=range(a,b[,step])."""
    key, text = split_assignment(item, "--grid")
    parts = [v.strip() for v in text.split(",")]
    if not text or not all(parts):
        raise LabError(
            f"--grid {key} needs values separated by commas, got {text!r} — e.g."
            f" --grid {key}=0,0.01 or --grid {key}=range(1,4)"
        )
    values = parse_range(text)
    if values is None:
        try:
            values = tomllib.loads(f"v = [{text}]")["v"]
        except tomllib.TOMLDecodeError:  # bare words: mnist,fashion_mnist
            values = [parse_value(v) for v in parts]
    return key, values


def grid_points(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Return every combination of the axes' values, the last axis fastest."""
    keys = list(axes)
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*axes.values())
    ]


class Executor(Protocol):
    """Runs tasks fn(task, events) somewhere and yields (tag, result or exception).

    events is the executor's way back to the driver (``reglab.lab.worker.Events``):
    the task puts its progress and checkpoints there and the driver drains them.
    """

    def run(
        self, fn: Callable[[Any, Any], Any], tasks: list[tuple[Any, Any]]
    ) -> Iterator[tuple[Any, Any]]: ...

    def drain(self) -> list[Any]: ...

    def close(self, *, cancel: bool) -> None: ...


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as the process that started it is gone."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(3)


class _Inherited:
    """A spawned worker's queue to the driver: multiprocessing hands a queue to a
    process only at its start (``init_worker``'s arguments), so the worker keeps it
    here and ``run_in_worker`` passes it to each task as its events argument."""

    events: Any = None


def init_worker(
    parent: int, events: Any, env: dict[str, str], cores: Any = None
) -> None:
    """Set up a worker process: its parent watch, its cores (one share from the
    cores queue, if given), its devices, its event queue."""
    import contextlib
    import queue

    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    os.environ.update(env)
    _Inherited.events = events
    from reglab.placement import pin_to, prepare_process

    # a worker started beyond the shares dealt finds none: the OS places it
    with contextlib.suppress(queue.Empty):
        pin_to(cores.get(timeout=2) if cores is not None else ())
    prepare_process()


def run_in_worker(fn: Callable[[Any, Any], Any], task: Any) -> Any:
    """Run fn(task, events) in a spawned worker, events being its inherited queue."""
    return fn(task, _Inherited.events)


class LocalExecutor:
    """Spawned worker processes on this machine, one task at a time each."""

    def __init__(self, jobs: int, env: dict[str, str] | None = None) -> None:
        from reglab.placement import deal_cores

        ctx = mp.get_context("spawn")  # a fresh interpreter: no JAX state is forked
        self.events = ctx.Queue()
        self.cores = ctx.Queue()  # each worker takes its own share of the cores
        shares = deal_cores(jobs)
        for share in shares:
            self.cores.put(share)
        self.pool = ProcessPoolExecutor(
            jobs,
            mp_context=ctx,
            initializer=init_worker,
            initargs=(os.getpid(), self.events, env or {}, shares and self.cores),
        )

    def run(
        self, fn: Callable[[Any, Any], Any], tasks: list[tuple[Any, Any]]
    ) -> Iterator[tuple[Any, Any]]:
        """Yield (tag, result or exception) as tasks finish; None while waiting."""
        pending: dict[Future, Any] = {
            self.pool.submit(run_in_worker, fn, task): tag for tag, task in tasks
        }
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            yield None, None  # a tick: the driver drains events, updates bars
            for future in finished:
                tag = pending.pop(future)
                try:
                    yield tag, future.result()
                except BaseException as e:  # noqa: BLE001 - a worker's failure
                    yield tag, e

    def drain(self) -> list[tuple]:
        """Return the events the workers sent since the last drain."""
        import queue

        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except (queue.Empty, OSError, ValueError):
                return out

    def close(self, *, cancel: bool) -> None:
        """Stop the pool; with cancel, drop queued tasks and end running workers."""
        processes = list((self.pool._processes or {}).values())
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)
        if cancel:
            for p in processes:
                p.terminate()
            for p in processes:
                p.join(timeout=2)
                if p.is_alive():
                    p.kill()
        for q in (self.events, self.cores):
            q.cancel_join_thread()
            q.close()


def summarize(points: list[dict[str, Any]], done: list) -> list[dict[str, Any]]:
    """Return one row per grid point: config, runs, each claim's seed mean, interval."""
    from reglab.experiments.base import config_dict

    rows = []
    for point, d in zip(points, done, strict=True):
        claims = {
            c.name: {
                "statement": c.statement,
                "measured": c.measured,
                "interval": list(c.interval) if c.interval else None,
                "per_seed": list(c.per_seed),
                "threshold": c.threshold,
                "comparison": c.comparison,
                "passed": c.passed,
                "agreement": c.agreement,
            }
            for c in d.claims
        }
        rows.append(
            {
                "point": point,
                "config": config_dict(d.cfg),
                "seeds": list(d.cfg.seeds),
                "runs": {str(s): r for s, r in sorted(d.plan.runs.items())},
                "trained": d.trained,
                "claims": claims,
            }
        )
    return rows


def write_summary(out: Any, rows: list[dict[str, Any]]) -> None:
    """Write sweep.json and sweep.csv (a row per grid point and claim or metric)."""
    import csv
    import json

    (out / "sweep.json").write_text(json.dumps(rows, indent=2))
    with open(out / "sweep.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        axes = list(rows[0]["point"]) if rows else []
        head = [*axes, "kind", "name", "mean", "lo", "hi", "passed", "agreement"]
        writer.writerow(head)
        for r in rows:
            at = list(r["point"].values())
            for name, c in r["claims"].items():
                lo, hi = c["interval"] or (c["measured"], c["measured"])
                writer.writerow([*at, "claim", name, c["measured"], lo, hi,
                                 c["passed"], c["agreement"]])  # fmt: skip
            for name, m in r.get("metrics", {}).items():
                writer.writerow([*at, "metric", name, m["mean"], *m["interval"], "",
                                 ""])  # fmt: skip
