"""Where an ensemble runs: member groups, devices, and the compiled-program cache.

Groups. The layout of members into groups decides the vmap widths XLA compiles, hence
float32 rounding, so it is a function of the ensemble alone (``group_shape``); devices
only receive whole groups (``devices_used``, ``deal``), each running the same
one-device program: the same ensemble gives bit-identical numbers on 1, 2 or 8 devices.

Devices. XLA runs the small matmuls of a small network on one core, and on the CPU a
device is a core only if JAX is asked for one device per core before its backend
starts. Nothing here acts at import: ``claim_cpu_devices()`` asks, and the ``reglab``
command calls it first thing (library users call it themselves, before any JAX work):

- ``REGLAB_CPU_DEVICES=n`` sets the number (``1`` keeps JAX's default single device);
- a ``jax_num_cpu_devices`` config or an ``--xla_force_host_platform_device_count`` flag
  set by the user wins;
- once JAX has run anything, the count is fixed: reglab then uses what exists.

Measured on the 2-core machine (2-64-64-2, 10 members): two devices 1.9x one device.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

ENV = "REGLAB_CPU_DEVICES"
MAX_DEFAULT = 8  # replicated inputs cost memory on every device: more rarely pays


def my_cores() -> list[int] | None:
    """Return the cores this process may run on (CPU affinity, cgroup cpusets), in
    order; None where the OS does not say (macOS, Windows)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None


def available_cores() -> int:
    """Return how many cores this process may run on."""
    cores = my_cores()
    return len(cores) if cores is not None else os.cpu_count() or 1


def deal_cores(workers: int) -> list[tuple[int, ...]]:
    """Return each of `workers` processes its own cores: this process's cores split
    into equal disjoint runs (round the cores again when workers outnumber them).

    Measured on the 2-core machine: two unpinned workers each start an XLA thread pool
    as wide as the machine, and their threads contend: 784-128-10 SGD steps ran
    ~1.4x slower than with each worker on its own core (537 -> 760 us/step).
    """
    cores = my_cores()
    if cores is None:  # the OS places them
        return []
    share = max(1, len(cores) // max(workers, 1))
    return [
        tuple(cores[(i * share + j) % len(cores)] for j in range(share))
        for i in range(workers)
    ]


def pin_to(cores: tuple[int, ...]) -> None:
    """Keep this process (and the threads it starts, XLA's pool included) on cores.

    Before JAX's backend starts: XLA sizes its thread pool by the cores it may use.
    """
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)


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


def configure_xla() -> None:
    """Ask XLA for backend optimization level 1 unless the user chose one.

    Measured here: compiles ~20% faster than the default level with the same run time
    (2-64-64-2 x 18: 2.28 -> 1.90 s, 14.8 -> 14.4 us/step; level 0 is 8x slower to
    run). Must run before JAX creates its CPU backend; worker processes inherit it.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=1".strip()


def enable_compile_cache() -> None:
    """Keep compiled programs across processes: later runs skip most compilation."""
    from reglab.data.vision import default_cache_dir  # $REGLAB_CACHE (if set, not "")

    cache = default_cache_dir()
    jax.config.update("jax_compilation_cache_dir", str(cache / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def prepare_process() -> None:
    """Set up a process that trains (the command, a worker, a Ray task): XLA's level,
    one CPU device per core, the compile cache. Before any JAX work."""
    configure_xla()
    claim_cpu_devices()
    enable_compile_cache()


def choose_devices(devices) -> list:
    """Return the devices train's devices= names: all, the first n, or a list."""
    have = jax.devices()
    if devices is None:
        return have
    if isinstance(devices, int | np.integer):
        if not 1 <= devices <= len(have):
            raise ValueError(
                f"devices must be in [1, {len(have)}] (JAX has {len(have)}), got"
                f" {devices} — see claim_cpu_devices"
            )
        return have[:devices]
    chosen = list(devices)
    if not chosen:
        raise ValueError("devices must name at least one device, got an empty list")
    return chosen


# Measured on the 2-core machine: for small networks XLA's per-member cost is flat up
# to about this many members side by side in one vmap, then grows (2-64-64-2: 14 us
# at 9, 17.5 at 18), so wider ensembles of small networks run as a sequential
# lax.map over groups. Large networks gain from wide matmuls up to a point (784-128-10
# with 10 members: 130 us as one group, 153 as two) but not past the caches: with
# Adam, 36 members as one group cost 222 us each, as four groups of 9 183 us; so their
# groups hold at most GROUP_PARAMS parameters.
GROUP_MEMBERS = 9
GROUP_BELOW_PARAMS = 32_768
GROUP_PARAMS = 1_100_000  # ten 784-128-10 members


