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
from reglab.lab.worker import Checkpoint, Outcome, Progress, Started, Task, work
from reglab.progress import Bars
from reglab.store import Run


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
        self.urgent: Callable[[Checkpoint | Started], None] | None = None

    def put(self, event: Progress | Checkpoint | Started) -> None:
        """Take an event from the task, in this process: it is the task's sink."""
        if self.urgent is not None and isinstance(event, Checkpoint | Started):
            self.urgent(event)
        else:
            self.events.put(event)

    def run(self, fn, tasks):
        """Yield (tag, result or exception) for each task, in order."""
        for tag, task in tasks:
            try:
                yield tag, fn(task, self)
            except Exception as e:  # noqa: BLE001 - reported as the task's failure
                yield tag, e

    def drain(self) -> list[Progress | Checkpoint | Started]:
        """Return the progress events sent since the last drain."""
        out = []
        while not self.events.empty():
            out.append(self.events.get())
        return out

    def close(self, *, cancel: bool) -> None:
        """Nothing to stop."""
        del cancel


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


@dataclasses.dataclass
class Jobs:
    """The driver's state over one ``execute``: each job's plan, runs and outcome.

    A job is named by its tag; it goes plan -> task -> outcome -> done, and a
    trained group that will not join its stored ones goes round again as one
    whole group (``Lab.plan(..., whole=True)``).
    """

    lab: Lab
    out: Path | None
    tags: list[str]
    plans: dict[str, Plan]
    console: Any = None
    announce: bool = False  # no live bars: print a line as each job starts
    running: dict[str, list[Run]] = dataclasses.field(default_factory=dict)
    begun: set[str] = dataclasses.field(default_factory=set)  # rows recorded
    to_render: dict[str, Result] = dataclasses.field(default_factory=dict)
    trained: set[str] = dataclasses.field(default_factory=set)
    done: dict[str, Done] = dataclasses.field(default_factory=dict)
    failed: dict[int, str] = dataclasses.field(default_factory=dict)  # index -> why

    def task(self, tag: str) -> Task:
        """Return the worker's task of a planned job: render it if stored, or train."""
        plan = self.plans[tag]
        if plan.cached:
            whole = merge(plan.parts)
            if whole is not None:
                self.to_render[tag] = whole
                return Task(plan.name, plan.cfg, tag, self.out, whole)
            # stored groups that will not join: train all again
            self.plans[tag] = plan = self.lab.plan(plan.name, plan.cfg, whole=True)
        render_now = self.out if not plan.parts else None  # else: once merged
        return Task(plan.name, plan.train_cfg, tag, render_now, resume=plan.resume)

    def record(self, tag: str, outcome: Outcome, console) -> Task | None:
        """Store a task's outcome; return the job's next task, or None once done."""
        plan, (trained, section) = self.plans[tag], outcome
        if trained is None:  # rendered a stored result
            self.finish(tag, self.to_render[tag], section)
            return None
        self.trained.add(tag)
        self.started(tag)  # its start event may not have been drained yet
        result = self.lab.finish(plan, self.running.pop(tag), trained)
        if result is None:
            console.print(f"{plan.name}: seeds do not join; training all again")
            self.plans[tag] = self.lab.plan(plan.name, plan.cfg, whole=True)
            self.begun.discard(tag)  # the retry records rows of its own
            return self.task(tag)
        if section is None and self.out is not None:  # render the merged seeds
            self.to_render[tag] = result
            return Task(plan.name, plan.cfg, tag, self.out, result)
        self.finish(tag, result, section)
        return None

    def finish(self, tag: str, result: Result, section: Any) -> None:
        """Record a job's claims and mark it done."""
        plan = self.plans[tag]
        if section is not None:
            claims = section.claims
        else:
            claims = experiments.get(plan.name).claims(result)
        self.lab.record_claims(plan, claims)
        self.done[tag] = Done(plan.name, plan.cfg, plan, result, claims, section,
                              trained=tag in self.trained)  # fmt: skip

    def started(self, tag: str) -> None:
        """Record a job's rows as it starts (not when queued); once each."""
        if tag in self.begun:  # its start event may come after its result
            return
        self.begun.add(tag)
        self.running[tag] = self.lab.begin(self.plans[tag])
        if self.announce:
            seeds = list(self.plans[tag].train_cfg.seeds)
            self.console.print(f"{tag}: training seeds {seeds}", highlight=False)

    def checkpoint(self, event: Checkpoint | Started) -> None:
        """Record a job's start, or store its checkpoint as its runs' 'last'."""
        if isinstance(event, Started):
            self.started(event.tag)
        elif event.tag in self.running:
            self.lab.checkpoint(self.running[event.tag], event.call, event.arrays)

    def take_events(self, executor, bars: Bars) -> None:
        """Drain the executor's events: checkpoints to the store, progress to bars."""
        for event in executor.drain():
            if isinstance(event, Checkpoint | Started):
                self.checkpoint(event)
            elif event.tag not in self.done:
                bars.update(event.tag, event.done, event.total)

    def record_failure(self, tag: str, error: BaseException, executor) -> None:
        """Mark a job's runs failed; raise unless the executor keeps going."""
        self.started(tag)  # a task that died before it said so
        why = fail(self.lab, self.running.pop(tag, []), error)
        if not getattr(executor, "keep_going", False):
            raise LabError(
                f"{self.plans[tag].name} failed: {type(error).__name__}: {error}"
            ) from error
        self.failed[self.tags.index(tag)] = why  # the others still complete

    def stop(self, status: str, why: str) -> None:
        """End every running job's runs with status (interrupted or failed)."""
        for runs in self.running.values():
            self.lab.end(runs, status, why)


