"""`reglab doctor`: name what is wrong with a store file and recover its runs.

A store whose header (or whole first page) was overwritten keeps its runs in the
other pages. The doctor never writes the damaged file: it reads it (with the
committed frames of its -wal applied), gives a copy a sound first page and reads
every table from the copy into a new store beside the old one:

- header rebuilt: the first page's schema is intact, only its 100 header bytes
  are wrong; they are written anew from the file's own page size and length.
- runs recovered: the first page is lost with the schema on it; the root page of
  each table is found among the pages no other page points to, named by the shape
  of its rows (runs have 18 fields, claims 8, ...), and a new first page lists them.

Then SQLite's own ``PRAGMA integrity_check`` must pass on the new store.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reglab.store.header import (
    BTREE_PAGE_TYPES,
    HEADER_BYTES,
    SQLITE_MAGIC,
    problem,
    read_file,
)
from reglab.store.schema import APPLICATION_ID, StoreError

PAGE_SIZE = 4096  # reglab's stores: SQLite's default, used when the header is lost
TABLES = {  # table -> (fields of a row, the columns of the copy's stand-in table)
    "runs": 18,
    "claims": 8,
    "artifacts": 5,
    "sweeps": 4,
    "migrations": 2,
}
ORDER = ("runs", "metrics", "claims", "artifacts", "sweeps")  # migrations: its own


@dataclass(frozen=True)
class Repaired:
    """What the doctor wrote: the new store, how, and the rows it holds per table."""

    path: Path
    how: str  # "header rebuilt" or "runs recovered"
    rows: dict[str, int]


def diagnose(path: Path) -> str | None:
    """Return what is wrong with the store file at path, or None if it is sound."""
    try:
        why = problem(read_file(path)[:HEADER_BYTES], APPLICATION_ID)
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror}") from e
    if why is not None:
        return why
    with _copy(_image(path)) as copy, contextlib.closing(sqlite3.connect(copy)) as db:
        try:
            found = db.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as e:
            return str(e)
    return None if found == [("ok",)] else "; ".join(r[0] for r in found[:3])


def repair(path: Path, into: Path) -> Repaired:
    """Write the runs of the damaged store at path into a new store at into."""
    if into.exists():
        raise StoreError(f"{into} exists — choose another --into or move it aside")
    image = _image(path)
    page_size = _page_size(image)
    if len(image) < 2 * page_size or len(image) % page_size:
        raise StoreError(
            f"{path} is {len(image)} bytes, not whole {page_size}-byte pages: not a"
            " damaged store the doctor can read"
        )
    if image[HEADER_BYTES] in (0x05, 0x0D):  # page 1's schema b-tree is there
        how = "header rebuilt"
        first = (
            _header(len(image) // page_size, page_size) + image[HEADER_BYTES:page_size]
        )
        sources = None
    else:
        how = "runs recovered"
        sources = _tables(image, page_size)
        first = _schema_page(sources, len(image) // page_size, page_size)
    with _copy(first + image[page_size:]) as copy:
        rows = _transfer(copy, into, sources)
    return Repaired(into, how, rows)


def _image(path: Path) -> bytes:
    """Return the file's bytes with its -wal's committed frames applied."""
    try:
        data = bytearray(read_file(path))  # a Store here may hold locks on it
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror}") from e
    wal = path.with_name(path.name + "-wal")
    frames = _wal_frames(wal.read_bytes()) if wal.is_file() else {}
    page_size = _page_size(bytes(data))
    for pgno, page in frames.items():
        if len(page) != page_size:
            break  # a WAL of another page size: not this file's
        end = pgno * page_size
        if len(data) < end:
            data.extend(bytes(end - len(data)))
        data[end - page_size : end] = page
    return bytes(data)


def _wal_frames(wal: bytes) -> dict[int, bytes]:
    """Return {page: bytes} of a WAL's frames up to its last commit, salts matching."""
    if len(wal) < 32 or wal[:4] not in (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83"):
        return {}
    page_size = int.from_bytes(wal[8:12], "big")
    salts = wal[16:24]
    frames, pending, at = {}, {}, 32
    while at + 24 + page_size <= len(wal):
        pgno, commit = struct.unpack(">II", wal[at : at + 8])
        if wal[at + 8 : at + 16] != salts:
            break  # a frame left from an earlier generation of the log
        pending[pgno] = wal[at + 24 : at + 24 + page_size]
        if commit:  # a transaction's last frame: everything before it holds
            frames.update(pending)
            pending = {}
        at += 24 + page_size
    return frames


def _page_size(image: bytes) -> int:
    """Return the page size the header states, or reglab's default if it is lost."""
    if image[:16] == SQLITE_MAGIC:
        size = int.from_bytes(image[16:18], "big")
        size = 65536 if size == 1 else size
        if size >= 512 and not size & (size - 1):
            return size
    return PAGE_SIZE


def _header(n_pages: int, page_size: int) -> bytes:
    """Return a sound 100-byte header for a file of n_pages pages, rollback mode."""
    h = bytearray(HEADER_BYTES)
    h[:16] = SQLITE_MAGIC
    h[16:18] = (1 if page_size == 65536 else page_size).to_bytes(2, "big")
    h[18:24] = bytes([1, 1, 0, 64, 32, 32])  # versions, reserved, payload fractions
    # change counter 1, n_pages (valid: version-valid-for below equals the counter),
    # no freelist (pages once free are left unused), schema cookie 1, format 4, UTF-8
    struct.pack_into(">IIIIII", h, 24, 1, n_pages, 0, 0, 1, 4)
    struct.pack_into(">I", h, 56, 1)
    struct.pack_into(">I", h, 68, APPLICATION_ID)
    struct.pack_into(">II", h, 92, 1, sqlite3.sqlite_version_info[0] * 1000000)
    return bytes(h)


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    """Return (value, next offset) of the SQLite varint at buf[at:]."""
    value = 0
    for i in range(8):
        byte = buf[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | buf[at + 8], at + 9


def _btree(image: bytes, page_size: int, pgno: int) -> tuple[int, list[int], int]:
    """Return a b-tree page's type, its cell offsets and its header's offset."""
    base = (pgno - 1) * page_size
    at = base + (HEADER_BYTES if pgno == 1 else 0)
    kind = image[at]
    n_cells = int.from_bytes(image[at + 3 : at + 5], "big")
    pointers = at + (12 if kind in (0x02, 0x05) else 8)
    cells = [
        base + int.from_bytes(image[pointers + 2 * i : pointers + 2 * i + 2], "big")
        for i in range(n_cells)
    ]
    return kind, cells, at


def _children(image: bytes, page_size: int, pgno: int) -> list[int]:
    """Return the child pages of an interior b-tree page (none for a leaf)."""
    kind, cells, at = _btree(image, page_size, pgno)
    if kind not in (0x02, 0x05):
        return []
    right = int.from_bytes(image[at + 8 : at + 12], "big")
    return [int.from_bytes(image[c : c + 4], "big") for c in cells] + [right]


def _first_row(image: bytes, page_size: int, root: int) -> tuple[int, list[int]]:
    """Return the tree's kind (0x0D table, 0x0A index) and its first row's serial
    types (empty for an empty tree), going down the leftmost children."""
    pgno = root
    for _ in range(64):  # deeper than any real b-tree
        kind, cells, _ = _btree(image, page_size, pgno)
        if kind in (0x02, 0x05):
            pgno = _children(image, page_size, pgno)[0]
            continue
        if not cells:
            return kind, []
        _, at = _varint(image, cells[0])  # the payload size
        if kind == 0x0D:
            _, at = _varint(image, at)  # the rowid
        size, after = _varint(image, at)  # the record header's size, then types
        end, at, types = at + size, after, []
        while at < end:
            serial, at = _varint(image, at)
            types.append(serial)
        return kind, types
    raise StoreError(f"page {root} starts a b-tree deeper than 64 levels")


def _name(kind: int, types: list[int]) -> str | None:
    """Return which reglab table a tree with this first row holds, if any."""
    text, integer = (lambda t: t >= 13 and t % 2), (lambda t: 1 <= t <= 9)
    if kind == 0x0A:  # an index b-tree: of the tables, only metrics (WITHOUT ROWID)
        shaped = len(types) == 4 and text(types[0]) and text(types[1])
        return "metrics" if shaped and integer(types[2]) else None
    for table, n_fields in TABLES.items():
        if len(types) == n_fields:
            if table == "artifacts" and not integer(types[4]):
                return None  # a schema page (type, name, tbl_name, rootpage, sql)
            return table
    return None


def _tables(image: bytes, page_size: int) -> dict[str, list[int]]:
    """Return each reglab table's root pages: b-tree pages no page points to."""
    n_pages = len(image) // page_size
    kinds = {p: image[(p - 1) * page_size] for p in range(2, n_pages + 1)}
    trees = [p for p, k in kinds.items() if k in BTREE_PAGE_TYPES]
    pointed = {c for p in trees for c in _children(image, page_size, p)}
    found: dict[str, list[int]] = {}
    for root in (p for p in trees if p not in pointed):
        kind, types = _first_row(image, page_size, root)
        name = _name(0x0A if kind in (0x02, 0x0A) else 0x0D, types)
        if name is not None:
            found.setdefault(name, []).append(root)
    if "runs" not in found:
        raise StoreError("no page of runs is left in the file: nothing to recover")
    return found


def _schema_page(sources: dict[str, list[int]], n_pages: int, page_size: int) -> bytes:
    """Return a first page listing a stand-in table at each found root page."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder) / "schema.sqlite"
        with contextlib.closing(sqlite3.connect(scratch)) as db:
            db.execute(f"PRAGMA page_size = {page_size}")
            db.execute("CREATE TABLE x (y)")  # makes the file; dropped from the list
            db.execute("PRAGMA writable_schema = ON")
            db.execute("DELETE FROM sqlite_master")
            for table, roots in sources.items():
                for root in roots:
                    name = f"{table}_{root}"
                    db.execute(
                        "INSERT INTO sqlite_master VALUES ('table', ?, ?, ?, ?)",
                        (name, name, root, _stand_in(table, name)),
                    )
            db.commit()
        page = scratch.read_bytes()[:page_size]
    return _header(n_pages, page_size) + page[HEADER_BYTES:]


def _stand_in(table: str, name: str) -> str:
    """Return the CREATE TABLE of a plain table that reads table's rows in order."""
    if table == "metrics":
        return (
            f"CREATE TABLE {name} (c0, c1, c2, c3, PRIMARY KEY (c0, c1, c2))"
            " WITHOUT ROWID"
        )
    columns = ", ".join(f"c{i}" for i in range(TABLES[table]))
    return f"CREATE TABLE {name} ({columns})"


def _transfer(copy: Path, into: Path, sources: dict[str, list[int]] | None) -> dict:
    """Copy every row of the readable copy into a new store at into; count them."""
    from reglab.store.db import Store

    Store(into).close()  # a new, migrated store
    rows = {}
    with (
        contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(into, isolation_level=None)) as dst,
    ):
        dst.execute("BEGIN IMMEDIATE")
        for table in ORDER:
            names = (
                [table]
                if sources is None
                else [f"{table}_{root}" for root in sources.get(table, [])]
            )
            rows[table] = 0
            for name in names:
                with contextlib.suppress(sqlite3.OperationalError):  # no such table
                    found = src.execute(f"SELECT * FROM {name}").fetchall()
                    marks = ", ".join("?" * len(found[0])) if found else ""
                    if found:
                        done = dst.executemany(
                            f"INSERT OR IGNORE INTO {table} VALUES ({marks})", found
                        )
                        rows[table] += done.rowcount
        dst.execute("COMMIT")
        check = dst.execute("PRAGMA integrity_check").fetchall()
    if check != [("ok",)]:
        raise StoreError(
            f"the new store {into} fails SQLite's integrity check: {check}"
        )
    return rows


@contextlib.contextmanager
def _copy(image: bytes):
    """Yield the path of a temporary file holding image (deleted afterwards)."""
    with tempfile.TemporaryDirectory(prefix="reglab-doctor-") as folder:
        path = Path(folder) / "copy.sqlite"
        path.write_bytes(image)
        yield path


def default_into(path: Path) -> Path:
    """Return where the doctor writes by default: beside path, named recovered."""
    return path.with_name(f"{path.stem}.recovered{path.suffix or '.sqlite'}")


def examine(path: Path, into: Path | None = None) -> list[str]:
    """Diagnose the store at path and, if damaged, repair it into a new store;
    return the lines that say what was found and done."""
    if not path.is_file():
        raise StoreError(f"no run store at {path} — name one with --store PATH")
    why = diagnose(path)
    if why is None:
        return [f"{path} is sound (SQLite's integrity check passes): nothing to do"]
    into = into or default_into(path)
    done = repair(path, into)
    counts = ", ".join(f"{n} {table}" for table, n in done.rows.items())
    lines = [
        f"{path} is damaged: {why}",
        f"{done.how}: {into} holds {counts} (integrity check: ok);"
        f" {path} was left as it is",
        f"to use it: mv {path} {path}.damaged && mv {into} {path}",
    ]
    if into.resolve().parent != path.resolve().parent:
        lines.append(
            f"its artifacts stay in {path.parent / 'artifacts'}: move them too"
        )
    return lines
