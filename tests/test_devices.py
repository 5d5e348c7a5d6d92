"""One JAX CPU device per core, claimed at import unless the user chose first."""

import os
import subprocess
import sys

import pytest

from reglab import devices


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


def test_import_claims_one_device_per_core_capped():
    expected = min(devices.available_cores(), devices.MAX_DEFAULT)
    assert n_devices_in_fresh_python("import reglab") == expected


def test_environment_variable_sets_the_count():
    assert n_devices_in_fresh_python("import reglab", REGLAB_CPU_DEVICES="3") == 3
    assert n_devices_in_fresh_python("import reglab", REGLAB_CPU_DEVICES="1") == 1


def test_the_users_choice_wins():
    forced = "--xla_force_host_platform_device_count=5"
    assert n_devices_in_fresh_python("import reglab", XLA_FLAGS=forced) == 5
    config = "import jax; jax.config.update('jax_num_cpu_devices', 4); import reglab"
    assert n_devices_in_fresh_python(config, REGLAB_CPU_DEVICES="2") == 4


def test_a_started_backend_is_left_alone():
    started = "import jax; jax.numpy.zeros(1).block_until_ready(); import reglab"
    assert n_devices_in_fresh_python(started, REGLAB_CPU_DEVICES="3") == 1


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_environment_value_raises(monkeypatch, raw):
    monkeypatch.setenv("REGLAB_CPU_DEVICES", raw)
    with pytest.raises(ValueError, match="REGLAB_CPU_DEVICES must be a positive"):
        devices.requested_cpu_devices()
