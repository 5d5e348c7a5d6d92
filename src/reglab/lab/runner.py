"""One experiment config through the run store: cached seeds load, missing ones train.

A stored run is one seed: its key is (experiment, config hash, seed) and it is reused
only under the same code version (reglab's version + a hash of its .py sources, so an
edit invalidates the cache). Experiments train all their seeds in one program, and a
seed trained beside others is not bit-identical to the same seed trained alone, so a
*group* (the seeds trained together) is the unit of storage: its Result is one
artifact on the group's first run, and each seed's run points at it (info
``group_run``). A request for seeds S loads every group whose seeds all lie in S,
trains the seeds not covered as one new group, and joins the groups along the seed
axis (``merge``): the arrays each Result declares with a seed axis
(``Result.seed_axis``, stored in the run's info) are concatenated, every other array
is shared and must be equal in every group. Ragged per-seed arrays, shared arrays that
differ, or a Result that declares nothing make the join impossible: then all of S is
trained again as one group. Only the process that calls these methods (the driver)
writes to the store.

Resume: while a group trains, the driver keeps its checkpoint, one per ``train``
call of the experiment (``reglab.checkpoint``), as the 'last' checkpoint of the
group's first run, with the group's seeds and run ids. A group cut short (Ctrl-C, or
a kill -9 found by ``_mark_orphans``) is 'interrupted'; the next request for exactly
those seeds restarts the same runs from that checkpoint (``Plan.resume``) and ends
with the numbers of a run never interrupted.

Extend: a request for more epochs of a stored config (``--set epochs=...``) whose
seeds match a finished group that differs only by fewer epochs goes on from that
group's final checkpoint (``Lab._find_shorter``): a run's steps do not depend on its
total, so each train call ends with the longer run's numbers, bit for bit, and is
stored under the longer config's own key. A train call whose record or snapshot
schedule moves with the epochs (log-spaced) cannot go on and trains afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import reglab
from reglab.experiments.base import Result, config_dict
from reglab.lab.histories import seed_histories
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
    resume: dict[int, dict[str, np.ndarray]] | None = None  # train call -> checkpoint
    resume_runs: list[str] | None = None  # the interrupted runs that resume

    @property
    def cached(self) -> bool:
        """Whether nothing needs training."""
        return self.train_cfg is None


def _same(values: list[np.ndarray]) -> bool:
    """Whether the arrays are equal in shape and values (NaN equal to NaN)."""
    first = values[0]
    nan = first.dtype.kind in "fc"  # NaN exists only in floats
    return all(
        v.shape == first.shape and np.array_equal(v, first, equal_nan=nan)
        for v in values
    )


def merge(parts: list[tuple[tuple[int, ...], Result]]) -> Result | None:
    """Return the groups joined along their declared seed axis, or None if they
    cannot join (different arrays, ragged seed rows, shared arrays that differ)."""
    if len(parts) == 1:
        return parts[0][1]
    first = parts[0][1]
    if not first.seed_axis or any(
        set(r.arrays) != set(first.arrays) or set(r.seed_axis) != set(first.seed_axis)
        for _, r in parts
    ):
        return None  # nothing declared, or groups of different shapes of result
    arrays = {}
    for key in first.arrays:
        values = [r.arrays[key] for _, r in parts]
        if key not in first.seed_axis:  # shared: the same in every group
            if not _same(values):
                return None
            arrays[key] = values[0]
        elif all(v.shape[1:] == values[0].shape[1:] for v in values):
            arrays[key] = np.concatenate(values)  # (S, ...) in the parts' order
        else:
            return None  # ragged rows (e.g. padded to each group's longest)
    seeds = [s for group, _ in parts for s in group]
    config = {**first.config, "seeds": seeds}
    timings: dict[str, float] = {}
    for _, r in parts:
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    notes = [n for _, r in parts for n in r.notes]
    return Result(first.name, config, arrays, timings, notes, first.devices,
                  first.seed_axis)  # fmt: skip


def _calls(saved: dict[str, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
    """Return a group's stored checkpoint split by train call: call -> arrays."""
    calls: dict[int, dict[str, np.ndarray]] = {}
    for key, value in saved.items():
        head, _, rest = key.partition("/")
        if head.startswith("call"):
            calls.setdefault(int(head[4:]), {})[rest] = value
    return calls


