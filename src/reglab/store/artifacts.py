"""Arrays on disk: compressed .npz files checked by sha256, never loaded with pickle.

A file is written whole to a temporary name and moved into place with ``os.replace``,
so a reader never sees half of one; it is read back only if its bytes hash to the
sha256 the store recorded, and a corrupt, truncated or missing file raises one
StoreError naming the path, so the caller can retrain.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from reglab.store.schema import StoreError


class Artifact(NamedTuple):
    run_id: str
    name: str
    path: str  # relative to the database's folder
    sha256: str
    bytes: int


def npz_bytes(arrays: Mapping[str, ArrayLike]) -> bytes:
    """Return arrays as the bytes of a compressed .npz (no object arrays)."""
    converted = {k: np.asarray(v) for k, v in arrays.items()}
    for key, a in converted.items():
        if a.dtype.hasobject:
            raise TypeError(
                f"array {key!r} has dtype object, which .npz stores only by pickle —"
                " convert it to a numeric or string array"
            )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **converted)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write data to path through a temporary file and os.replace, or StoreError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):  # the folder itself may be the problem
            tmp.unlink(missing_ok=True)
        why = e.strerror or str(e)
        if e.filename and Path(e.filename) != tmp:  # e.g. a file where a folder goes
            why += f": {e.filename}"
        raise StoreError(
            f"cannot write artifact {path}: {why} — free disk space or"
            f" make {path.parent} writable (or choose another store with --store or"
            " REGLAB_STORE); earlier runs are intact"
        ) from e


def read_npz(path: Path, sha256: str | None = None) -> dict[str, np.ndarray]:
    """Return the arrays in the .npz at path, checked against sha256 when given."""
    fix = "retrain the run (its stored result is unusable)"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StoreError(f"artifact {path} cannot be read: {e.strerror} — {fix}") from e
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise StoreError(
            f"artifact {path} is corrupt: its sha256 is {actual[:12]}..., the store"
            f" recorded {sha256[:12]}... — {fix}"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise StoreError(f"artifact {path} is not a valid .npz ({e}) — {fix}") from e
