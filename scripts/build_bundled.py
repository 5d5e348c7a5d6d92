"""Build the offline MNIST and Fashion-MNIST subsets that ship inside the wheel.

Usage: python scripts/build_bundled.py [--source ../shared/data]

Reads the real files in the source folder (checksums verified), writes gzipped IDX
subsets to src/reglab/data/bundled/ and records their decompressed sha256 in
bundled/manifest.json, which reglab.data.bundled checks at every load.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

from reglab.data.checksum import read_checked, sha256_hex
from reglab.data.idx import encode_idx, parse_idx
from reglab.data.sources import FASHION_MNIST, MNIST, FileSpec

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "reglab" / "data" / "bundled"
PER_CLASS = 500  # 10 classes x 500 = the 5,000-image training subsets

# the MNIST 5k training sample in ../shared/data (README's checksums)
MNIST_5K = (
    FileSpec(
        "train-5k-images-idx3-ubyte.gz",
        "a4a9358b9ba319305e7cd69b2c7410e463401e152d7e9e60189b94a3f159d012",
        "",
        5_000,
    ),
    FileSpec(
        "train-5k-labels-idx1-ubyte.gz",
        "704256e87519240fd1d7ecdf681fe209864691e252c6642aeadc21f3c4d44b41",
        "",
        5_000,
    ),
)


def read(folder: Path, spec: FileSpec) -> np.ndarray:
    """Return the verified array of one source file."""
    path = folder / spec.name
    return parse_idx(read_checked(path, spec), source=str(path))


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Return the first per_class indices of each class, in file order."""
    # no RNG: the subset is the same on every machine and numpy version
    picks = [np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def write(folder: str, name: str, array: np.ndarray, source: str) -> dict:
    """Write array as gzipped IDX under OUT/folder and return its manifest entry."""
    raw = encode_idx(array)
    path = OUT / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    return {
        "path": f"{folder}/{name}",
        "shape": list(array.shape),
        "sha256": sha256_hex(raw),
        "source": source,
    }


def main() -> None:
    """Build every bundled subset and the manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data")
    source = parser.parse_args().source
    manifest: dict[str, dict] = {}

    mnist_dir = source / MNIST.folder
    x5k, y5k = (read(mnist_dir, spec) for spec in MNIST_5K)
    manifest["mnist/train"] = {
        "images": write(
            "mnist",
            "train-5k-images-idx3-ubyte.gz",
            x5k,
            "5,000 real MNIST training images, 500 per class",
        ),
        "labels": write("mnist", "train-5k-labels-idx1-ubyte.gz", y5k, "their labels"),
    }

    fashion_dir = source / FASHION_MNIST.folder
    x, y = (read(fashion_dir, spec) for spec in FASHION_MNIST.files["train"])
    keep = first_per_class(y, PER_CLASS)
    manifest["fashion_mnist/train"] = {
        "images": write(
            "fashion-mnist",
            "train-5k-images-idx3-ubyte.gz",
            x[keep],
            "the first 500 training images of each class, file order",
        ),
        "labels": write(
            "fashion-mnist", "train-5k-labels-idx1-ubyte.gz", y[keep], "their labels"
        ),
    }

    for spec in (MNIST, FASHION_MNIST):
        x, y = (read(source / spec.folder, f) for f in spec.files["test"])
        images, labels = spec.files["test"]
        manifest[f"{spec.name}/test"] = {
            "images": write(spec.folder, images.name, x, "the full test set"),
            "labels": write(spec.folder, labels.name, y, "the full test labels"),
        }

    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (OUT / "manifest.json").write_text(text)
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
