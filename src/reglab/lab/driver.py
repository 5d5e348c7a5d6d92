"""The driver: experiment configs through the Lab, trained here or in workers.

Each job is (experiment, config). The driver plans every job against the store,
hands the training (and figure rendering) to an executor, records what comes back
and assembles the seeds. Ctrl-C cancels queued work, ends the workers and says what
was saved; the workers exit on their own if the driver dies.
"""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reglab import experiments
from reglab.experiments.base import Result
from reglab.lab import LabError, sweep
from reglab.lab.runner import Lab, Plan, merge
from reglab.progress import Bars


@dataclasses.dataclass
class Done:
    """One finished job: its plan, assembled Result, claims and report section."""

    name: str
    cfg: Any
    plan: Plan
    result: Result
    claims: list
    section: Any = None  # reglab.report.Section when figures were rendered
    trained: bool = False


class Interrupted(LabError):
    """Ctrl-C: the message says what was saved."""


class InlineExecutor:
    """Runs tasks one after another in this process (--jobs 1)."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        # checkpoints cannot wait for the task's end: the driver takes them at once
        self.urgent: Callable[[tuple], None] | None = None
        sweep.EVENTS = self

    def put(self, event: tuple) -> None:
        """Take an event from the task (sweep.report), in this process."""
        if self.urgent is not None and event[0] in ("checkpoint", "started"):
            self.urgent(event)
        else:
            self.events.put(event)

    def run(self, fn, tasks):
        """Yield (tag, result or exception) for each task, in order."""
        for tag, args in tasks:
            try:
                yield tag, fn(*args)
            except Exception as e:  # noqa: BLE001 - reported as the task's failure
                yield tag, e

    def drain(self) -> list[tuple]:
        """Return the progress events sent since the last drain."""
        out = []
        while not self.events.empty():
            out.append(self.events.get())
        return out

    def close(self, *, cancel: bool) -> None:
        """Nothing to stop."""
        del cancel
        sweep.EVENTS = None


def make_executor(jobs: int, n_tasks: int, kind: str = "local"):
    """Return an executor: Ray tasks, this process for one job, or spawned workers."""
    import os

    if kind == "ray":
        from reglab.lab.ray_executor import RayExecutor

        return RayExecutor()
    from reglab.placement import ENV, available_cores

    jobs = min(jobs or os.cpu_count() or 1, max(n_tasks, 1))
    if jobs <= 1:
        from reglab.placement import prepare_process

        prepare_process()
        return InlineExecutor()
    share = os.environ.get(ENV) or str(max(1, available_cores() // jobs))
    return sweep.LocalExecutor(jobs, env={ENV: share})


def execute(
    lab: Lab,
    jobs: list[tuple[str, Any]],
    *,
    out: Path | None,
    executor,
    console,
    no_progress: bool = False,
    on_done: Callable[[Done], None] | None = None,
) -> list[Done]:
    """Run every job through the lab; return them done, in the order given."""
    from reglab.reproduce import work

    tags = [f"{n}[{i}]" if len(jobs) > 1 and out is None else n for i, (n, _) in
            enumerate(jobs)]  # fmt: skip
    plans = {tag: lab.plan(n, c) for tag, (n, c) in zip(tags, jobs, strict=True)}
    for plan in plans.values():
        for note in plan.notes:
            console.print(f"[yellow]{note}[/]", highlight=False)
    running: dict[str, list] = {}
    results: dict[str, Done] = {}
    order = sorted(tags, key=lambda t: experiments.LONGEST_FIRST.index(plans[t].name))

    def task(tag: str, plan: Plan) -> tuple:
        if plan.cached:
            whole = merge(plan.parts)
            if whole is None:  # stored groups that will not join: train all again
                plans[tag] = plan = lab.plan(plan.name, plan.cfg, whole=True)
            else:
                section_result[tag] = whole
                return (tag, (plan.name, plan.cfg, out, whole))
        render_now = out if not plan.parts else None  # its rows: when it starts
        return (tag, (plan.name, plan.train_cfg, render_now, None, tag, plan.resume))

    def record(tag: str, value) -> tuple | None:
        plan = plans[tag]
        trained, section = value
        if trained is None:  # rendered a stored result
            result = section_result[tag]
        else:
            trained_tags.add(tag)
            started(tag)  # its start event may not have been drained yet
            result = lab.finish(plan, running.pop(tag), trained)
            if result is None:
                console.print(f"{plan.name}: seeds do not join; training all again")
                plans[tag] = lab.plan(plan.name, plan.cfg, whole=True)
                begun.discard(tag)  # the retry records rows of its own
                return task(tag, plans[tag])
            if section is None and out is not None:
                section_result[tag] = result
                return (tag, (plan.name, plan.cfg, out, result))
        mod = experiments.get(plan.name)
        claims = section.claims if section is not None else mod.claims(result)
        lab.record_claims(plan, claims)
        done = Done(plan.name, plan.cfg, plan, result, claims, section,
                    trained=tag in trained_tags)  # fmt: skip
        results[tag] = done
        if on_done:
            on_done(done)
        return None

    def started(tag: str) -> None:
        """Record the rows of a task as it starts (not when queued); once each."""
        if tag not in begun:  # its start event may come after its result: not twice
            begun.add(tag)
            running[tag] = lab.begin(plans[tag])
            if no_progress or not console.is_terminal:  # no bars: say it started
                seeds = list(plans[tag].train_cfg.seeds)
                console.print(f"{tag}: training seeds {seeds}", highlight=False)

    def checkpoint(event: tuple) -> None:  # ("checkpoint", tag, call, arrays)
        if event[0] == "started":  # ("started", tag)
            started(event[1])
            return
        _, tag, call, arrays = event
        if tag in running:
            lab.checkpoint(running[tag], call, arrays)

    if hasattr(executor, "urgent"):
        executor.urgent = checkpoint
    section_result: dict[str, Result] = {}
    trained_tags: set[str] = set()
    begun: set[str] = set()  # tasks whose rows are recorded (a retry begins anew)
    failed: dict[int, str] = {}  # job index -> why (executors that keep going)
    queue_ = []
    try:  # a stored job's on_done may refuse (a bad --metric): nothing is left running
        for tag in order:
            t = task(tag, plans[tag])
            if out is None and t[1][3] is not None:  # stored, nothing to draw
                record(tag, (None, None))
            else:
                queue_.append(t)
        with Bars(console, no_progress) as bars:
            for tag, _ in queue_:
                bars.add(tag)
            while queue_:
                batch, queue_ = queue_, []
                for tag, value in executor.run(work, batch):
                    for event in executor.drain():
                        if event[0] in ("checkpoint", "started"):
                            checkpoint(event)
                            continue
                        name_, d, t = event
                        for tg in tags:
                            if plans[tg].name == name_ and tg not in results:
                                bars.update(tg, d, t)
                    if tag is None:
                        continue
                    if isinstance(value, BaseException):
                        started(tag)  # a task that died before it said so
                        why = fail(lab, running.pop(tag, []), value)
                        if not getattr(executor, "keep_going", False):
                            raise LabError(
                                f"{plans[tag].name} failed: {type(value).__name__}:"
                                f" {value}"
                            ) from value
                        failed[tags.index(tag)] = why  # the others still complete
                        bars.finish(tag)
                        continue
                    again = record(tag, value)
                    if again is not None:
                        queue_.append(again)
                    else:
                        bars.finish(tag)
    except KeyboardInterrupt:
        executor.close(cancel=True)
        for runs in running.values():
            lab.end(runs, "interrupted", "stopped by Ctrl-C")
        saved = ", ".join(d.name for d in results.values()) or "nothing new"
        raise Interrupted(
            f"interrupted: stopped the workers; saved {saved}; the same command"
            " resumes (finished runs load from the store)"
        ) from None
    except BaseException:
        executor.close(cancel=True)
        for runs in running.values():
            lab.end(runs, "failed", "stopped: another job failed")
        raise
    executor.close(cancel=False)
    if failed:
        raise JobsFailed(failed, tags)
    return [results[t] for t in tags]


class JobsFailed(LabError):
    """Some jobs failed (after any retries) while the others finished and were saved."""

    def __init__(self, failed: dict[int, str], labels: list[str], what="jobs") -> None:
        self.failed = failed
        lines = "; ".join(f"{labels[i]}: {why}" for i, why in sorted(failed.items()))
        super().__init__(
            f"{len(failed)} of {len(labels)} {what} failed ({lines}); the others are"
            " saved and the same command runs only what is missing"
        )


def fail(lab: Lab, runs: list, error: BaseException) -> str:
    """Mark runs failed with the error (a worker that died says so); return why."""
    from concurrent.futures.process import BrokenProcessPool

    why = (
        "its worker process died (out of memory or killed)"
        if isinstance(error, BrokenProcessPool)
        else f"{type(error).__name__}: {error}"
    )
    lab.end(runs, "failed", why)
    return why
