"""The offline MNIST and Fashion-MNIST subsets shipped inside the package."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from reglab.data.checksum import sha256_hex
from reglab.data.idx import decompress, parse_idx

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
MANIFEST = BUNDLED_DIR / "manifest.json"


@functools.cache
def manifest() -> dict:
    """Return the manifest of bundled files (path, shape, sha256 per array)."""
    return json.loads(MANIFEST.read_text())


def _read(entry: dict) -> np.ndarray:
    """Return one bundled array after checking its sha256 and shape."""
    path = BUNDLED_DIR / entry["path"]
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled file {path} is missing; reinstall reglab or rebuild it with "
            "scripts/build_bundled.py"
        )
    data = decompress(path.read_bytes(), source=str(path))
    got = sha256_hex(data)
    if got != entry["sha256"]:
        raise ValueError(
            f"bundled file {path} is corrupt: sha256 {got}, manifest says "
            f"{entry['sha256']}; reinstall reglab or rebuild it with "
            "scripts/build_bundled.py"
        )
    array = parse_idx(data, source=str(path))
    assert list(array.shape) == entry["shape"], (path, array.shape)
    return array


@functools.cache
def load_bundled(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the bundled (images uint8 (n,28,28), labels uint8 (n,)) of a split."""
    entry = manifest()[f"{name}/{split}"]
    images, labels = _read(entry["images"]), _read(entry["labels"])
    # cached and shared between callers, so nobody may write into them
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels
