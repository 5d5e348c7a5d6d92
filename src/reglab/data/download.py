"""Fetch a data file over HTTP: streamed, verified, retried, renamed into place."""

from __future__ import annotations

import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from reglab.data.checksum import check_bytes
from reglab.data.sources import FileSpec

CHUNK = 1 << 16
# client errors that will not heal on retry; anything else (5xx, resets, short
# reads, timeouts) is retried with exponential backoff
_PERMANENT_HTTP = frozenset(range(400, 500)) - {408, 429}


class TruncatedDownload(OSError):
    """The server closed the connection before sending the promised bytes."""


def _fetch_once(url: str, tmp: Path, *, timeout: float) -> None:
    """Stream url into tmp, raising TruncatedDownload on a short body."""
    with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as f:
        expected = response.headers.get("Content-Length")
        received = 0
        while chunk := response.read(CHUNK):
            f.write(chunk)
            received += len(chunk)
    if expected is not None and received != int(expected):
        raise TruncatedDownload(
            f"{url} sent {received} of {expected} bytes before closing"
        )


def download_file(
    url: str,
    dest: str | os.PathLike,
    spec: FileSpec,
    *,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Download url to dest, verify it against spec, move it into place atomically."""
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # the temporary file sits beside dest so os.replace is an atomic rename
    fd, name = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=".part", dir=dest.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        for attempt in range(retries + 1):
            try:
                _fetch_once(url, tmp, timeout=timeout)
                break
            except urllib.error.HTTPError as err:
                if err.code in _PERMANENT_HTTP or attempt == retries:
                    raise OSError(
                        f"download of {url} failed with HTTP {err.code} after "
                        f"{attempt + 1} attempt(s); check the mirror URL or network"
                    ) from err
            except (OSError, http.client.HTTPException) as err:  # resets, short reads
                if attempt == retries:
                    raise OSError(
                        f"download of {url} failed after {attempt + 1} attempt(s): "
                        f"{err}; check your network or retry later"
                    ) from err
            time.sleep(backoff * 2**attempt)
        # a checksum mismatch is not retried: a mirror serving bad bytes keeps doing so
        check_bytes(tmp.read_bytes(), spec, source=f"download of {url}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
