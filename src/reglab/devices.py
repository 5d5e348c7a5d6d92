"""One JAX CPU device per core, so one ensemble can train on every core.

XLA runs the small matmuls of a small network on one core; the trainer splits an
ensemble of small networks across devices (``reglab.train``'s ``devices``; large ones
already spread their matmuls over the cores), and on the CPU a device is a core only
if JAX is asked for one device per core before its backend starts. Importing
reglab asks, unless someone chose first:

- ``REGLAB_CPU_DEVICES=n`` sets the number (``1`` keeps JAX's default single device);
- a ``jax_num_cpu_devices`` config or an ``--xla_force_host_platform_device_count`` flag
  set by the user wins;
- once JAX has run anything, the count is fixed: reglab then uses what exists.

Measured on the 2-core machine (2-64-64-2, 10 members): two devices 1.9x one device.
"""

from __future__ import annotations

import os

import jax

ENV = "REGLAB_CPU_DEVICES"
MAX_DEFAULT = 8  # replicated inputs cost memory on every device: more rarely pays


def available_cores() -> int:
    """Return the cores this process may run on (CPU affinity, cgroup cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def requested_cpu_devices() -> int:
    """Return REGLAB_CPU_DEVICES, or one device per core (at most MAX_DEFAULT)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return min(available_cores(), MAX_DEFAULT)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"{ENV} must be a positive integer (JAX CPU devices), got {raw!r} —"
            f" unset it for one per core, or use 1 for JAX's default"
        )
    return int(raw)


def claim_cpu_devices() -> int | None:
    """Ask JAX for requested_cpu_devices() CPU devices if nobody chose; return it.

    Returns None (and changes nothing) when the user already set the count or JAX's
    backend is already running.
    """
    n = requested_cpu_devices()
    if jax.config.jax_num_cpu_devices != -1:
        return None
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # the backend has started: the count is fixed
        return None
    return n
