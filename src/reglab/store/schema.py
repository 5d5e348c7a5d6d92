"""The run store's file: opened, recognized as ours, migrated; errors explained.

Each migration is a small function named ``mNNN_what`` registered by ``@migration``
(the shape of simonw/llm's ``llm/migrations.py``). ``PRAGMA user_version`` counts the
migrations applied and ``PRAGMA application_id`` marks the file as reglab's, so a
foreign database is recognized and one written by a newer reglab (a user_version
above ``len(MIGRATIONS)``) is refused before anything touches it.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from reglab.store import header

APPLICATION_ID = int.from_bytes(b"RGLB", "big")  # 0x52474C42, in the file header
SQLITE_MAGIC = header.SQLITE_MAGIC
STATUSES = ("running", "finished", "failed", "interrupted")

MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []


class StoreError(RuntimeError):
    """A run store or an artifact cannot be used; the message names the file."""


def migration(fn: Callable[[sqlite3.Connection], None]):
    """Register fn as the next migration; its name carries its number (m001_...)."""
    assert fn.__name__.startswith(f"m{len(MIGRATIONS) + 1:03d}_"), fn.__name__
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    db.execute(f"""
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,  -- 12 hex digits; any unique prefix names the run
            experiment TEXT NOT NULL,
            config TEXT NOT NULL,  -- the fully resolved config, JSON
            config_hash TEXT NOT NULL,  -- sha256 of canonical JSON, seeds left out
            seed INTEGER NOT NULL,
            code_version TEXT NOT NULL,  -- the cache matches on it
            status TEXT NOT NULL CHECK (status IN ({statuses})),
            started_utc TEXT NOT NULL,  -- ISO 8601, so text order is time order
            ended_utc TEXT,
            reglab_version TEXT, jax_version TEXT, python_version TEXT,
            git_revision TEXT, host TEXT, pid INTEGER, device TEXT,
            error TEXT,  -- failed runs: what went wrong
            info TEXT  -- JSON object: timings, notes
        )""")
    db.execute(
        "CREATE INDEX runs_key ON runs"
        " (experiment, config_hash, seed, code_version, status)"
    )
    db.execute("CREATE INDEX runs_started ON runs (started_utc)")
    db.execute("""
        CREATE TABLE metrics (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            step INTEGER NOT NULL,
            value REAL,  -- NULL stands for NaN (SQLite stores no NaN)
            PRIMARY KEY (run_id, name, step)
        ) WITHOUT ROWID""")
    db.execute("""
        CREATE TABLE claims (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            statement TEXT NOT NULL,
            measured REAL, threshold REAL,
            comparison TEXT NOT NULL,
            passed INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (run_id, name)
        )""")
    db.execute("""
        CREATE TABLE artifacts (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            path TEXT NOT NULL,  -- relative to the database's folder
            sha256 TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            PRIMARY KEY (run_id, name)
        )""")


@migration
def m002_sweeps(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE sweeps (
            key TEXT PRIMARY KEY,  -- sha256 of the command's inputs and code version
            experiment TEXT NOT NULL,
            created_utc TEXT NOT NULL,
            points TEXT NOT NULL  -- JSON: each point's config, runs and claims
        )""")


def check(db: sqlite3.Connection, path: Path) -> int:
    """Return the file's schema version; raise StoreError if it is not ours to use.

    Reads only, so a refused file is left byte-identical.
    """
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id != APPLICATION_ID and (app_id != 0 or tables):
        raise StoreError(
            f"{path} is an SQLite database but not a reglab run store"
            f" (application_id {app_id:#x}, {tables} schema objects) — choose another"
            " path with --store or REGLAB_STORE, or move the file aside"
        )
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{path} was written by a newer reglab (schema version {version}, this"
            f" reglab knows up to {len(MIGRATIONS)}) — upgrade reglab"
            " (pip install -U reglab); the file was left unchanged"
        )
    return version


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Apply the missing migrations in one write transaction; return the version."""
    db.execute("BEGIN IMMEDIATE")  # another process may have migrated meanwhile
    try:
        version = check(db, path)
        if 0 < version < len(MIGRATIONS):  # a store with runs, not a new file
            backup(path, version)
        db.execute(
            "CREATE TABLE IF NOT EXISTS migrations"
            " (name TEXT PRIMARY KEY, applied_utc TEXT NOT NULL)"
        )
        for fn in MIGRATIONS[version:]:
            fn(db)
            now = datetime.now(UTC).isoformat()
            db.execute("INSERT INTO migrations VALUES (?, ?)", (fn.__name__, now))
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def backup(path: Path, version: int) -> Path:
    """Copy the store as it is (schema version) beside it; return the copy's path.

    Called inside a write transaction: a second connection reads the state
    before the migration (no one can write meanwhile) through SQLite's backup API.
    Copying the bytes could miss the -wal, and closing a descriptor of our own on
    the file would drop this process's locks on it (see header.py).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
    try:
        with (
            contextlib.closing(sqlite3.connect(path, timeout=30)) as source,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)  # the writer itself cannot: it holds the lock
    except (OSError, sqlite3.Error) as e:
        target.unlink(missing_ok=True)
        raise StoreError(
            f"cannot back up {path} to {target} before migrating it to schema"
            f" version {len(MIGRATIONS)}: {e} — free disk space or make"
            f" {path.parent} writable; the store was left unchanged"
        ) from e
    return target


def open_database(
    path: Path, journal: str, busy_timeout_s: float
) -> tuple[sqlite3.Connection, str, tuple[int, int, int]]:
    """Return a connection to the store at path, migrated, its journal mode and the
    key of this process's header descriptor (header.release it after closing).

    journal "wal" falls back to the rollback journal ("delete") where SQLite refuses
    WAL (network file systems); "delete" forces that fallback.
    """
    if journal not in ("wal", "delete"):
        raise ValueError(
            f"journal must be 'wal' or 'delete', got {journal!r} — 'delete' is"
            " the rollback journal for file systems without WAL"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        key = header.hold(path)  # never open(path).read(): its close drops locks
    except (OSError, sqlite3.Error) as e:
        with contextlib.suppress(NameError):
            db.close()
        raise StoreError(
            f"cannot open the run store {path}: {e} — make {path.parent} writable,"
            " or choose another path with --store or REGLAB_STORE"
        ) from e
    try:
        refuse_damaged(key, path)  # before anything writes
        # Processes opening one store at once take turns here: switching the journal
        # mode and migrating a new file raced (one saw the tables before the
        # application id, another waited out the busy timeout).
        with _opening(path):
            version = check(db, path)
            mode = None
            if journal == "wal":
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":  # WAL refused (or not wanted): the rollback journal
                mode = db.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            if version < len(MIGRATIONS):
                migrate(db, path)
    except BaseException as e:
        db.close()
        header.release(key)
        if isinstance(e, sqlite3.Error):
            raise explain(e, path, busy_timeout_s) from e
        raise
    return db, mode, key


def refuse_damaged(key: tuple[int, int, int], path: Path) -> None:
    """Raise StoreError if path's header is not a sound reglab store header.

    A file whose first page is wrong but whose next pages are SQLite b-tree pages
    is a damaged store, named with the repair; any other is not a store at all.
    """
    why = header.problem(header.read(key), APPLICATION_ID)
    if why is None:
        return
    if header.looks_like_pages(key):
        raise StoreError(
            f"{path} is a damaged run store: {why}, though its other pages are"
            f" SQLite's — `reglab doctor --store {path}` rebuilds the header or"
            " recovers the runs into a new file (this one is left as it is)"
        )
    if "application id" in why:
        return  # check() names a foreign SQLite database
    raise StoreError(
        f"{path} is not an SQLite database ({why}), so not a reglab run store —"
        " choose another path with --store or REGLAB_STORE, or move the file aside"
    )


@contextlib.contextmanager
def _opening(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path's sidecar lock file while a process opens it."""
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def explain(e: sqlite3.Error, path: Path, busy_timeout_s: float) -> StoreError:
    """Return a StoreError naming the database file, what failed and the fix."""
    text = str(e)
    if "locked" in text or "busy" in text:
        fix = f"another process held it for over {busy_timeout_s:g} s; retry"
    elif "full" in text:
        fix = "free disk space; earlier runs are intact"
    elif "readonly" in text or "unable to open" in text:
        fix = f"make {path.parent} writable, or choose another store"
    else:
        fix = (
            f"the file is damaged: `reglab doctor --store {path}` recovers its runs"
            " into a new file (this one is left as it is), or move it aside and"
            " rerun (runs are retrained)"
        )
    return StoreError(f"run store {path}: {text} — {fix}")
