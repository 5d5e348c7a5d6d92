"""Shared fixtures: fresh PRNG keys ."""

import itertools

import jax
import pytest


@pytest.fixture
def getkey():
    """Return a function that hands out a fresh PRNG key on each call."""
    counter = itertools.count()
    return lambda: jax.random.fold_in(jax.random.PRNGKey(1234), next(counter))
