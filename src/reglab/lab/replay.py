"""A finished sweep, replayed: the same command prints its points without the engine.

A sweep's key is the sha256 of its inputs (experiment, settings, grid axes, --seeds,
--quick) and the code version, so the same inputs resolve to the same configs. When a
sweep finishes, the store records each point's resolved config, runs and claims under
that key. The same command finds the record and replays it if every run it names is
still the newest finished run of its key and every result file still hashes to its
record: no JAX, no worker processes, no figures (importing JAX alone took ~0.8 s of
the 1.9 s a cached 4-point sweep took). Anything else (a run retrained, deleted or
corrupt, ``--force``, an edited source file) takes the full path, which checks every
setting, retrains what is missing and records the sweep again.
"""

from __future__ import annotations

import hashlib
from typing import Any

from reglab.data import files
from reglab.store import Store, resolve_path
from reglab.store.runs import canonical_json


def sweep_key(
    experiment: str,
    settings: dict[str, Any],
    axes: dict[str, list[Any]],
    *,
    seeds: int | None,
    quick: bool,
    version: str,
) -> str:
    """Return the key of a sweep command's inputs under this code version."""
    inputs = {
        "experiment": experiment,
        "settings": settings,
        "axes": axes,
        "seeds": seeds,
        "quick": quick,
        "version": version,
        # a dataset file's content: a changed file is a new sweep, never a replay
        "files": files.fingerprint([settings, axes]),
    }
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()


def _intact(store: Store, run_id: str) -> bool:
    """Return whether run_id's stored result still hashes to its record."""
    for a in store.artifacts(run_id):
        if a.name == "result":
            try:
                data = (store.root / a.path).read_bytes()
            except OSError:
                return False
            return hashlib.sha256(data).hexdigest() == a.sha256
    return False


def replay(store: Store, key: str, experiment: str, version: str) -> list[dict] | None:
    """Return the recorded points of the sweep key if all still hold, else None."""
    points = store.find_sweep(key)
    if points is None:
        return None
    holders = set()
    for point in points:
        for seed, run_id in point["runs"].items():
            run = store.find(experiment, point["config"], int(seed), version)
            if run is None or run.id != run_id:
                return None
            holders.add(run.info.get("group_run", run.id))
    if not all(_intact(store, h) for h in holders):
        return None
    return [{**p, "trained": False} for p in points]


def recorded(
    store_path: str | None,
    experiment: str,
    settings: dict[str, Any],
    axes: dict[str, list[Any]],
    *,
    seeds: int | None,
    quick: bool,
    look: bool = True,
) -> tuple[str, list[dict] | None]:
    """Return a sweep command's key and, if look, its replayed points (or None)."""
    from reglab.lab.runner import code_version

    version = code_version()
    key = sweep_key(experiment, settings, axes, seeds=seeds, quick=quick,
                    version=version)  # fmt: skip
    if not look or not resolve_path(store_path).is_file():  # no store: none made
        return key, None
    with Store(store_path) as store:
        return key, replay(store, key, experiment, version)
