"""Shared fixtures: fresh PRNG keys. Two CPU devices, whatever the machine's cores."""

import itertools
import os

os.environ.setdefault("REGLAB_CPU_DEVICES", "2")  # the multi-device paths are tested
import jax  # noqa: E402
import pytest  # noqa: E402

from reglab.placement import claim_cpu_devices  # noqa: E402

claim_cpu_devices()  # before JAX starts, as the reglab command does


@pytest.fixture
def getkey():
    """Return a function that hands out a fresh PRNG key on each call."""
    counter = itertools.count()
    return lambda: jax.random.fold_in(jax.random.PRNGKey(1234), next(counter))
