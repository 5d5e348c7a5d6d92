"""Training jobs for the playground: one compiled program per page shape, streamed.

``reglab.train.train_chunks`` yields the ensemble between chunks of epochs (the next
chunk already running); ``stream`` turns some of those into ``Frame``s: the seed-0
parameters' P(class 1) over a grid and the train/test loss curves so far. Programs
are ``reglab.train``'s own, so the two share compiled programs. Jobs run one at a time
on a worker thread; a job's frames carry its id, and a newer job from the same page
cancels the older.

The members are always ``MAX_MEMBERS`` wide (pins padded with copies), so moving a
setting's slider never recompiles. The page controls (data size, widths, activation,
optimizer, epochs, seeds) compile a program each, and so does the first member with
dropout or with a decoupled or proximal penalty (they cost steps when unused);
every program is cached for the session and by JAX's persistent cache.
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

from reglab import nn
from reglab.data.moons import MoonsPreset
from reglab.ensemble import Ensemble
from reglab.experiments.weight_decay import plane_grid, prob_class1
from reglab.optim import OptimizerSpec
from reglab.playground.controls import Settings, ensemble_values
from reglab.train import TrainSpec, log_spaced_epochs, predict, train_chunks

N_TEST = 1000  # clean test draw, as weight_decay's but smaller: it is evaluated often
GRID = 64  # the boundary's grid is GRID x GRID points
N_CHUNKS = 200  # chunks per run (10,000 epochs: 51 per chunk, ~400 steps)
N_RECORDS = 80  # log-spaced epochs at which train and test loss are evaluated
WARMUP = "warmup"  # the client of the job that compiles the defaults at start
# in every program even at 0, so their sliders never recompile (train_chunks)
KEPT = ("l2_strength", "l1_strength", "max_norm", "smoothing")


@dataclass(frozen=True)
class Problem:
    """Everything one job trains on: data, the static spec, the members."""

    spec: TrainSpec
    ensemble: Ensemble
    x: np.ndarray  # (N, 2)
    y: np.ndarray  # (N,) after flips
    flipped: np.ndarray  # (N,) bool
    x_test: np.ndarray
    y_test: np.ndarray
    grid_x: np.ndarray  # (GRID,)
    grid_y: np.ndarray
    points: np.ndarray  # (GRID * GRID, 2)
    n_members: int  # the real members; the rest of the ensemble is padding


def problem(settings: Settings) -> Problem:
    """Return the data, spec and ensemble of checked settings."""
    page = settings.page
    moons = MoonsPreset(page["n_train"], page["noise"], page["flip_fraction"])
    data, test = moons.train(page["data_seed"]), moons.test(N_TEST, page["data_seed"])
    epochs = page["epochs"]
    dropout = any(m["p_drop"] > 0 for m in settings.members)
    model = nn.MLPSpec(
        settings.widths,
        page["activation"],
        # after every hidden layer, only if some member drops: masks cost steps
        dropout_layers=tuple(range(1, len(settings.widths) - 1)) if dropout else (),
        dropout_mode="per_example",  # per-batch members via dropout_per_batch
    )
    spec = TrainSpec(
        model,
        OptimizerSpec(page["optimizer"], penalty="coupled"),
        epochs=epochs,
        batch_size=32,
        chunk_epochs=math.ceil((epochs + 1) / N_CHUNKS),
    )
    ensemble = Ensemble(tuple(range(page["seeds"])), ensemble_values(settings.members))
    gx, gy, points = plane_grid(data.x, GRID)
    return Problem(
        spec, ensemble, data.x, data.y, data.flipped, test.x, test.y, gx, gy, points,
        len(settings.members),
    )  # fmt: skip


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
    params: dict[str, np.ndarray] | None = None  # (seeds, members, ...), last frame


def stream(
    p: Problem, cancelled: Callable[[], bool] = lambda: False, every_s: float = 0.1
) -> Iterator[Frame]:
    """Train p's ensemble chunk by chunk; yield a Frame now and then, and the last."""
    model, E = p.spec.model, p.spec.epochs
    records = log_spaced_epochs(E, N_RECORDS)
    chunks = train_chunks(
        p.spec, p.ensemble, p.x, p.y,
        eval_sets={"train": (p.x, p.y), "test": (p.x_test, p.y_test)}, record=records,
        keep_settings=KEPT,
    )  # fmt: skip

    def frame(chunk) -> Frame:
        n = p.n_members
        params = {k: v[:, :n] for k, v in chunk.params.items()}
        seed0 = {k: v[:1] for k, v in params.items()}
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
            params=params if chunk.done else None,
        )

    # Chunks are short (about 10 ms of steps); a frame goes out after the first, at
    # most every ``every_s`` after that, and after the last. train_chunks has the
    # next chunk running while a frame is built, so training goes on as the host draws.
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
            p = problem(job.settings)
            job.problem = p
            with self._lock:
                job.events.append(("data", {"job": job.id, **data_json(p)}))
                self._wake.notify_all()
            for f in stream(p, lambda: job.replaced_by is not None):
                payload = frame_json(job.id, f, p)
                with self._lock:
                    job.last_frame = f
                    job.events.append(("frame", payload))
                    self._wake.notify_all()
            with self._lock:
                if job.replaced_by is not None and job.last_frame.params is None:
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
