"""One experiment end to end: load or run, save, render figures, sliders and claims.

Runs in whichever process calls it: the ``reglab`` command hands experiments to worker
processes (``reglab.lab.worker``), since two processes use two cores where JAX threads
in one process do not.
"""

from __future__ import annotations

import time
from pathlib import Path

from reglab import experiments
from reglab.experiments.base import Progress, Result
from reglab.report import Section, save_figure, save_slider, save_table


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
    tables = [
        save_table(t, directory, out)
        for t in getattr(drawn, "tables", lambda r: [])(result)
    ]
    claims = mod.claims(result)
    timings = {**result.timings, "render_s": time.perf_counter() - t0}
    return Section(
        name, result.config, figures, sliders, claims, timings, result.notes, cached,
        devices=result.devices or "", tables=tables,
    )  # fmt: skip