def plan_jobs(
    lab: Lab, jobs: list[tuple[str, Any]], out: Path | None, console, announce: bool
) -> Jobs:
    """Return every job planned against the store (its notes printed), by tag."""
    tags = [f"{n}[{i}]" if len(jobs) > 1 and out is None else n for i, (n, _) in
            enumerate(jobs)]  # fmt: skip
    plans = {tag: lab.plan(n, c) for tag, (n, c) in zip(tags, jobs, strict=True)}
    for plan in plans.values():
        for note in plan.notes:
            console.print(f"[yellow]{note}[/]", highlight=False)
    return Jobs(lab, out, tags, plans, console, announce)


def first_tasks(state: Jobs, on_done: Callable[[Done], None] | None) -> list[Task]:
    """Return the tasks to hand out, longest first; stored jobs with nothing to draw
    are done at once."""
    order = sorted(
        state.tags,
        key=lambda t: experiments.LONGEST_FIRST.index(state.plans[t].name),
    )
    queued = []
    for tag in order:
        task = state.task(tag)
        if state.out is None and task.result is not None:  # stored, nothing to draw
            state.record(tag, Outcome(None, None), None)
            if on_done:
                on_done(state.done[tag])
        else:
            queued.append(task)
    return queued


def run_tasks(state: Jobs, queued: list[Task], executor, console, no_progress: bool,
              on_done: Callable[[Done], None] | None) -> None:  # fmt: skip
    """Hand the tasks to the executor until every job is done or has failed."""
    with Bars(console, no_progress) as bars:
        for task in queued:
            bars.add(task.tag)
        while queued:
            batch, queued = [(t.tag, t) for t in queued], []
            for tag, value in executor.run(work, batch):
                state.take_events(executor, bars)
                if tag is None:  # a tick while tasks run
                    continue
                if isinstance(value, BaseException):
                    state.record_failure(tag, value, executor)
                    bars.finish(tag)
                    continue
                again = state.record(tag, value, console)
                if again is not None:
                    queued.append(again)
                    continue
                if on_done:
                    on_done(state.done[tag])
                bars.finish(tag)


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
    announce = no_progress or not console.is_terminal  # no bars: a line per start
    state = plan_jobs(lab, jobs, out, console, announce)
    if hasattr(executor, "urgent"):
        executor.urgent = state.checkpoint
    try:  # a stored job's on_done may refuse (a bad --metric): nothing is left running
        queued = first_tasks(state, on_done)
        run_tasks(state, queued, executor, console, no_progress, on_done)
    except KeyboardInterrupt:
        executor.close(cancel=True)
        state.stop("interrupted", "stopped by Ctrl-C")
        saved = ", ".join(d.name for d in state.done.values()) or "nothing new"
        raise Interrupted(
            f"interrupted: stopped the workers; saved {saved}; the same command"
            " resumes (finished runs load from the store)"
        ) from None
    except BaseException:
        executor.close(cancel=True)
        state.stop("failed", "stopped: another job failed")
        raise
    executor.close(cancel=False)
    if state.failed:
        raise JobsFailed(state.failed, state.tags)
    return [state.done[t] for t in state.tags]


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
