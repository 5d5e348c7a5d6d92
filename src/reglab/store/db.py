"""The Store: one SQLite file of runs, metric histories, claims and artifact records.

Every write is one short ``BEGIN IMMEDIATE`` transaction, so several processes can
share a store (WAL with a busy timeout; the rollback journal where WAL is refused).
Arrays live beside the database under ``artifacts/<run id>/`` (see artifacts.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from reglab.store import header, schema
from reglab.store.artifacts import Artifact, npz_bytes, read_npz, write_atomic
from reglab.store.runs import (
    COLUMNS,
    MetricHistory,
    Run,
    canonical_json,
    config_hash,
    now,
    provenance,
    resolve_path,
    run_from_row,
)
from reglab.store.schema import STATUSES, StoreError

CHECKPOINTS = ("last", "best")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # artifact names become file names


def _real(x: float) -> float | None:
    return None if math.isnan(x) else x  # SQLite has no NaN: NULL stands for it


class Freed(NamedTuple):
    files: int
    bytes: int


class Store:
    """A run store: Store(path) opens (creating and migrating) the database."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        journal: str = "wal",
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.path = resolve_path(path)
        self.root = self.path.parent
        self.artifacts_dir = self.root / "artifacts"
        self.busy_timeout_s = busy_timeout_s
        self._db, self.journal_mode, self._key = schema.open_database(
            self.path, journal, busy_timeout_s
        )
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        """Close the database connection (then, if no other Store here uses the
        file, this process's header descriptor on it)."""
        key = getattr(self, "_key", None)
        if key is None:
            return
        self._db.close()  # from another thread this raises: the descriptor stays
        self._key = None
        header.release(key)

    def __del__(self) -> None:
        # A Store nobody closed (a Lab's) closes when dropped: Python 3.11 frees a
        # connection only in the cycle collector (it and its statement cache refer
        # to each other), minutes later in a big process.
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, e: sqlite3.Error) -> StoreError:
        return schema.explain(e, self.path, self.busy_timeout_s)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one BEGIN IMMEDIATE transaction (waits for the lock)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._check_header()
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise self._error(e) from e

    def _check_header(self) -> None:
        """Raise StoreError, naming the repair, if the file's header is not sound."""
        schema.refuse_damaged(self._key, self.path)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise self._error(e) from e

    def _require(self, run_id: str) -> None:
        if not self._read("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
            raise StoreError(
                f"no run {run_id!r} in {self.path} — `reglab runs` lists them"
            )

    # Runs: start, end, find, get, list, delete.

    def start_run(
        self,
        experiment: str,
        config: Mapping[str, Any],
        seed: int,
        *,
        code_version: str,
        device: str | None = None,
    ) -> Run:
        """Record a new running run of experiment with config and seed; return it."""
        row = {
            "experiment": experiment,
            "config": canonical_json(config),
            "config_hash": config_hash(config),
            "seed": int(seed),
            "code_version": code_version,
            "status": "running",
            "started_utc": now(),
            **provenance(),
            "device": device,
        }
        with self._write() as db:
            run_id = secrets.token_hex(6)
            while db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                run_id = secrets.token_hex(6)
            names = ", ".join(["id", *row])
            marks = ", ".join("?" * (len(row) + 1))
            db.execute(
                f"INSERT INTO runs ({names}) VALUES ({marks})", (run_id, *row.values())
            )
        return self.get(run_id)

    def end_run(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> Run:
        """Mark run_id finished, failed (with error) or interrupted; return it."""
        if status not in STATUSES[1:]:
            raise ValueError(
                f"status must be one of {STATUSES[1:]}, got {status!r} — a run starts"
                " as 'running' (start_run, restart_run)"
            )
        with self._write() as db:
            done = db.execute(
                "UPDATE runs SET status = ?, ended_utc = ?, error = ?, info = ?"
                " WHERE id = ?",
                (status, now(), error, canonical_json(info or {}), run_id),
            )
        if done.rowcount == 0:
            self._require(run_id)
        return self.get(run_id)

    def restart_run(self, run_id: str) -> Run:
        """Mark run_id running again in this process (to resume it); return it."""
        with self._write() as db:
            done = db.execute(
                "UPDATE runs SET status = 'running', ended_utc = NULL, error = NULL,"
                " host = ?, pid = ? WHERE id = ?",
                (socket.gethostname(), os.getpid(), run_id),
            )
        if done.rowcount == 0:
            self._require(run_id)
        return self.get(run_id)

    def find(
        self,
        experiment: str,
        config: Mapping[str, Any],
        seed: int,
        code_version: str,
        *,
        status: str = "finished",
    ) -> Run | None:
        """Return the newest run with this key, code version and status, or None."""
        rows = self._read(
            f"SELECT {COLUMNS} FROM runs WHERE experiment = ? AND config_hash = ?"
            " AND seed = ? AND code_version = ? AND status = ?"
            " ORDER BY started_utc DESC, rowid DESC LIMIT 1",
            (experiment, config_hash(config), int(seed), code_version, status),
        )
        return run_from_row(rows[0]) if rows else None

    def get(self, run_id: str) -> Run:
        """Return the run whose id is run_id or starts with it (unique prefix)."""
        prefix = run_id.strip().lower()
        rows = []
        if re.fullmatch(r"[0-9a-f]{1,12}", prefix):  # ids are hex: 'g' sorts after
            rows = self._read(
                f"SELECT {COLUMNS} FROM runs WHERE id >= ? AND id < ? LIMIT 6",
                (prefix, prefix + "g"),
            )
        if not rows:
            self._require(run_id)
        if len(rows) > 1:
            ids = ", ".join(r["id"] for r in rows[:5])
            raise StoreError(
                f"run id {run_id!r} is ambiguous in {self.path}: it starts {ids}"
                f"{', ...' if len(rows) > 5 else ''} — type more of the id"
            )
        return run_from_row(rows[0])

    def list_runs(
        self, experiment: str | None = None, status: str | None = None
    ) -> list[Run]:
        """Return the runs, newest first, of one experiment and/or status if given."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        where = [
            (c, v) for c, v in [("experiment", experiment), ("status", status)] if v
        ]
        sql = f"SELECT {COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where)
        sql += " ORDER BY started_utc DESC, rowid DESC"
        return [run_from_row(r) for r in self._read(sql, [v for _, v in where])]

    def delete(self, run_id: str) -> None:
        """Delete run_id with its metrics, claims, artifact records and files."""
        with self._write() as db:
            done = db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        if done.rowcount == 0:
            self._require(run_id)
        shutil.rmtree(self.artifacts_dir / run_id, ignore_errors=True)

    # Metric histories and claims.

    def log_metrics(
        self,
        run_id: str,
        name: str,
        values: ArrayLike,
        steps: ArrayLike | None = None,
    ) -> None:
        """Record a metric history: values[i] at steps[i] (default 0, 1, ...)."""
        v = np.asarray(values, dtype=np.float64).ravel()  # (T,)
        s = np.arange(v.size) if steps is None else np.asarray(steps).ravel()
        if s.shape != v.shape or not np.issubdtype(s.dtype, np.integer):
            raise ValueError(
                f"steps must be integers, one per value ({v.size}), got {s.dtype}"
                f" {s.shape} — pass steps=None for 0, 1, ..."
            )
        rows = [
            (run_id, name, i, _real(x))
            for i, x in zip(s.tolist(), v.tolist(), strict=True)
        ]
        with self._write() as db:
            self._require(run_id)  # inside the lock: no one deletes it meanwhile
            db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", rows)

    def metrics(self, run_id: str) -> dict[str, MetricHistory]:
        """Return run_id's metric histories by name, each in step order."""
        rows = self._read(
            "SELECT name, step, value FROM metrics WHERE run_id = ?"
            " ORDER BY name, step",
            (run_id,),
        )
        histories = {}
        for name, group in itertools.groupby(rows, key=lambda r: r["name"]):
            steps, values = zip(*((r["step"], r["value"]) for r in group), strict=True)
            histories[name] = MetricHistory(
                np.array(steps, np.int64),
                np.array(values, np.float64),  # None -> NaN
            )
        return histories

    def record_claims(self, run_id: str, claims: Iterable[Mapping[str, Any]]) -> None:
        """Record claims: dicts like Claim.to_dict() (name, statement, measured...)."""
        rows = [
            (
                run_id,
                c["name"],
                c["statement"],
                _real(float(c["measured"])),
                _real(float(c["threshold"])),
                c["comparison"],
                int(bool(c["passed"])),
                c.get("detail", ""),
            )
            for c in claims
        ]
        with self._write() as db:
            self._require(run_id)
            db.executemany(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def claims(self, run_id: str) -> list[dict[str, Any]]:
        """Return run_id's claims as dicts, in the order they were recorded."""
        rows = self._read(
            "SELECT name, statement, measured, threshold, comparison, passed, detail"
            " FROM claims WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
        nan = float("nan")  # stored as NULL
        return [
            {
                **dict(r),
                "measured": nan if r["measured"] is None else r["measured"],
                "threshold": nan if r["threshold"] is None else r["threshold"],
                "passed": bool(r["passed"]),
            }
            for r in rows
        ]

    # Sweeps: each point's config, runs and claims, so the same command replays.

    def record_sweep(self, key: str, experiment: str, points: list[dict]) -> None:
        """Record a finished sweep's points under key (its inputs + code version)."""
        body = json.dumps(points, separators=(",", ":"))
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?, ?)",
                (key, experiment, now(), body),
            )

    def find_sweep(self, key: str) -> list[dict] | None:
        """Return the points recorded under key, or None."""
        rows = self._read("SELECT points FROM sweeps WHERE key = ?", (key,))
        return json.loads(rows[0]["points"]) if rows else None

    # Artifacts: arrays as .npz beside the database; checkpoints for resuming.

    def save_arrays(
        self, run_id: str, name: str, arrays: Mapping[str, ArrayLike]
    ) -> Artifact:
        """Store arrays as run_id's artifact name, replacing any earlier one."""
        if not NAME.fullmatch(name):
            raise ValueError(
                f"artifact name must be letters, digits, '-' or '_', got {name!r}"
            )
        self._require(run_id)  # also keeps run_id a plain folder name
        data = npz_bytes(arrays)
        sha = hashlib.sha256(data).hexdigest()
        # Named by content: the row always points at a whole file, old or new.
        path = f"artifacts/{run_id}/{name}.{sha[:16]}.npz"
        write_atomic(self.root / path, data)
        with self._write() as db:
            old = db.execute(
                "SELECT path FROM artifacts WHERE run_id = ? AND name = ?",
                (run_id, name),
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?)",
                (run_id, name, path, sha, len(data)),
            )
        if old and old["path"] != path:
            (self.root / old["path"]).unlink(missing_ok=True)
        return Artifact(run_id, name, path, sha, len(data))

    def artifacts(self, run_id: str) -> list[Artifact]:
        """Return run_id's artifact records, by name."""
        rows = self._read(
            "SELECT * FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
        )
        return [Artifact(*r) for r in rows]

    def load_arrays(self, run_id: str, name: str) -> dict[str, np.ndarray]:
        """Return run_id's artifact name, checked against its sha256 (no pickle)."""
        rows = self._read(
            "SELECT path, sha256 FROM artifacts WHERE run_id = ? AND name = ?",
            (run_id, name),
        )
        if not rows:
            raise StoreError(
                f"run {run_id} has no artifact {name!r} in {self.path} — `reglab show"
                f" {run_id}` lists its artifacts"
            )
        return read_npz(self.root / rows[0]["path"], rows[0]["sha256"])

    def save_checkpoint(
        self, run_id: str, which: str, arrays: Mapping[str, ArrayLike]
    ) -> Artifact:
        """Store run_id's 'last' or 'best' checkpoint, replacing the previous one."""
        if which not in CHECKPOINTS:
            raise ValueError(f"which must be one of {CHECKPOINTS}, got {which!r}")
        return self.save_arrays(run_id, f"checkpoint-{which}", arrays)

    def load_checkpoint(self, run_id: str, which: str) -> dict[str, np.ndarray] | None:
        """Return run_id's 'last' or 'best' checkpoint, or None if it has none."""
        if which not in CHECKPOINTS:
            raise ValueError(f"which must be one of {CHECKPOINTS}, got {which!r}")
        names = {a.name for a in self.artifacts(run_id)}
        if f"checkpoint-{which}" not in names:
            return None
        return self.load_arrays(run_id, f"checkpoint-{which}")

    def gc(self, *, grace_s: float = 3600.0) -> Freed:
        """Delete artifact files no run references (older than grace_s); count them.

        The grace period spares a file another process has written but not yet
        recorded.
        """
        rows = self._read("SELECT path FROM artifacts")
        referenced = {self.root / r["path"] for r in rows}
        cutoff = time.time() - grace_s
        files = n_bytes = 0
        for path in sorted(self.artifacts_dir.rglob("*"), reverse=True):
            if path.is_dir():
                with contextlib.suppress(OSError):  # only empty folders go
                    path.rmdir()
            elif path not in referenced and path.stat().st_mtime <= cutoff:
                n_bytes += path.stat().st_size
                path.unlink()
                files += 1
        return Freed(files, n_bytes)