@contextlib.contextmanager
def _held(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path, a file that exists only while it is held
    (a sweep of 10,000 points leaves no 10,000 lock files behind)."""
    while True:
        fh = open(path, "a")  # noqa: SIM115 - closed below, after the unlink
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:  # the holder before us may have deleted it: then lock the new file
            if os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        fh.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still held: a waiter sees it is gone
        fh.close()


class Lab:
    """The driver's side of the store: plan, record and assemble experiment runs."""

    def __init__(self, store: Store, *, force: bool = False) -> None:
        self.store, self.force = store, force
        self.version = code_version()
        self._checkpoints: dict[str, dict[int, dict]] = {}  # holder -> call -> arrays
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
                stack.enter_context(_held(folder / f"{name}.lock"))
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
        plan = Plan(name, cfg, parts, runs, train_cfg, notes)
        if missing and not (self.force or whole):
            self._find_interrupted(plan, missing)
            if plan.resume is None:
                self._find_shorter(plan, missing)
        return plan

    def _find_shorter(self, plan: Plan, seeds: tuple[int, ...]) -> None:
        """Offer the end of the newest finished run of these seeds that differs only
        by fewer epochs: each train call whose schedules fit goes on from it and ends
        with the longer run's numbers; the others train afresh (``extended``)."""
        config = {k: v for k, v in config_dict(plan.cfg).items() if k != "seeds"}
        if not isinstance(config.get("epochs"), int):
            return
        for run in self.store.list_runs(plan.name, status="finished"):
            other = {k: v for k, v in run.config.items() if k != "seeds"}
            shorter = isinstance(other.get("epochs"), int) and (
                other["epochs"] < config["epochs"]
            )
            if not shorter or run.code_version != self.version:
                continue
            if {**other, "epochs": config["epochs"]} != config or tuple(
                run.info.get("group", [run.seed])
            ) != seeds:
                continue
            holder = run.info.get("group_run", run.id)
            try:
                saved = self.store.load_checkpoint(holder, "last")
            except StoreError:
                continue
            if saved is None:
                continue
            calls = _calls(saved)
            for arrays in calls.values():
                arrays["meta/offered"] = np.array(True)
            plan.resume = calls
            plan.notes.append(
                f"{plan.name} seeds {list(seeds)}: going on from the"
                f" {other['epochs']}-epoch run {holder} to {config['epochs']} epochs"
                " (train calls whose record schedules fit; the others train afresh)"
            )
            return

    def _find_interrupted(self, plan: Plan, seeds: tuple[int, ...]) -> None:
        """Set plan to resume the interrupted group of exactly these seeds, if any."""
        config = config_dict(plan.cfg)
        run = self.store.find(plan.name, config, seeds[0], self.version,
                              status="interrupted")  # fmt: skip
        if run is None:
            return
        try:
            saved = self.store.load_checkpoint(run.id, "last")
        except StoreError as e:
            plan.notes.append(f"{e}; training seeds {list(seeds)} afresh")
            return
        if saved is None or tuple(saved["lab/seeds"].tolist()) != seeds:
            return
        ids = [str(i) for i in saved["lab/runs"]]
        if any(self.store.get(i).status != "interrupted" for i in ids):
            return
        calls = _calls(saved)
        last = max(calls)
        epoch = int(calls[last]["meta/epoch"])
        plan.resume, plan.resume_runs = calls, ids
        plan.notes.append(
            f"{plan.name} seeds {list(seeds)}: resumed from epoch {epoch} of train"
            f" call {last + 1} (run {ids[0]}, interrupted)"
        )

    def load(self, run_id: str) -> Result:
        """Return the Result stored on run_id (a group's first run)."""
        run = self.store.get(run_id)
        arrays = self.store.load_arrays(run_id, "result")
        info = run.info
        return Result(
            run.experiment, run.config, arrays, info.get("timings", {}),
            info.get("notes", []), info.get("devices", ""),
            tuple(info.get("seed_axis", ())),
        )  # fmt: skip

    def begin(self, plan: Plan) -> list[Run]:
        """Record a running run for each seed about to train; return them."""
        cfg = plan.train_cfg
        config = config_dict(cfg)
        if plan.resume_runs:
            runs = [self.store.restart_run(i) for i in plan.resume_runs]
        else:
            runs = [
                self.store.start_run(plan.name, config, s, code_version=self.version)
                for s in cfg.seeds
            ]
        self._checkpoints[runs[0].id] = dict(plan.resume or {})
        return runs

    def checkpoint(self, runs: list[Run], call: int, arrays: dict) -> None:
        """Store train call's checkpoint with the group's others as its 'last'."""
        calls = self._checkpoints.setdefault(runs[0].id, {})
        calls[call] = arrays
        merged = {f"call{c}/{k}": v for c, a in calls.items() for k, v in a.items()}
        merged["lab/seeds"] = np.array([r.seed for r in runs])
        merged["lab/runs"] = np.array([r.id for r in runs])
        self.store.save_checkpoint(runs[0].id, "last", merged)

    def end(self, runs: list[Run], status: str, error: str | None = None) -> None:
        """Mark runs that did not finish as failed or interrupted."""
        for run in runs:
            with contextlib.suppress(StoreError):
                self.store.end_run(run.id, status, error=error)

    def finish(self, plan: Plan, runs: list[Run], result: Result) -> Result | None:
        """Store a trained group; return the whole Result, or None if it won't merge."""
        holder = runs[0].id
        self._checkpoints.pop(holder, None)  # the stored one stays (no artifact delete)
        try:
            self.store.save_arrays(holder, "result", result.arrays)
        except StoreError as e:  # a full disk: the runs say why, not 'running'
            self.end(runs, "failed", str(e))
            raise
        group = [r.seed for r in runs]
        for key in ("compile_s", "run_s", "total_s"):
            if key in result.timings:
                self.store.log_metrics(holder, key, [result.timings[key]])
        histories = seed_histories(result, len(runs))
        for run, series in zip(runs, histories, strict=True):
            for name, (steps, values) in series.items():
                self.store.log_metrics(run.id, name, values, steps)
            info = {
                "group": group,
                "group_run": holder,
                "timings": result.timings,
                "notes": result.notes,
                "devices": result.devices,
                "seed_axis": list(result.seed_axis),
            }
            if plan.resume:
                info["resumed_from_epoch"] = {
                    str(c): int(a["meta/epoch"]) for c, a in plan.resume.items()
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
