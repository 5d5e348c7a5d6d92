"""Training jobs for the playground: one compiled program per page shape, streamed.

A page's settings are a ``reglab.experiments.playground`` Config, trained by that
experiment's own ``problem`` and ``chunks`` (so a saved page is the run that
``reglab run playground`` makes). ``stream`` turns some of the chunks into
``Frame``s: the seed-0 parameters' P(class 1) over a grid and the train/test loss
curves so far; the last carries the finished run's Result. Jobs run one at a time on
a worker thread; a job's frames carry its id, and a newer job from the same page
cancels the older.

The members train padded to 2, 4 or 8 (``WIDTHS``), so moving a setting's slider
never recompiles and a pin past 2 or 4 members compiles once. The page controls
(data size, widths, activation, optimizer, epochs, seeds) compile a program each,
and so does the first member with dropout or with a decoupled or proximal penalty
(they cost steps when unused); every program is cached for the session and by JAX's
persistent cache.
"""

from __future__ import annotations

import base64
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reglab.experiments import playground as experiment
from reglab.experiments.base import Result
from reglab.experiments.playground import GRID, Problem, prob_class1, problem
from reglab.playground.controls import Settings
from reglab.train import predict

WARMUP = "warmup"  # the client of the job that compiles the defaults at start


@dataclass
class Frame:
    """What the page draws after one chunk."""

    epoch: int
    prob: np.ndarray  # (members, GRID, GRID) P(class 1), seed 0
    record_epochs: np.ndarray  # (r,) recorded so far
    train_loss: np.ndarray  # (seeds, members, r) on the (noisy) training labels
    test_loss: np.ndarray  # (seeds, members, r) on the clean test draw
    test_accuracy: np.ndarray  # (seeds, members) at the last recorded epoch
    train_accuracy: np.ndarray
    diverged: np.ndarray  # (seeds, members) bool
    result: Result | None = None  # the finished run, on the last frame only


def stream(
    cfg: experiment.Config,
    p: Problem,
    cancelled: Callable[[], bool] = lambda: False,
    every_s: float = 0.1,
) -> Iterator[Frame]:
    """Train p's ensemble chunk by chunk; yield a Frame now and then, and the last."""
    model, records, n = p.spec.model, p.records, p.n_members

    def frame(chunk) -> Frame:
        seed0 = {k: v[:1, :n] for k, v in chunk.params.items()}
        logits = predict(model, seed0, p.points)[0]  # (members, GRID*GRID, 2)
        r = int(np.searchsorted(records, chunk.epoch, side="right"))
        metrics = chunk.leaf("metrics")[:, :n, :r]  # (S, M, r, sets, 2)
        last = metrics[:, :, -1] if r else np.full(metrics.shape[:2] + (2, 2), np.nan)
        return Frame(
            epoch=chunk.epoch,
            prob=prob_class1(logits).reshape(-1, GRID, GRID),
            record_epochs=records[:r],
            train_loss=metrics[..., 0, 0],
            test_loss=metrics[..., 1, 0],
            test_accuracy=last[..., 1, 1],
            train_accuracy=last[..., 0, 1],
            diverged=chunk.leaf("diverged")[:, :n],
            result=experiment.result(cfg, p, chunk.result()) if chunk.done else None,
        )

    # Chunks are short (tens of ms of steps); a frame goes out after the first, at
    # most every ``every_s`` after that, and after the last. train_chunks has the
    # next chunk running while a frame is built, so training goes on as the host draws.
    chunks = experiment.chunks(p)
    shown = -math.inf
    for i, chunk in enumerate(chunks):
        if i == 0 or chunk.done or time.perf_counter() - shown >= every_s:
            yield frame(chunk)
            shown = time.perf_counter()
        if cancelled():
            chunks.close()
            return


def encode_probabilities(prob: np.ndarray) -> str:
    """Return P in [0, 1] as base64 bytes (0..255): 1 byte per grid point."""
    return base64.b64encode(np.round(prob * 255).astype(np.uint8).tobytes()).decode()


def _floats(a: np.ndarray) -> Any:
    """Return a as nested lists, NaN and inf as None (JSON has neither)."""
    if np.ndim(a) == 0:
        return round(float(a), 5) if np.isfinite(a) else None
    return [_floats(v) for v in a]


def frame_json(job_id: str, f: Frame, p: Problem) -> dict[str, Any]:
    """Return a frame as the JSON the page draws."""
    return {
        "job": job_id,
        "epoch": f.epoch,
        "epochs": p.spec.epochs,
        "grid": GRID,
        "prob": encode_probabilities(f.prob),
        "record_epochs": f.record_epochs.tolist(),
        "train_loss": _floats(f.train_loss),
        "test_loss": _floats(f.test_loss),
        "test_accuracy": _floats(f.test_accuracy),
        "train_accuracy": _floats(f.train_accuracy),
        "diverged": f.diverged.tolist(),
    }


def data_json(p: Problem) -> dict[str, Any]:
    """Return the points and grid extent of a job (sent once, before its frames)."""
    return {
        "x": np.round(p.x, 4).tolist(),
        "y": p.y.tolist(),
        "flipped": p.flipped.tolist(),
        "extent": [
            float(p.grid_x[0]),
            float(p.grid_x[-1]),
            float(p.grid_y[0]),
            float(p.grid_y[-1]),
        ],  # fmt: skip
    }


_ids = itertools.count(1)


@dataclass
class Job:
    """One training request: its frames (as JSON) so far, and whether it ended."""

    settings: Settings
    client: str
    id: str = field(default_factory=lambda: f"j{next(_ids)}")
    events: list[tuple[str, dict]] = field(default_factory=list)
    status: str = "queued"  # queued, running, finished, cancelled, failed
    replaced_by: str | None = None
    last_frame: Frame | None = None
    problem: Problem | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def ended(self) -> bool:
        """Whether no more events will come."""
        return self.status in ("finished", "cancelled", "failed")


class Engine:
    """Runs jobs one after another on a worker thread; keeps the recent ones."""

    def __init__(self, keep: int = 32, *, start: bool = True) -> None:
        self.jobs: dict[str, Job] = {}
        self.keep = keep
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[Job] = []
        self._worker = threading.Thread(target=self._loop, daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        """Start the worker thread (``start=False`` lets a caller queue jobs first)."""
        self._worker.start()

    def submit(self, settings: Settings, client: str) -> Job:
        """Queue a job; older unfinished jobs of the same client (or the warm-up
        job, which only compiles the default program) are cancelled."""
        job = Job(settings, client)
        with self._lock:
            for old in self.jobs.values():
                if old.client in (client, WARMUP) and not old.ended:
                    old.replaced_by = job.id
                    if old.status == "queued":
                        self._queue.remove(old)
                        self._end(old, "cancelled")
            self.jobs[job.id] = job
            for old_id in list(self.jobs)[: -self.keep]:
                if self.jobs[old_id].ended:
                    del self.jobs[old_id]
            self._queue.append(job)
            self._wake.notify_all()
        return job

    def _end(self, job: Job, status: str, **info: Any) -> None:
        job.status = status
        job.events.append((status, {"job": job.id, **info}))
        self._wake.notify_all()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._wake.wait()
                job = self._queue.pop(0)
                job.status = "running"
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            cfg = job.settings.config()
            p = problem(cfg)
            job.problem = p
            with self._lock:
                job.events.append(("data", {"job": job.id, **data_json(p)}))
                self._wake.notify_all()
            for f in stream(cfg, p, lambda: job.replaced_by is not None):
                payload = frame_json(job.id, f, p)
                with self._lock:
                    job.last_frame = f
                    job.events.append(("frame", payload))
                    self._wake.notify_all()
            with self._lock:
                if job.replaced_by is not None and job.last_frame.result is None:
                    self._end(job, "cancelled", replaced_by=job.replaced_by)
                else:
                    seconds = time.perf_counter() - job.started
                    self._end(job, "finished", seconds=round(seconds, 3))
        except Exception as e:  # a failed job reports; the worker lives on
            with self._lock:
                self._end(job, "failed", message=f"{type(e).__name__}: {e}")

    def wait(self, job: Job, seen: int, timeout: float) -> list[tuple[str, dict]]:
        """Return job's events after the first ``seen``, waiting up to timeout."""
        with self._lock:
            if len(job.events) <= seen and not job.ended:
                self._wake.wait(timeout)
            return job.events[seen:]
