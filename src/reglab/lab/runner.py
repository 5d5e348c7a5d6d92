"""One experiment config through the run store: cached seeds load, missing ones train.

A stored run is one seed: its key is (experiment, config hash, seed) and it is reused
only under the same code version (reglab's version + a hash of its .py sources, so an
edit invalidates the cache). Experiments train all their seeds in one program, and a
seed trained beside others is not bit-identical to the same seed trained alone, so a
*group* (the seeds trained together) is the unit of storage: its Result is one
artifact on the group's first run, and each seed's run points at it (info
``group_run``). A request for seeds S loads every group whose seeds all lie in S,
trains the seeds not covered as one new group, and joins the groups along the seed
axis (``merge``): arrays equal in every group are shared, arrays whose leading axis is
each group's seed count are concatenated. An array that fits both (equal across
equally sized groups) is shared if it mirrors a Config value of its name, per seed if
the groups are single seeds, and otherwise, like ragged arrays or per-seed keys, makes
the join impossible: then all of S is trained again as one group. Only the process
that calls these methods (the driver) writes to the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import reglab
from reglab.experiments.base import Result, config_dict
from reglab.store import Run, Store, StoreError, config_hash


@functools.cache
def code_version() -> str:
    """Return reglab's version plus a hash of its .py sources: edits miss the cache."""
    root = Path(reglab.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return f"{reglab.__version__}+{digest.hexdigest()[:12]}"


@dataclasses.dataclass
class Plan:
    """What one request needs: groups to load, seeds to train, what was skipped."""

    name: str
    cfg: Any  # the requested config (seeds S)
    parts: list[tuple[tuple[int, ...], Result]]  # loaded groups, (seeds, Result)
    runs: dict[int, str]  # seed -> run id of the loaded seeds
    train_cfg: Any | None  # the config of the seeds to train; None: all loaded
    notes: list[str]  # unreadable artifacts, resumed seeds, ...

    @property
    def cached(self) -> bool:
        """Whether nothing needs training."""
        return self.train_cfg is None


def _equal(value: Any, array: np.ndarray) -> bool:
    try:
        return np.array_equal(np.asarray(value), array)
    except (TypeError, ValueError):
        return False


def merge(parts: list[tuple[tuple[int, ...], Result]]) -> Result | None:
    """Return the groups joined along the seed axis, or None when that is unsafe."""
    if len(parts) == 1:
        return parts[0][1]
    sizes = [len(seeds) for seeds, _ in parts]
    first = parts[0][1]
    if any(set(r.arrays) != set(first.arrays) for _, r in parts):
        return None
    arrays = {}
    for key in first.arrays:
        values = [r.arrays[key] for _, r in parts]
        per_seed = all(
            v.ndim >= 1 and v.shape[0] == n for v, n in zip(values, sizes, strict=True)
        ) and all(v.shape[1:] == values[0].shape[1:] for v in values)
        shared = all(
            v.shape == values[0].shape and np.array_equal(v, values[0], equal_nan=True)
            for v in values
        )
        if per_seed and shared and len(set(sizes)) == 1:  # per seed or shared?
            mirrors = key in first.config and _equal(first.config[key], values[0])
            if not mirrors and sizes[0] != 1:
                return None  # unknown: the caller trains all seeds together
            shared = mirrors  # a Config value is shared; else single-seed rows
        if shared:
            arrays[key] = values[0]
        elif per_seed:
            arrays[key] = np.concatenate(values)
        else:
            return None
    seeds = [s for group, _ in parts for s in group]
    config = {**first.config, "seeds": seeds}
    timings: dict[str, float] = {}
    for _, r in parts:
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    notes = [n for _, r in parts for n in r.notes]
    return Result(first.name, config, arrays, timings, notes, first.devices)


class Lab:
    """The driver's side of the store: plan, record and assemble experiment runs."""

    def __init__(self, store: Store, *, force: bool = False) -> None:
        self.store, self.force = store, force
        self.version = code_version()
        self._mark_orphans()

    def _mark_orphans(self) -> None:
        """Mark runs whose process died (kill -9, power cut) as interrupted."""
        for run in self.store.list_runs(status="running"):
            if run.orphaned():
                self.store.end_run(
                    run.id, "interrupted", error="its process ended without saying"
                )

    @contextlib.contextmanager
    def lock(self, keys: list[tuple[str, Any]]) -> Iterator[None]:
        """Hold the store's lock on each (experiment, config): a second process
        waits here, then finds the first one's runs in the cache."""
        folder = self.store.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        names = sorted({f"{n}-{config_hash(config_dict(c))[:16]}" for n, c in keys})
        with contextlib.ExitStack() as stack:
            for name in names:  # one order for every process: no deadlock
                fh = stack.enter_context(open(folder / f"{name}.lock", "w"))
                fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def plan(self, name: str, cfg: Any, *, whole: bool = False) -> Plan:
        """Return what cfg needs: load the seeds stored, train the rest (or all)."""
        wanted = tuple(cfg.seeds)
        config = config_dict(cfg)
        parts, runs, notes = [], {}, []
        found: dict[int, Run] = {}
        if not (self.force or whole):
            for seed in wanted:
                run = self.store.find(name, config, seed, self.version)
                if run is not None:
                    found[seed] = run
        holders: dict[str, tuple[int, ...]] = {}
        for seed, run in found.items():
            group = tuple(run.info.get("group", [seed]))
            if set(group) <= set(wanted):  # a group reaching beyond S is retrained
                holders.setdefault(run.info.get("group_run", run.id), group)
        for holder, group in holders.items():
            try:
                result = self.load(holder)
            except StoreError as e:
                notes.append(f"{e}; retraining seeds {list(group)}")
                for seed in group:
                    if seed in found:
                        self.store.end_run(found[seed].id, "failed", error=str(e))
                continue
            parts.append((group, result))
            runs.update({s: found[s].id for s in group if s in found})
        missing = tuple(s for s in wanted if s not in runs)
        train_cfg = dataclasses.replace(cfg, seeds=missing) if missing else None
        return Plan(name, cfg, parts, runs, train_cfg, notes)

    def load(self, run_id: str) -> Result:
        """Return the Result stored on run_id (a group's first run)."""
        run = self.store.get(run_id)
        arrays = self.store.load_arrays(run_id, "result")
        info = run.info
        return Result(
            run.experiment, run.config, arrays, info.get("timings", {}),
            info.get("notes", []), info.get("devices", ""),
        )  # fmt: skip

    def begin(self, plan: Plan) -> list[Run]:
        """Record a running run for each seed about to train; return them."""
        cfg = plan.train_cfg
        config = config_dict(cfg)
        return [
            self.store.start_run(plan.name, config, s, code_version=self.version)
            for s in cfg.seeds
        ]

    def end(self, runs: list[Run], status: str, error: str | None = None) -> None:
        """Mark runs that did not finish as failed or interrupted."""
        for run in runs:
            with contextlib.suppress(StoreError):
                self.store.end_run(run.id, status, error=error)

    def finish(self, plan: Plan, runs: list[Run], result: Result) -> Result | None:
        """Store a trained group; return the whole Result, or None if it won't merge."""
        holder = runs[0].id
        self.store.save_arrays(holder, "result", result.arrays)
        group = [r.seed for r in runs]
        for key in ("compile_s", "run_s", "total_s"):
            if key in result.timings:
                self.store.log_metrics(holder, key, [result.timings[key]])
        for run in runs:
            info = {
                "group": group,
                "group_run": holder,
                "timings": result.timings,
                "notes": result.notes,
                "devices": result.devices,
            }
            self.store.end_run(run.id, "finished", info=info)
            plan.runs[run.seed] = run.id
        parts = [*plan.parts, (tuple(group), result)]
        order = {s: i for i, s in enumerate(plan.cfg.seeds)}
        parts.sort(key=lambda p: order[p[0][0]])
        merged = merge(parts)
        if merged is None or list(merged.config["seeds"]) != list(plan.cfg.seeds):
            return None
        return merged

    def record_claims(self, plan: Plan, claims: list) -> None:
        """Record each claim on each seed's run, with that seed's measured value."""
        for i, seed in enumerate(plan.cfg.seeds):
            run_id = plan.runs.get(seed)
            if run_id is None:
                continue
            rows = []
            for c in claims:
                row = c.to_dict()
                if len(c.per_seed) == len(plan.cfg.seeds):
                    c1 = dataclasses.replace(c, measured=c.per_seed[i])
                    row = {**row, "measured": c1.measured, "passed": c1.passed}
                rows.append(row)
            self.store.record_claims(run_id, rows)
