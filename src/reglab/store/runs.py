"""What a stored run is: its key (experiment, config hash, seed), provenance, row.

The config hash is the sha256 of the config's canonical JSON (sorted keys, no
spaces) with the seeds left out, so the same settings under another seed share it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import socket
import sqlite3
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import reglab

ENV = "REGLAB_STORE"
DEFAULT_PATH = Path("reglab-runs") / "runs.sqlite"
SEED_KEYS = ("seed", "seeds")  # left out of the config hash: the seed is its own key


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """Return the database path: path, else $REGLAB_STORE, else the default.

    A folder stands for the runs.sqlite inside it.
    """
    chosen = Path(path or os.environ.get(ENV, "").strip() or DEFAULT_PATH).expanduser()
    return chosen / DEFAULT_PATH.name if chosen.is_dir() else chosen


def canonical_json(config: Mapping[str, Any]) -> str:
    """Return config as JSON with sorted keys and no spaces (NumPy values as lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.generic | np.ndarray):
            return value.tolist()
        raise TypeError(
            f"config values must be JSON types (dict, list, str, number, bool, None),"
            f" got {type(value).__name__}: {value!r}"
        )

    return json.dumps(
        config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=plain
    )


def config_hash(config: Mapping[str, Any]) -> str:
    """Return the sha256 of config's canonical JSON, its seeds left out."""
    keyed = {k: v for k, v in config.items() if k not in SEED_KEYS}
    return hashlib.sha256(canonical_json(keyed).encode()).hexdigest()


@functools.cache
def git_revision() -> str | None:
    """Return the commit of the reglab source tree, or None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(reglab.__file__).parent,
            capture_output=True,
            text=True,
            timeout=2,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """Return what ran: reglab, JAX and Python versions, git revision, host, pid."""
    try:
        jax_version = metadata.version("jax")
    except metadata.PackageNotFoundError:
        jax_version = None
    return {
        "reglab_version": reglab.__version__,
        "jax_version": jax_version,
        "python_version": platform.python_version(),
        "git_revision": git_revision(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def now() -> str:
    """Return the UTC time in ISO 8601, so that text order is time order."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Run:
    """One stored run: its key, provenance and outcome (a row of the runs table)."""

    id: str
    experiment: str
    config: dict[str, Any]
    config_hash: str
    seed: int
    code_version: str
    status: str
    started_utc: str
    ended_utc: str | None
    reglab_version: str | None
    jax_version: str | None
    python_version: str | None
    git_revision: str | None
    host: str | None
    pid: int | None
    device: str | None
    error: str | None
    info: dict[str, Any]

    def orphaned(self) -> bool:
        """Return True if the run is marked running but its process here is gone."""
        if self.status != "running" or self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False


COLUMNS = ", ".join(f.name for f in fields(Run))


def run_from_row(row: sqlite3.Row) -> Run:
    values = dict(zip(row.keys(), row, strict=True))
    values["config"] = json.loads(values["config"])
    values["info"] = json.loads(values["info"] or "{}")
    return Run(**values)


class MetricHistory(NamedTuple):
    steps: np.ndarray  # (T,) int64
    values: np.ndarray  # (T,) float64, NaN where the run recorded NaN
