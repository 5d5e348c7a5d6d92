"""Training jobs for the playground: one compiled program per page shape, streamed.

A page's settings are a ``reglab.experiments.playground`` Config, trained by that
experiment's own ``problem`` and ``chunks`` (so a saved page is the run that
``reglab run playground`` makes). Some chunks become ``Frame``s: the seed-0
parameters' P(class 1) over a grid and the train/test loss curves so far; the last
carries the finished run's Result.

Fairness: a client (a page) has at most one job; a newer one replaces it. Clients
take turns by chunks, the one that has trained least time so far next (a fair share
of the CPU, whatever the size of their chunks), so a small job never waits for a big
one to finish, and a cancelled job (replaced, or its page gone) stops within a chunk.
A job's first chunk, which compiles its program when the shape is new, runs on a
second thread, so a compiling page does not stall the pages already training.

The members train padded to 2, 4 or 8 (``WIDTHS``), so moving a setting's slider
never recompiles and a pin past 2 or 4 members compiles once. The page controls
(data size, widths, activation, optimizer, epochs, seeds) compile a program each,
and so does the first member with dropout or with a decoupled or proximal penalty
(they cost steps when unused); every program is cached for the session and by JAX's
persistent cache.
"""

from __future__ import annotations

import base64
import collections
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reglab.experiments import playground as experiment
from reglab.experiments.base import Result
from reglab.experiments.playground import (
    GRID,
    KEPT,
    Problem,
    ensemble_values,
    padded_width,
    prob_class1,
    problem,
)
from reglab.playground.controls import Settings
from reglab.settings import in_use, table
from reglab.store.runs import now
from reglab.train import Chunk, predict

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


def frame_of(cfg: experiment.Config, p: Problem, chunk: Chunk) -> Frame:
    """Return the Frame of one chunk (with the finished Result on the last)."""
    n, records = p.n_members, p.records
    seed0 = {k: v[:1, :n] for k, v in chunk.params.items()}
    logits = predict(p.spec.model, seed0, p.points)[0]  # (members, GRID*GRID, 2)
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


def new_job_id() -> str:
    """Return an unguessable job id: 96 random bits, URL-safe."""
    return secrets.token_urlsafe(12)


@dataclass
class Job:
    """One training request: its frames (as JSON) so far, and whether it ended."""

    settings: Settings
    client: str
    id: str = field(default_factory=new_job_id)
    events: list[tuple[str, dict]] = field(default_factory=list)
    status: str = "queued"  # queued, compiling, running, finished, cancelled, failed
    replaced_by: str | None = None
    stop: str | None = None  # why it is to stop at its next chunk
    last_frame: Frame | None = None
    problem: Problem | None = None
    started: float = field(default_factory=time.perf_counter)
    started_utc: str | None = None  # when its training began and ended
    ended_utc: str | None = None
    chunks: Iterator[Chunk] | None = None
    shown: float = -math.inf  # when its last frame went out
    trained_s: float = 0.0  # its share of the CPU so far, for the turns
    streams: int = 0  # event streams open on it

    @property
    def ended(self) -> bool:
        """Whether no more events will come."""
        return self.status in ("finished", "cancelled", "failed")


def program_key(cfg: experiment.Config) -> tuple:
    """Return what decides a job's compiled program: shapes and the settings used."""
    defaults = {s.name: s.default for s in table() if s.default is not None}
    used = in_use({**defaults, **ensemble_values(cfg)}) - set(KEPT)
    return (cfg.n_train, cfg.hidden, cfg.activation, cfg.optimizer, cfg.epochs,
            len(cfg.seeds), padded_width(cfg.n_members), used)  # fmt: skip


class Engine:
    """Trains the clients' jobs a chunk each in turn; keeps their recent ones."""

    def __init__(
        self,
        *,
        start: bool = True,
        keep: int = 16,
        idle_s: float = 600.0,
        every_s: float = 0.1,
        slice_s: float = 0.05,
    ) -> None:
        self.jobs: dict[str, Job] = {}
        self.keep, self.idle_s, self.every_s = keep, idle_s, every_s
        self.slice_s = slice_s
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._fresh: collections.deque[Job] = collections.deque()  # to start, FIFO
        self._turns: list[Job] = []  # started, unfinished: the least trained next
        self._starting: list[Job] = []  # the one whose first chunk runs (compiles)
        self._training: list[Job] = []  # the one taking its turn (out of _turns)
        self._seen: dict[str, float] = {}  # client -> when it last showed up
        self._compiled: set[tuple] = set()
        self._compile_s: list[float] = []
        self._threads = [
            threading.Thread(target=self._loop, args=(f,), daemon=True)
            for f in (self._start_one, self._turn)
        ]
        if start:
            self.start()

    def start(self) -> None:
        """Start the worker threads (``start=False`` lets a caller queue jobs first)."""
        for thread in self._threads:
            thread.start()

    def submit(self, settings: Settings, client: str) -> Job:
        """Queue a job; the client's unfinished job (and the warm-up) is replaced."""
        job = Job(settings, client)
        with self._lock:
            for old in self.jobs.values():
                if old.client in (client, WARMUP) and not old.ended:
                    old.replaced_by = job.id
                    self._stop(old, f"replaced by job {job.id}")
            others = (*self._turns, *self._fresh, *self._starting, *self._training)
            ahead = sum(j.stop is None for j in others)
            self.jobs[job.id] = job
            self._seen[client] = time.monotonic()
            self._forget()
            self._fresh.append(job)
            self._emit(job, "status", state="queued", ahead=ahead)
        return job

    def cancel(self, job: Job, why: str) -> None:
        """Stop job at its next chunk (at once if it has not started)."""
        with self._lock:
            self._stop(job, why)

    def opened(self, job: Job) -> None:
        """Count an event stream opened on job; its client is connected."""
        with self._lock:
            job.streams += 1
            self._seen[job.client] = time.monotonic()

    def closed(self, job: Job) -> None:
        """Count a stream closed; a job nobody watches any more is cancelled."""
        with self._lock:
            job.streams -= 1
            self._seen[job.client] = time.monotonic()
            if job.streams == 0 and not job.ended:
                self._stop(job, "its page closed its event stream")
            elif job.streams == 0:
                _compact(job)

    def touch(self, client: str) -> None:
        """Note that a client is still there (its finished jobs stay)."""
        with self._lock:
            self._seen[client] = time.monotonic()

    def _stop(self, job: Job, why: str) -> None:
        if job.ended or job.stop is not None:
            return
        job.stop = why
        if job.status == "queued":  # never started: nothing to close
            self._fresh.remove(job)
            self._end(job, "cancelled", why=why, replaced_by=job.replaced_by)
        self._wake.notify_all()

    def _emit(self, job: Job, kind: str, **payload: Any) -> None:
        job.events.append((kind, {"job": job.id, **payload}))
        self._wake.notify_all()

    def _end(self, job: Job, status: str, **info: Any) -> None:
        job.status = status
        job.chunks = None
        self._emit(job, status, **info)
        if job.streams == 0:
            _compact(job)

    def _forget(self) -> None:
        """Drop ended jobs of clients gone idle, and all but a client's last few."""
        now_s, kept = time.monotonic(), collections.Counter()
        for job in reversed(list(self.jobs.values())):  # the newest first
            if not job.ended or job.streams:
                continue
            kept[job.client, job.status == "finished"] += 1
            keep = self.keep if job.status == "finished" else 4
            idle = now_s - self._seen.get(job.client, 0) > self.idle_s
            if idle or kept[job.client, job.status == "finished"] > keep:
                del self.jobs[job.id]

    def _loop(self, step: Callable[[], bool]) -> None:
        while True:
            if not step():
                with self._lock:
                    self._wake.wait(1.0)

    def _start_one(self) -> bool:
        """Build the oldest fresh job's data and run its first chunk (compiling)."""
        with self._lock:
            if not self._fresh:
                return False
            job = self._fresh.popleft()
            job.status = "compiling"
            self._starting[:] = [job]
        try:
            cfg = job.settings.config()
            p = job.problem = problem(cfg, job.settings.extra())
            key = program_key(cfg)
            with self._lock:
                self._emit(job, "data", **data_json(p))
                if key not in self._compiled:
                    guess = np.median(self._compile_s) if self._compile_s else 10.0
                    members = len(job.settings.members)
                    self._emit(job, "status", state="compiling", members=members,
                               estimate_s=round(float(guess)))  # fmt: skip
            job.started_utc = now()
            t0 = time.perf_counter()
            job.chunks = experiment.chunks(p)
            self._advance(job, cfg)
            if key not in self._compiled:
                self._compiled.add(key)
                self._compile_s.append(time.perf_counter() - t0)
        except Exception as e:  # a failed job reports; the worker lives on
            with self._lock:
                self._starting.clear()
                self._end(job, "failed", message=f"{type(e).__name__}: {e}")
            return True
        with self._lock:
            self._starting.clear()
            if not job.ended:
                job.status = "running"
                # it joins level with the others (its compile does not count)
                job.trained_s = min((j.trained_s for j in self._turns), default=0.0)
                self._turns.append(job)
                self._wake.notify_all()
        return True

    def _turn(self) -> bool:
        """Train the least-trained job for a slice of time (whole chunks, at least one).

        Clients share the CPU by time: a small job whose chunks take milliseconds
        runs as many of them as a big job's one chunk of a second took, not one.
        """
        with self._lock:
            if not self._turns:
                return False
            job = min(self._turns, key=lambda j: j.trained_s)
            self._turns.remove(job)
            self._training[:] = [job]  # still ahead of a job submitted meanwhile
        t0 = time.perf_counter()
        try:
            cfg = job.settings.config()
            self._advance(job, cfg)
            while not job.ended and time.perf_counter() - t0 < self.slice_s:
                self._advance(job, cfg)
        except Exception as e:
            with self._lock:
                self._end(job, "failed", message=f"{type(e).__name__}: {e}")
        job.trained_s += time.perf_counter() - t0
        with self._lock:
            self._training.clear()
            if not job.ended:
                self._turns.append(job)
        return True

    def _advance(self, job: Job, cfg: experiment.Config) -> None:
        """Train one chunk of job (or close it if it is to stop); emit its frame."""
        if job.stop is not None:
            job.chunks.close()
            with self._lock:
                self._end(job, "cancelled", why=job.stop, replaced_by=job.replaced_by)
            return
        chunk = next(job.chunks)
        shown = time.perf_counter() - job.shown >= self.every_s
        if job.last_frame is None or chunk.done or shown:
            f = frame_of(cfg, job.problem, chunk)
            payload = frame_json(job.id, f, job.problem)
            job.shown = time.perf_counter()
            with self._lock:
                job.last_frame = f
                job.events.append(("frame", payload))
                self._wake.notify_all()
        if chunk.done:
            job.chunks.close()
            job.ended_utc = now()
            seconds = round(time.perf_counter() - job.started, 3)
            with self._lock:
                self._end(job, "finished", seconds=seconds)

    def wait(self, job: Job, seen: int, timeout: float) -> list[tuple[str, dict]]:
        """Return job's events after the first ``seen``, waiting up to timeout."""
        with self._lock:
            if len(job.events) <= seen and not job.ended:
                self._wake.wait(timeout)
            return job.events[seen:]


def _compact(job: Job) -> None:
    """Keep an ended job's data, last frame and end (its other frames are history)."""
    frames = [i for i, (kind, _) in enumerate(job.events) if kind == "frame"]
    drop = set(frames[:-1])
    job.events = [e for i, e in enumerate(job.events) if i not in drop]
