"""Verify a data file's bytes against its known checksums."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from reglab.data.idx import GZIP_MAGIC, decompress
from reglab.data.sources import FileSpec


def sha256_hex(data: bytes) -> str:
    """Return the sha256 hex digest of data."""
    return hashlib.sha256(data).hexdigest()


def check_bytes(raw: bytes, spec: FileSpec, *, source: str) -> bytes:
    """Return raw decompressed after checking it against spec's checksums."""
    data = decompress(raw, source=source)
    if spec.sha256 is not None:
        # the decompressed digest is independent of how the file was gzipped
        got = sha256_hex(data)
        if got != spec.sha256:
            raise ValueError(
                f"checksum mismatch for {source}: decompressed sha256 {got}, expected "
                f"{spec.sha256}; the file is corrupt or is not {spec.name} - delete "
                "it and download it again"
            )
    elif raw.startswith(GZIP_MAGIC):
        got = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        if got != spec.gz_md5:
            raise ValueError(
                f"checksum mismatch for {source}: gz md5 {got}, expected the upstream "
                f"{spec.gz_md5}; delete it and download it again"
            )
    # a raw file with no known decompressed sha256 is checked by the IDX reader only
    return data


def read_checked(path: str | os.PathLike, spec: FileSpec) -> bytes:
    """Return the decompressed bytes of path after checking its checksums."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    return check_bytes(path.read_bytes(), spec, source=str(path))
