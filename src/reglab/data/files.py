"""Your data: a classification set from an .npz or .csv file, checked as it loads.

A Config's ``dataset`` names a file as ``"npz:PATH"`` (arrays ``x`` (N, D) and ``y``
(N,), optionally ``x_test`` and ``y_test``) or ``"csv:PATH"`` (numeric columns, the
label last, an optional header line). Labels are integers 0..K-1 and every class of
0..K-1 has a training example. Each problem is one line naming the file, the row and
the fix, raised before anything trains.

A file's content is part of the run: ``pin`` appends the file's sha256 to the name
(``"csv:data.csv#sha256=9f2c..."``), so the config hashed into the run's key changes
when the file does. A pinned name whose file no longer has that hash is refused.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("npz", "csv")
PIN = "#sha256="


@dataclass(frozen=True)
class FileData:
    """A dataset read from a file: training arrays, the test split if it has one."""

    path: Path
    sha256: str
    x: np.ndarray  # (N, D) float32
    y: np.ndarray  # (N,) int32 in 0..K-1
    x_test: np.ndarray | None  # (N_test, D) float32, or None
    y_test: np.ndarray | None
    n_classes: int


def is_file(dataset: object) -> bool:
    """Return whether dataset names a file ('npz:PATH' or 'csv:PATH')."""
    return (
        isinstance(dataset, str)
        and dataset.partition(":")[0] in KINDS
        and (":" in dataset)
    )


def split_name(dataset: str) -> tuple[str, Path, str | None]:
    """Return (kind, path, pinned sha256 or None) of 'KIND:PATH[#sha256=HEX]'."""
    kind, _, rest = dataset.partition(":")
    if kind not in KINDS or not rest:
        raise ValueError(
            f"dataset {dataset!r} names no file — write npz:PATH or csv:PATH,"
            " e.g. csv:my-data.csv"
        )
    path, pin, digest = rest.partition(PIN)
    return kind, Path(path), (digest if pin else None)


def sha256_of(path: Path) -> str:
    """Return the sha256 of the file at path; ValueError when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ValueError(
            f"dataset file {path} does not exist (looked in {Path.cwd()}) — check the"
            " path; in a TOML file it is relative to that file's folder"
        ) from None
    except OSError as e:
        raise ValueError(f"cannot read dataset file {path}: {e.strerror}") from None


def pin(dataset: str) -> str:
    """Return 'KIND:PATH#sha256=HEX' with the file's hash; check an existing pin."""
    kind, path, pinned = split_name(dataset)
    actual = sha256_of(path)
    if pinned is not None and pinned != actual:
        raise ValueError(
            f"dataset file {path} changed since this config was recorded: its sha256"
            f" is {actual[:12]}..., the config has {pinned[:12]}... — restore the"
            f" file, or drop '{PIN}...' from dataset to train on it as it is now"
        )
    return f"{kind}:{path}{PIN}{actual}"


def check_dataset(dataset: object, builtin: tuple[str, ...]) -> str:
    """Return a Config's dataset: a built-in name as is, a file pinned to its hash."""
    if is_file(dataset):
        return pin(str(dataset))
    if dataset not in builtin:
        raise ValueError(
            f"dataset must be one of {builtin} or a file, npz:PATH or csv:PATH, got"
            f" {dataset!r} — e.g. {builtin[0]!r} or 'csv:my-data.csv'"
        )
    return str(dataset)


def fingerprint(values: object) -> list[str]:
    """Return the pinned names of every file dataset among values (nested lists and
    dicts searched), so a key over raw settings changes with the files' content."""
    if isinstance(values, dict):
        return [p for v in values.values() for p in fingerprint(v)]
    if isinstance(values, list | tuple):
        return [p for v in values for p in fingerprint(v)]
    if is_file(values):
        try:
            return [pin(str(values))]
        except ValueError:
            return [str(values)]  # the Config names the problem when it is built
    return []


def relative_to(dataset: object, folder: Path) -> object:
    """Return a relative file dataset's path taken from folder (a TOML file's)."""
    if not is_file(dataset):
        return dataset
    kind, _, rest = str(dataset).partition(":")
    path = Path(rest)
    if path.is_absolute():
        return dataset
    return f"{kind}:{os.path.normpath(folder / path)}"


def load(dataset: str) -> FileData:
    """Return the checked arrays of a file dataset (pinned or not)."""
    return _load_pinned(pin(dataset))  # a changed file: pin's message


