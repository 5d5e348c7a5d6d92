"""The worker's task: one experiment trained (or a stored one rendered), events out.

A ``Task`` runs in whichever process an executor gives it (this one, a spawned
worker, a Ray task). What it has to tell the driver while it runs, its progress and
its checkpoints, goes to the ``events`` sink it is handed as an argument (anything
with ``put``): the driver alone writes the store, and a queue reaches it from any
executor's workers, where a scratch file would need a shared disk.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from reglab.experiments.base import Result
from reglab.reproduce import render, train

# Seconds between a training run's checkpoints (and one at each train call's end).
CHECKPOINT_ENV = "REGLAB_CHECKPOINT_SECONDS"


class Task(NamedTuple):
    """One job for a worker: train cfg unless result is given; render into out."""

    name: str  # the experiment
    cfg: Any  # its Config (the seeds to train)
    tag: str  # the job's name in the driver: its events carry it
    out: Path | None = None  # render figures and claims here; None: do not render
    result: Result | None = None  # a stored Result to render instead of training
    resume: dict[int, dict[str, np.ndarray]] | None = None  # train call -> checkpoint


class Progress(NamedTuple):
    """An event: the job tagged tag has trained done of its total epochs."""

    tag: str
    done: int
    total: int


class Checkpoint(NamedTuple):
    """An event: the job tagged tag saved train call's state (arrays) to go on from."""

    tag: str
    call: int
    arrays: dict[str, np.ndarray]


class Started(NamedTuple):
    """An event: the job tagged tag begins training (its rows are recorded now, not
    when it was queued, so a sweep stopped early leaves no row per point)."""

    tag: str


class Outcome(NamedTuple):
    """What a task returns: the Result it trained (None if given) and its section."""

    trained: Result | None
    section: Any  # reglab.report.Section, or None when not rendered


class Events(Protocol):
    """Where a task's events go: the executor's queue back to the driver."""

    def put(self, event: Progress | Checkpoint | Started) -> None: ...


def work(task: Task, events: Events | None = None) -> Outcome:
    """Run task: train (checkpointing to events) unless it holds a result; render."""
    from reglab.train import checkpointing

    def progress(done: int, total: int) -> None:
        if events is not None:
            events.put(Progress(task.tag, done, total))

    def save(call: int, epoch: int, arrays: dict) -> None:
        del epoch  # the arrays carry it
        if events is not None:
            events.put(Checkpoint(task.tag, call, arrays))

    trained, result = None, task.result
    if result is None:
        hooks = contextlib.nullcontext()
        if events is not None:
            events.put(Started(task.tag))
            every_s = float(os.environ.get(CHECKPOINT_ENV, "30"))
            hooks = checkpointing(save, (task.resume or {}).get, every_s)
        with hooks:
            trained = result = train(task.name, task.cfg, progress)
    section = None
    if task.out is not None:
        section = render(task.name, result, task.out, cached=trained is None)
    return Outcome(trained, section)