def group_shape(
    n_seeds: int, n_configs: int, n_params: int = 0, groups: int | None = None
) -> tuple[int, int]:
    """Return (groups, configs per group): a function of the ensemble, not the machine.

    The layout of members into groups decides the vmap widths XLA compiles, hence the
    float32 rounding of every member, so it never looks at the devices: the same
    ensemble gives bit-identical numbers on 1, 2 or 8 devices (``devices_used`` only
    deals the groups out). Small members go in balanced groups of <= GROUP_MEMBERS;
    large ones in groups of <= GROUP_PARAMS parameters. ``groups`` asks for that many
    balanced groups instead (at most one per config): a small ensemble then spreads
    over as many devices, where one group would keep it on one.
    """
    if groups is not None:
        G = min(groups, n_configs)
        return G, -(-n_configs // G)
    if n_params >= GROUP_BELOW_PARAMS:
        per_group = max(1, GROUP_PARAMS // (n_params * n_seeds))
    else:
        per_group = max(1, GROUP_MEMBERS // n_seeds)
    groups = -(-n_configs // per_group)
    return groups, -(-n_configs // groups)  # balanced: the least padding


def devices_used(groups: int, n_params: int, n_devices: int) -> int:
    """Return how many devices the groups are dealt to (whole groups each).

    Large members run on one device: XLA already spreads their matmuls over the
    cores, and splitting them across devices measured slower (784-128-10 x 10: 103
    -> 117 us). Small ones use up to one device per group.
    """
    if n_params >= GROUP_BELOW_PARAMS:
        return 1
    return max(1, min(n_devices, groups))


def to_groups(values: Array, groups: int, per_group: int) -> Array:
    """(C, ...) config values -> (G, Cg, ...), padding with copies of the last one."""
    pad = groups * per_group - values.shape[0]
    padded = jnp.concatenate([values, jnp.repeat(values[-1:], pad, axis=0)])
    return padded.reshape((groups, per_group) + values.shape[1:])


def from_groups(leaf, n_configs: int):
    """(G, S, Cg, ...) state leaf -> (S, C, ...), dropping the padding."""
    G, S, Cg = leaf.shape[:3]
    moved = leaf.transpose((1, 0, 2) + tuple(range(3, leaf.ndim)))
    return moved.reshape((S, G * Cg) + leaf.shape[3:])[:, :n_configs]


class DeviceRun:
    """One device's share of the groups: its compiled chunk program and its state."""

    def __init__(self, run_chunk, state, hyper, shared) -> None:
        self.run_chunk, self.state, self.hyper, self.shared = (
            run_chunk,
            state,
            hyper,
            shared,
        )

    def step(self, e0: Array) -> None:
        """Run (or dispatch) the next chunk of epochs on this device."""
        keys, x, y, sets, record_at, snap_at = self.shared
        self.state = self.run_chunk(
            self.state, self.hyper, keys, e0, x, y, sets, record_at, snap_at
        )


def step_all(runs: list[DeviceRun], e0: Array) -> None:
    """Run the next chunk on every device at once.

    JAX's CPU client runs a program in the thread that calls it, so one thread per
    device is what puts the devices to work side by side (measured here: 2-64-64-2 x
    18 members, 400 epochs on 2 devices: 1.33 s from one thread, 0.78 s with two).
    """
    if len(runs) == 1:
        runs[0].step(e0)
        return
    with ThreadPoolExecutor(len(runs)) as pool:
        list(pool.map(lambda run: run.step(e0), runs))


def deal(static, chunk_fn, split, shared, devices) -> tuple[list[DeviceRun], float]:
    """Return one DeviceRun per device, each with an equal slice of the groups.

    split: (state, hyper), leaves leading with groups; shared: (keys, x, y, eval_sets,
    record_at, snap_at), copied to every device. The chunk program is compiled once
    per device (in parallel threads: XLA compiles without the GIL).
    """
    d = len(devices)
    n = jax.tree.leaves(split)[0].shape[0] // d

    def args_on(k):
        part = jax.tree.map(lambda a: a[k * n : (k + 1) * n], split)
        state, hyper = jax.device_put(part, devices[k])
        shared_k = jax.device_put(shared, devices[k])
        return (state, hyper, shared_k[0], jnp.int32(0), *shared_k[1:])

    placed = [args_on(k) for k in range(d)]
    default = jax.devices()[0]

    def compile_on(k):
        key = static if devices[k] == default else (static, devices[k])
        return compiled(key, chunk_fn, placed[k])

    if d == 1:
        built = [compile_on(0)]
    else:
        with ThreadPoolExecutor(d) as pool:
            built = list(pool.map(compile_on, range(d)))
    runs = []
    for (fn, _), (state, hyper, keys, _, *rest) in zip(built, placed, strict=True):
        runs.append(DeviceRun(fn, state, hyper, (keys, *rest)))
    return runs, max(seconds for _, seconds in built)


# The compiled programs kept, most recently used last. Bounded: on the CPU each XLA
# executable keeps its machine code in its own memory mappings (~200 for one chunk
# program of the moons trainer), and Linux refuses a process more than
# vm.max_map_count (65530 by default) mappings. A long-lived process that compiled
# without end (the playground's server, a study, the test suite: 26,000 mappings after
# test_train.py alone) died inside XLA's compiler or its cache with SIGSEGV or SIGABRT
# once mmap failed. 32 programs is ~7,000 mappings at most: every experiment's
# programs and devices stay hot, and the oldest is compiled again if it returns.
PROGRAMS_KEPT = 32
PROGRAMS: OrderedDict[Any, Any] = OrderedDict()
_PROGRAMS_LOCK = threading.Lock()


def compiled(key, fn, args):
    """Return fn compiled for args' shapes, cached across calls; and compile time."""
    shapes = jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a)), args)
    full_key = (key, jax.tree.structure(args), tuple(jax.tree.leaves(shapes)))
    with _PROGRAMS_LOCK:
        if full_key in PROGRAMS:
            PROGRAMS.move_to_end(full_key)
            return PROGRAMS[full_key], 0.0
    start = time.perf_counter()
    program = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - start
    with _PROGRAMS_LOCK:
        PROGRAMS[full_key] = program
        while len(PROGRAMS) > PROGRAMS_KEPT:
            PROGRAMS.popitem(last=False)
    return program, seconds
