"""Placement: one JAX CPU device per core when asked (never at import), whole groups."""

import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from reglab import placement


def n_devices_in_fresh_python(code: str, **env) -> int:
    """Return len(jax.devices()) printed by code run in a fresh interpreter."""
    base = {k: v for k, v in os.environ.items() if k not in ("REGLAB_CPU_DEVICES",)}
    base["XLA_FLAGS"] = ""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport jax; print(len(jax.devices()))"],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[-1])


CLAIM = "from reglab.placement import claim_cpu_devices; claim_cpu_devices()"


def test_importing_reglab_leaves_jax_alone():
    code = "import reglab, reglab.data, reglab.train, reglab.experiments.weight_decay"
    assert n_devices_in_fresh_python(code, REGLAB_CPU_DEVICES="3") == 1


def test_claim_asks_for_one_device_per_core_capped():
    expected = min(placement.available_cores(), placement.MAX_DEFAULT)
    assert n_devices_in_fresh_python(CLAIM) == expected


def test_environment_variable_sets_the_count():
    assert n_devices_in_fresh_python(CLAIM, REGLAB_CPU_DEVICES="3") == 3
    assert n_devices_in_fresh_python(CLAIM, REGLAB_CPU_DEVICES="1") == 1


def test_the_users_choice_wins():
    forced = "--xla_force_host_platform_device_count=5"
    assert n_devices_in_fresh_python(CLAIM, XLA_FLAGS=forced) == 5
    config = "import jax; jax.config.update('jax_num_cpu_devices', 4); " + CLAIM
    assert n_devices_in_fresh_python(config, REGLAB_CPU_DEVICES="2") == 4


def test_a_started_backend_is_left_alone():
    started = "import jax; jax.numpy.zeros(1).block_until_ready(); " + CLAIM
    assert n_devices_in_fresh_python(started, REGLAB_CPU_DEVICES="3") == 1


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_environment_value_raises(monkeypatch, raw):
    monkeypatch.setenv("REGLAB_CPU_DEVICES", raw)
    with pytest.raises(ValueError, match="REGLAB_CPU_DEVICES must be a positive"):
        placement.requested_cpu_devices()


def test_group_shape_keeps_groups_small_and_padding_least():
    assert placement.group_shape(1, 18) == (2, 9)
    assert placement.group_shape(1, 10) == (2, 5)
    assert placement.group_shape(3, 18) == (6, 3)
    assert placement.group_shape(20, 3) == (3, 1)
    assert placement.group_shape(1, 1) == (1, 1)
    # 784-128-10: groups of at most ten (GROUP_PARAMS)
    assert placement.group_shape(1, 10, n_params=101_770) == (1, 10)
    assert placement.group_shape(1, 36, n_params=101_770) == (4, 9)
    assert placement.group_shape(2, 36, n_params=101_770) == (8, 5)


def test_devices_take_whole_groups_and_large_members_stay_on_one():
    assert placement.devices_used(2, 0, n_devices=2) == 2
    assert placement.devices_used(1, 0, n_devices=2) == 1  # a group is never split
    assert placement.devices_used(3, 0, n_devices=8) == 3
    assert placement.devices_used(6, 0, n_devices=1) == 1
    assert placement.devices_used(4, 101_770, n_devices=2) == 1


def test_groups_round_trip_and_pad_with_the_last_config():
    values = np.arange(7.0)
    g = np.asarray(placement.to_groups(jnp.asarray(values), 2, 4))
    assert g.tolist() == [[0, 1, 2, 3], [4, 5, 6, 6]]
    state_leaf = np.stack([g, g + 10])[:, :, :, None].transpose(
        1, 0, 2, 3
    )  # (G,S,Cg,1)
    back = np.asarray(placement.from_groups(state_leaf, 7))
    np.testing.assert_array_equal(back[..., 0], [values, values + 10])


def test_an_empty_reglab_cache_means_the_default_not_the_working_folder(monkeypatch):
    # REGLAB_CACHE="" once put the compile cache in ./jax, which then shadowed the
    # jax package for a python started in that folder
    import jax

    from reglab.placement import enable_compile_cache

    before = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("REGLAB_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    try:
        enable_compile_cache()
        assert jax.config.jax_compilation_cache_dir == "/somewhere/cache/reglab/jax"
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def _mappings() -> int:
    with open(f"/proc/{os.getpid()}/maps") as f:
        return sum(1 for _ in f)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_a_long_lived_process_keeps_a_bounded_number_of_compiled_programs(monkeypatch):
    # Each CPU executable holds its machine code in memory mappings, and Linux stops a
    # process at vm.max_map_count of them (65530): an unbounded cache of programs
    # killed the test suite inside XLA's compiler (SIGABRT) and cache (SIGSEGV).
    def compile_one(n):
        def program(a, b):  # a fresh function per run, as the trainer builds its own
            return jnp.tanh(a @ b).sum(axis=0)

        # numpy arguments: jnp.ones would compile (and keep) a program per shape itself
        args = (np.ones((n, 3), np.float32), np.ones((3, 4), np.float32))
        return placement.compiled(("bounded-cache-test", n), program, args)

    kept = 8  # the bound is a setting: a small one makes the test quick
    monkeypatch.setattr(placement, "PROGRAMS_KEPT", kept)
    for n in range(1, 2 * kept + 1):  # fill the cache, and let the allocator settle
        compile_one(n)
    full = _mappings()
    for n in range(2 * kept + 1, 5 * kept + 1):
        compile_one(n)
    # Once full, 24 more programs leave the mappings where they were (each program
    # holds ~8: before the bound they grew by ~200 here), give or take allocator noise.
    assert _mappings() - full < 50, _mappings() - full
    assert len(placement.PROGRAMS) <= kept
    assert compile_one(5 * kept)[1] == 0.0  # the most recent is served from the cache
    assert ("bounded-cache-test", 1) not in {k[0] for k in placement.PROGRAMS}


def test_workers_are_dealt_equal_disjoint_runs_of_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {7, 2, 3, 6, 4, 5, 0, 1})
    assert placement.deal_cores(2) == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert placement.deal_cores(3) == [(0, 1), (2, 3), (4, 5)]  # two left idle
    assert placement.deal_cores(10) == [(i % 8,) for i in range(10)]  # round again
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5, 2})  # a cpuset
    assert placement.deal_cores(2) == [(2,), (5,)]


def where_i_run(task, events):
    """A worker's task: wait (so each worker takes one), say which cores it may use."""
    import time

    time.sleep(1.0)
    return os.getpid(), sorted(os.sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_each_spawned_worker_runs_on_its_own_cores():
    from reglab.lab.sweep import LocalExecutor

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores")
    executor = LocalExecutor(2)
    try:
        outcomes = [
            r
            for tag, r in executor.run(where_i_run, [(0, 0), (1, 1)])
            if tag is not None
        ]
    finally:
        executor.close(cancel=False)
    by_pid = dict(outcomes)
    assert len(by_pid) == 2, f"both tasks ran in one worker: {outcomes}"
    first, second = by_pid.values()
    assert first and second and not set(first) & set(second)  # no core shared
    assert set(first) | set(second) <= set(cores)
    assert len(first) == len(second) == len(cores) // 2
