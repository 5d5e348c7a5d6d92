"""The Ray executor: each sweep point a plain Ray task, on a local Ray or a cluster.

``reglab sweep ... --executor ray [--address ADDR]``. Each point is one task of a
module-level remote function with ``max_retries`` (a worker that dies is retried);
results come back through ``ray.wait`` as they finish and the driver alone writes
the store, so a task that ran twice is recorded once. No Ray Tune: the store, its
cache and resume stay reglab's.

The driver starts Ray (``connect``) before it imports JAX. Workers get their XLA
settings through the task's runtime environment, so they hold before JAX is
imported there: ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (several tasks share one
GPU), the XLA flags, the compile cache and every ``REGLAB_*`` variable of the
driver. Ray is imported lazily: reglab runs without it.

Events: a task's progress and checkpoints (``reglab.lab.worker``) reach the
driver through a Ray queue (an actor holding no CPU), handed to each task as its
events argument, that the driver drains at each tick, as the local executor's
workers use a multiprocessing queue; so the bars move while Ray tasks train, and a
Ray run cut short resumes from its last checkpoint.

Test hook: ``REGLAB_TEST_DIE_ONCE=PATH`` makes the first task that finds no file at
PATH create it and kill its own worker (``os._exit``), to test the retry.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from reglab.lab import LabError

MISSING = '--executor ray needs Ray: pip install "reglab[ray]"'
MAX_RETRIES = 2  # a worker that dies (out of memory, a lost node) runs its task again
TASKS_PER_GPU = 4  # on GPU nodes: several tasks share one GPU (no preallocation)


def require_ray() -> None:
    """Fail in one line naming the extra when Ray is not installed (before any work)."""
    _ray()


def _ray():
    """Return the ray module, or fail in one line naming the extra."""
    try:
        import ray
    except ImportError:
        raise LabError(MISSING) from None
    return ray


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at address, or start a local one on 127.0.0.1.

    Call before JAX is imported: Ray forks its daemons. A Ray already initialized
    in this process (a test's) is used as it is.
    """
    ray = _ray()
    if ray.is_initialized():
        return
    import logging

    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        try:
            ray.init(address=address, **quiet)
        except ConnectionError as e:
            raise LabError(
                f"no Ray cluster at --address {address} ({e}) — start one with"
                " `ray start --head`, or drop --address for a local Ray"
            ) from None
        return
    # address "local": a new Ray, never a stray cluster found on this machine
    ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
             include_dashboard=False, _node_ip_address="127.0.0.1",
             **quiet)  # fmt: skip


def worker_env() -> dict[str, str]:
    """Return the environment a worker needs before it imports JAX."""
    env = {k: v for k, v in os.environ.items() if k.startswith("REGLAB_")}
    env.pop("REGLAB_STORE", None)  # only the driver writes the store
    env.setdefault("REGLAB_CPU_DEVICES", "1")  # one task per CPU Ray schedules
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if os.environ.get("XLA_FLAGS"):
        env["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    return env


def _die_once() -> None:
    """The retry test's hook: the first task to claim the marker kills its worker."""
    marker = os.environ.get("REGLAB_TEST_DIE_ONCE")
    if marker:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(1)


READY = False  # whether this worker process has set up JAX


def run_task(fn: Callable[[Any, Any], Any], task: Any, events: Any = None) -> Any:
    """A Ray worker's task: set up JAX once, then fn(task, events)."""
    global READY
    _die_once()
    if not READY:
        from reglab.placement import prepare_process

        prepare_process()
        READY = True
    return fn(task, events)


class WorkerDied(Exception):
    """A task whose worker died on every attempt."""


class RayExecutor:
    """Plain Ray tasks with retries; results gathered with ray.wait as they finish."""

    keep_going = True  # a point that fails is reported after the others complete

    def __init__(self, max_retries: int | None = None) -> None:
        ray = _ray()
        if not ray.is_initialized():
            connect(None)
        self.max_retries = MAX_RETRIES if max_retries is None else max_retries
        env = {"env_vars": worker_env()}  # set before the worker imports JAX
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": self.max_retries,
                                   "runtime_env": env}  # fmt: skip
        if ray.cluster_resources().get("GPU"):
            options["num_gpus"] = 1 / TASKS_PER_GPU
        self.remote = ray.remote(run_task).options(**options)
        self.pending: dict[Any, Any] = {}
        from ray.util.queue import Queue

        self.events = Queue(actor_options={"num_cpus": 0})  # tasks -> driver

    def run(
        self, fn: Callable[[Any, Any], Any], tasks: list[tuple[Any, Any]]
    ) -> Iterator[tuple[Any, Any]]:
        """Yield (tag, result or exception) as tasks finish; None while waiting."""
        import ray

        for tag, task in tasks:
            self.pending[self.remote.remote(fn, task, self.events)] = tag
        while self.pending:
            finished, _ = ray.wait(list(self.pending), num_returns=1, timeout=0.2)
            yield None, None  # a tick: the driver drains events, updates bars
            for ref in finished:
                tag = self.pending.pop(ref)
                yield tag, self._result(ref)

    def _result(self, ref) -> Any:
        """Return a task's value, or the exception it ended with."""
        import ray
        from ray import exceptions as rx

        try:
            return ray.get(ref)
        except rx.RayTaskError as e:  # the task raised: hand on its own exception
            cause = e.cause if isinstance(e.cause, BaseException) else e
            return cause
        except (rx.WorkerCrashedError, rx.OutOfMemoryError, rx.NodeDiedError) as e:
            tries = self.max_retries + 1
            return WorkerDied(
                f"its Ray worker died on all {tries} attempts (out of memory or"
                f" killed): {type(e).__name__}"
            )
        except rx.RayError as e:
            return e

    def drain(self) -> list[tuple]:
        """Return the events (progress, checkpoints) tasks sent since the last drain."""
        from ray.exceptions import RayError
        from ray.util.queue import Empty

        try:
            n = self.events.qsize()
            return self.events.get_nowait_batch(n) if n else []
        except (Empty, RayError):  # the queue's actor is gone: nothing more comes
            return []

    def close(self, *, cancel: bool) -> None:
        """Cancel outstanding tasks if asked; the Ray this process started stays up."""
        import ray

        if cancel:
            for ref in self.pending:  # force: end the worker mid-training
                ray.cancel(ref, force=True)
        self.pending.clear()
        with contextlib.suppress(Exception):  # the actor may be gone with its node
            self.events.shutdown()
        # A Ray this process started is stopped at exit (ray.init's atexit hook), not
        # here. Ray's driver leaves C++ threads that write into descriptors it no
        # longer holds (in the test process a run store opened later got Ray's bytes
        # over its header: tests/test_lab_ray.py); a command's store is opened before
        # Ray starts, and stopping Ray only after it is closed adds no new window.