@functools.lru_cache(maxsize=4)
def _load_pinned(dataset: str) -> FileData:
    """Return the arrays of a pinned name: its content, so it can be cached."""
    kind, path, digest = split_name(dataset)
    lines = None
    if kind == "npz":
        x, y, x_test, y_test = _read_npz(path)
    else:
        x, y, lines = _read_csv(path)
        x_test = y_test = None
    y, k = _check(path, x, y, ("x", "y"), None, lines)
    if x_test is not None:
        if x_test.ndim != 2 or x_test.shape[1] != x.shape[1]:
            raise ValueError(
                f"{path}: x_test has shape {x_test.shape} but x has {x.shape[1]}"
                f" features per row — give x_test shape (N_test, {x.shape[1]})"
            )
        y_test, _ = _check(path, x_test, y_test, ("x_test", "y_test"), k, None)
        x_test = x_test.astype(np.float32)
    x = x.astype(np.float32)
    for array in (x, y, x_test, y_test):  # shared by the cache: read-only
        if array is not None:
            array.flags.writeable = False
    return FileData(path, str(digest), x, y, x_test, y_test, k)


def _read_npz(path: Path) -> tuple[np.ndarray, ...]:
    """Return x, y, x_test, y_test (the last two None when absent) of an .npz."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as e:
        raise ValueError(
            f"{path} is not a readable .npz of plain arrays ({e}) — save it with"
            " np.savez(path, x=x, y=y)"
        ) from None
    for name in ("x", "y"):
        if name not in arrays:
            raise ValueError(
                f"{path} has no array {name!r} (it holds {sorted(arrays)}) — save it"
                " with np.savez(path, x=x, y=y[, x_test=..., y_test=...])"
            )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ValueError(
            f"{path} has only one of x_test and y_test — save both, or neither"
        )
    return arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return x, y and each row's line number of a CSV, the label last."""
    with open(path, newline="") as fh:
        reader = enumerate(csv.reader(fh), 1)
        rows = [(i, r) for i, r in reader if any(c.strip() for c in r)]
    if rows and any(_number(c) is None for c in rows[0][1]):
        rows = rows[1:]  # a header: its cells are names, not numbers
    if not rows:
        raise ValueError(f"{path} has no data rows — add rows 'feature,...,label'")
    width = len(rows[0][1])
    if width < 2:
        raise ValueError(
            f"{path} line {rows[0][0]} has {width} column; a row needs at least one"
            " feature and the label last — separate columns with commas"
        )
    table = np.empty((len(rows), width), np.float64)
    for r, (line, cells) in enumerate(rows):
        if len(cells) != width:
            raise ValueError(
                f"{path} line {line} has {len(cells)} columns, line {rows[0][0]} has"
                f" {width} — give every row the same columns (label last)"
            )
        for c, cell in enumerate(cells):
            value = _number(cell)
            if value is None:
                raise ValueError(
                    f"{path} line {line}, column {c + 1}: {cell!r} is not a number —"
                    " every cell must be numeric (only the first line may be a header)"
                )
            table[r, c] = value
    return table[:, :-1], table[:, -1], np.asarray([line for line, _ in rows])


def _check(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    names: tuple[str, str],
    n_classes: int | None,
    lines: np.ndarray | None,
) -> tuple[np.ndarray, int]:
    """Return y as int32 and K; ValueError naming the row of a bad value."""
    x, y = np.asarray(x), np.asarray(y)
    x_name, y_name = names

    def at(row: int, name: str) -> str:  # a CSV's line: 1-based, as an editor shows
        return f"row {row} of {name}" if lines is None else f"line {lines[row]}"

    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(
            f"{path}: {x_name} must be 2-D (examples, features), got shape {x.shape}"
            f" — flatten it with {x_name}.reshape(len({x_name}), -1)"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"{path}: {y_name} must hold one label per row of {x_name}, shape"
            f" ({x.shape[0]},), got {y.shape} — one integer class per example"
        )
    if not np.issubdtype(x.dtype, np.number) or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{path}: {x_name} and {y_name} must be numeric arrays")
    bad = ~np.isfinite(x.astype(np.float64)).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        value = x[row][~np.isfinite(x[row].astype(np.float64))][0]
        raise ValueError(
            f"{path}: {at(row, x_name)} holds {value} — drop or impute"
            " that row (every feature must be finite)"
        )
    yf = y.astype(np.float64)
    bad = ~np.isfinite(yf) | (yf != np.round(yf)) | (yf < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{path}: {at(row, y_name)} has label {y[row].item()!r}; labels must be"
            " integers 0..K-1 — renumber the classes 0, 1, ..., K-1"
        )
    yi = yf.astype(np.int64)
    if n_classes is None:
        counts = np.bincount(yi)
        if len(counts) < 2:
            raise ValueError(
                f"{path}: every {y_name} is {int(yi[0])}, a single class — a"
                " classifier needs labels of at least 2 classes"
            )
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise ValueError(
                f"{path}: class {int(empty[0])} has no example in {y_name} (labels"
                f" run 0..{len(counts) - 1}) — renumber the classes 0..K-1 without gaps"
            )
        n_classes = len(counts)
    elif yi.max() >= n_classes:
        row = int(np.argmax(yi >= n_classes))
        raise ValueError(
            f"{path}: {at(row, y_name)} has label {int(yi[row])}, but"
            f" the training labels run 0..{n_classes - 1} — use the training classes"
        )
    return yi.astype(np.int32), n_classes
