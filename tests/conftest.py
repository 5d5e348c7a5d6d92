"""Shared fixtures: fresh PRNG keys. Two CPU devices, whatever the machine's cores."""

import itertools
import os

os.environ.setdefault("REGLAB_CPU_DEVICES", "2")  # the multi-device paths are tested
import jax  # noqa: E402
import pytest  # noqa: E402

import reglab  # noqa: E402,F401  (claims the devices before JAX starts)


@pytest.fixture
def getkey():
    """Return a function that hands out a fresh PRNG key on each call."""
    counter = itertools.count()
    return lambda: jax.random.fold_in(jax.random.PRNGKey(1234), next(counter))
