"""MNIST and Fashion-MNIST: bundled, from a folder or downloaded; subsets, splits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reglab.data.bundled import load_bundled
from reglab.data.checksum import read_checked
from reglab.data.download import download_file
from reglab.data.idx import parse_idx
from reglab.data.sources import DatasetSpec, FileSpec, check_split, dataset_spec

ENV_DATA = "REGLAB_DATA"  # a folder with the full IDX files
ENV_CACHE = "REGLAB_CACHE"  # where download=True stores them when no data_dir is given
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10


def default_cache_dir() -> Path:
    """Return the download cache: $REGLAB_CACHE, else $XDG_CACHE_HOME/reglab."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "reglab"


def _candidates(root: Path, spec: DatasetSpec, file: FileSpec) -> list[Path]:
    """Return where a standard file may sit under root, gzipped or not."""
    folders = [root / spec.folder, root / spec.name, root]
    names = [file.name, file.name.removesuffix(".gz")]
    return [folder / name for folder in folders for name in names]


def _read_from_dir(root: Path, spec: DatasetSpec, file: FileSpec) -> np.ndarray:
    """Return the verified array of one standard file found under root."""
    for path in _candidates(root, spec, file):
        if path.is_file():
            return parse_idx(read_checked(path, file), source=str(path))
    raise FileNotFoundError(
        f"{file.name} (or its gunzipped form) not found in {root / spec.folder} or "
        f"{root}; put the full {spec.name} files there, pass download=True to fetch "
        f"them, or leave data_dir and ${ENV_DATA} unset to use the bundled subset"
    )


def _fetch(root: Path, spec: DatasetSpec, file: FileSpec, base_url: str) -> np.ndarray:
    """Return the verified array of one file, downloading it if it is absent or bad."""
    dest = root / spec.folder / file.name
    if dest.is_file():
        try:
            return parse_idx(read_checked(dest, file), source=str(dest))
        except ValueError:
            pass  # a corrupt cached copy is replaced by a fresh download
    download_file(base_url.rstrip("/") + "/" + file.name, dest, file)
    return parse_idx(read_checked(dest, file), source=str(dest))


def _check_arrays(images: np.ndarray, labels: np.ndarray, source: str) -> None:
    """Raise if images and labels do not form a 10-class 28x28 dataset."""
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"{source}: images have shape {images.shape}, expected (n, 28, 28); "
            "is this an images file?"
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"{source}: {labels.shape} labels for {len(images)} images; use the "
            "labels file of the same split"
        )
    if labels.size and labels.max() >= N_CLASSES:
        raise ValueError(
            f"{source}: label {labels.max()} not in [0, {N_CLASSES}); use a labels file"
        )


def load(
    name: str,
    *,
    split: str = "train",
    flatten: bool = True,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    base_url: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images float32 in [0, 1], labels int32) of MNIST or Fashion-MNIST."""
    spec = dataset_spec(name)
    check_split(split)
    if data_dir is None and os.environ.get(ENV_DATA):
        data_dir = os.environ[ENV_DATA]
    files = spec.files[split]
    if download:
        root = Path(data_dir) if data_dir is not None else default_cache_dir()
        url = base_url or spec.mirror
        images, labels = (_fetch(root, spec, f, url) for f in files)
        source = str(root)
    elif data_dir is not None:
        root = Path(data_dir)
        images, labels = (_read_from_dir(root, spec, f) for f in files)
        source = str(root)
    else:
        # offline default: 5,000 training images or the full test set
        images, labels = load_bundled(spec.name, split)
        source = "bundled data"
    _check_arrays(images, labels, f"{spec.name} {split} from {source}")
    x = images.astype(np.float32) / np.float32(255.0)  # (n, 28, 28)
    if flatten:
        x = x.reshape(len(x), -1)  # (n, 784)
    return x, labels.astype(np.int32)


def _check_count(n: int, available: int, what: str) -> None:
    """Raise unless 1 <= n <= available."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"{what} must be an int, got {type(n).__name__}")
    if not 1 <= n <= available:
        raise ValueError(
            f"{what} must be in [1, {available}] for these {available} examples, "
            f"got {n}; ask for fewer, or load the full files (data_dir= or "
            "download=True) for more"
        )


def subset_indices(
    y: np.ndarray, n: int, *, seed: int, stratified: bool = True
) -> np.ndarray:
    """Return n distinct indices into y in random order, class-proportional if asked."""
    y = np.asarray(y)
    _check_count(n, len(y), "n")
    rng = np.random.default_rng(seed)
    if not stratified:
        return rng.choice(len(y), size=n, replace=False)
    classes, counts = np.unique(y, return_counts=True)
    # largest-remainder apportionment of n over the classes, ties broken at random
    exact = n * counts / len(y)
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((rng.random(len(classes)), -(exact - quota)))
    quota[order[: n - quota.sum()]] += 1
    picks = [
        rng.choice(np.flatnonzero(y == c), size=q, replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return rng.permutation(np.concatenate(picks))


def subset(
    x: np.ndarray, y: np.ndarray, n: int, *, seed: int, stratified: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Return n examples drawn without replacement, reproducibly from seed."""
    index = subset_indices(y, n, seed=seed, stratified=stratified)
    return x[index], y[index]


def train_val_split(
    x: np.ndarray, y: np.ndarray, n_val: int, *, seed: int, stratified: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_val, y_val) with n_val examples held out."""
    _check_count(n_val, len(y) - 1, "n_val")  # at least one example must stay
    val = subset_indices(y, n_val, seed=seed, stratified=stratified)
    keep = np.ones(len(y), dtype=bool)
    keep[val] = False
    train = np.random.default_rng(seed).permutation(np.flatnonzero(keep))
    return x[train], y[train], x[val], y[val]
