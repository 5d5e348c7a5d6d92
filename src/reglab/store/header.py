"""The store file's first 100 bytes, read without ever dropping SQLite's locks.

POSIX advisory locks belong to a process and a file: closing *any* descriptor on
the file drops every lock the process holds on it, SQLite's included (SQLite's
"How To Corrupt An SQLite Database File", section 2.2). reglab once peeked at the
header with ``open(path).read(16)`` beside a connection still open in the same
process; another process closing its own connection then found no lock, took
itself for the last user, checkpointed and deleted the live -wal and -shm, and a
later checkpoint wrote a metrics page over page 1. So this process opens one
read-only descriptor per store file and closes it only when no Store here uses the
file any more (after their connections closed): reading the header never drops a
lock.
"""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100

_LOCK = threading.Lock()
_HELD: dict[tuple[int, int, int], list[int]] = {}  # key -> [users, fd, ...]
_BY_FILE: dict[tuple[int, int], tuple[int, int, int]] = {}  # (device, inode) -> key
_SERIAL = itertools.count()


def _live(device: int, inode: int) -> tuple[int, int, int] | None:
    """Return the key held for this file, or None (none, or a deleted file's)."""
    key = _BY_FILE.get((device, inode))
    if key is not None and os.fstat(_HELD[key][1]).st_nlink == 0:
        return None  # that file was deleted: this one reuses its inode number
    return key


def hold(path: Path) -> tuple[int, int, int]:
    """Return the key of this process's descriptor on path, opening it if none."""
    with _LOCK:
        st = os.stat(path)
        key = _live(st.st_dev, st.st_ino)
        if key is None:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            st = os.fstat(fd)  # the path may name another file since the stat
            key = _live(st.st_dev, st.st_ino)
            if key is None:
                key = (st.st_dev, st.st_ino, next(_SERIAL))
                _HELD[key] = [0]
                _BY_FILE[key[:2]] = key
            # a second descriptor on a held file is kept too: closing it drops locks
            _HELD[key].append(fd)
        _HELD[key][0] += 1
        return key


def release(key: tuple[int, int, int]) -> None:
    """Forget one user of key's descriptor; close it when none is left.

    Call only after the caller's own connection to the file is closed. SQLite
    connections this process opened without a Store are not counted: close them
    before the last Store on their file closes.
    """
    with _LOCK:
        entry = _HELD.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            del _HELD[key]
            if _BY_FILE.get(key[:2]) == key:
                del _BY_FILE[key[:2]]
            for fd in entry[1:]:
                os.close(fd)


def read(key: tuple[int, int, int], size: int = HEADER_BYTES) -> bytes:
    """Return the file's first size bytes (fewer if it is shorter) through key's fd."""
    with _LOCK:
        fd = _HELD[key][1]
        return os.pread(fd, min(size, os.fstat(fd).st_size), 0)


def read_file(path: Path) -> bytes:
    """Return the whole file at path without closing a descriptor that holds locks."""
    key = hold(path)
    try:
        return read(key, os.stat(path).st_size)
    finally:
        release(key)


def problem(head: bytes, application_id: int) -> str | None:
    """Return what is wrong with a store file's header bytes, or None if sound.

    An empty file is sound (a new store); so is application id 0 (set in the WAL,
    not yet checkpointed into the file).
    """
    if not head:
        return None
    if head[:16] != SQLITE_MAGIC:
        return f"it starts {head[:8]!r}, not SQLite's {SQLITE_MAGIC[:8]!r}"
    if len(head) < HEADER_BYTES:
        return f"its header is cut short at {len(head)} of {HEADER_BYTES} bytes"
    size = int.from_bytes(head[16:18], "big")
    if size != 1 and (size < 512 or size & (size - 1)):
        return f"its page size field says {size}, not a power of two from 512"
    app_id = int.from_bytes(head[68:72], "big")
    if app_id not in (0, application_id):
        return f"its application id is {app_id:#x}, not reglab's {application_id:#x}"
    return None


BTREE_PAGE_TYPES = (0x02, 0x05, 0x0A, 0x0D)  # interior/leaf index, interior/leaf table


def looks_like_pages(key: tuple[int, int, int], page_size: int = 4096) -> bool:
    """Return True if the pages after the first look like SQLite's (b-tree pages).

    Pages 2-9 are read: each must start as a b-tree page or with a zero byte (an
    overflow or freelist page's next-page number), and one at least as a b-tree.
    """
    with _LOCK:
        fd = _HELD[key][1]
        size = os.fstat(fd).st_size
        firsts = [
            os.pread(fd, 1, page_size * i) for i in range(1, min(size // page_size, 9))
        ]
    if size % page_size or not firsts:
        return False
    kinds = [b[0] for b in firsts if b]
    return all(k in (0, *BTREE_PAGE_TYPES) for k in kinds) and any(
        k in BTREE_PAGE_TYPES for k in kinds
    )
