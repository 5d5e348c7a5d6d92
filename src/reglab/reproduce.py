"""One experiment end to end: load or run, save, render figures, sliders and claims.

Runs in whichever process calls it: the ``reglab`` command hands experiments to worker
processes, since two processes use two cores where JAX threads in one process do not.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from reglab import experiments
from reglab.experiments.base import Progress, Result
from reglab.report import Section, save_figure, save_slider


def describe_devices() -> str:
    """Return where this process trains, e.g. '2 CPU devices' (numbers don't vary)."""
    import jax

    devices = jax.devices()
    kind = devices[0].platform.upper()
    return f"{len(devices)} {kind} device{'s' if len(devices) > 1 else ''}"


def train(name: str, cfg, progress: Progress | None = None) -> Result:
    """Return the Result of training cfg, with its total time and devices."""
    t0 = time.perf_counter()
    result = experiments.get(name).run(cfg, progress=progress)
    result.timings["total_s"] = time.perf_counter() - t0
    result.devices = describe_devices()
    return result


def render(name: str, result: Result, out: Path, *, cached: bool) -> Section:
    """Return the report section of a Result: figures, sliders and claims in out."""
    mod = experiments.get(name)
    directory = out / name
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    drawn = experiments.figures_of(name)
    figures = [
        (str(save_figure(f, directory).relative_to(out)), f.caption)
        for f in drawn.figures(result)
    ]
    sliders = [
        save_slider(s, directory / "sliders", out)
        for s in getattr(drawn, "sliders", lambda r: [])(result)
    ]
    claims = mod.claims(result)
    timings = {**result.timings, "render_s": time.perf_counter() - t0}
    return Section(
        name, result.config, figures, sliders, claims, timings, result.notes, cached,
        devices=result.devices or "",
    )  # fmt: skip


# Seconds between a training run's checkpoints (and one at each train call's end).
CHECKPOINT_ENV = "REGLAB_CHECKPOINT_SECONDS"


def work(
    name: str,
    cfg,
    out: Path | None,
    result: Result | None,
    tag: str | None = None,
    resume: dict | None = None,
):
    """A worker's task: train cfg unless result is given; render into out if given.

    Returns (trained Result or None, Section or None). Progress goes to the driver
    through reglab.lab.sweep.report, and with a tag so do checkpoints, as events
    ("checkpoint", tag, call, arrays): the driver alone writes the store, and a
    queue reaches it from any executor's workers, where a scratch file would need a
    shared disk. resume: train call -> checkpoint, to continue an interrupted run.
    """
    from reglab.lab.sweep import report
    from reglab.train import checkpointing

    def progress(done: int, total: int) -> None:
        report((name, done, total))

    def save(call: int, epoch: int, arrays: dict) -> None:
        del epoch  # the arrays carry it
        report(("checkpoint", tag, call, arrays))

    trained = None
    if result is None:
        if tag is not None:  # the driver records its rows now, not when queued
            report(("started", tag))
        hooks = contextlib.nullcontext()
        if tag is not None:
            every_s = float(os.environ.get(CHECKPOINT_ENV, "30"))
            hooks = checkpointing(save, (resume or {}).get, every_s)
        with hooks:
            trained = result = train(name, cfg, progress)
    section = None if out is None else render(name, result, out, cached=not trained)
    return trained, section
