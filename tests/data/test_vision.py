"""Tests for reglab.data.vision and .bundled: loading, checksums, subsets, splits."""

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from reglab.data import bundled
from reglab.data.vision import load, subset, subset_indices, train_val_split

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data absent")


def _oracle(path):
    """Read an IDX file with no reglab code: gunzip, skip the header, reshape."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("REGLAB_DATA", raising=False)
    monkeypatch.delenv("REGLAB_CACHE", raising=False)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "fashion-mnist"])
def test_bundled_train_is_5000_balanced_images_scaled_to_unit_interval(name):
    x, y = load(name)
    assert x.shape == (5000, 784) and x.dtype == np.float32
    assert y.dtype == np.int32 and np.bincount(y).tolist() == [500] * 10
    assert x.min() == 0.0 and x.max() == 1.0
    # scaled by exactly 1/255: every value is k/255 for an integer k
    k = x * 255
    np.testing.assert_allclose(k, np.round(k), atol=1e-3)


@needs_shared
@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "mnist"), ("fashion_mnist", "fashion-mnist")]
)
def test_bundled_test_set_is_the_full_real_test_set(name, folder):
    x, y = load(name, split="test", flatten=False)
    assert x.shape == (10_000, 28, 28)
    images = _oracle(SHARED / folder / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(np.round(x.ravel() * 255).astype(np.uint8), images)
    np.testing.assert_array_equal(
        y, _oracle(SHARED / folder / "t10k-labels-idx1-ubyte.gz")
    )


@needs_shared
def test_bundled_fashion_train_is_the_first_500_of_each_class():
    labels = _oracle(SHARED / "fashion-mnist" / "train-labels-idx1-ubyte.gz")
    keep = np.sort(
        np.concatenate([np.flatnonzero(labels == c)[:500] for c in range(10)])
    )
    _, y = load("fashion_mnist")
    np.testing.assert_array_equal(y, labels[keep])


def test_bundled_data_fits_the_wheel_budget_and_carries_its_licences():
    files = [p for p in bundled.BUNDLED_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 12e6
    mnist = (bundled.BUNDLED_DIR / "LICENSE-MNIST.txt").read_text()
    fashion = (bundled.BUNDLED_DIR / "LICENSE-FASHION-MNIST.txt").read_text()
    assert "CC BY-SA 3.0" in mnist and "LeCun" in mnist
    assert "MIT" in fashion and "Zalando" in fashion


def test_corrupt_bundled_file_is_caught_by_its_sha256(tmp_path, monkeypatch):
    shutil.copytree(bundled.BUNDLED_DIR, tmp_path / "b")
    path = tmp_path / "b" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[100] ^= 1
    path.write_bytes(gzip.compress(bytes(data)))
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path / "b")
    entry = bundled.manifest()["mnist/test"]["labels"]
    with pytest.raises(ValueError, match=r"bundled file .* is corrupt: sha256"):
        bundled._read(entry)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="reinstall reglab or rebuild"):
        bundled._read(entry)


def test_loading_bundled_data_and_taking_a_subset_is_well_under_a_second():
    bundled.load_bundled.cache_clear()
    start = time.perf_counter()
    x, y = load("mnist")
    subset(x, y, 1000, seed=0)
    assert time.perf_counter() - start < 0.5


@needs_shared
def test_data_dir_and_env_var_give_the_full_60000_checked_images(monkeypatch):
    x, y = load("fashion-mnist", data_dir=SHARED)
    assert x.shape == (60_000, 784) and np.bincount(y).tolist() == [6000] * 10
    monkeypatch.setenv("REGLAB_DATA", str(SHARED))
    _, y_env = load("fashion_mnist", split="test")
    np.testing.assert_array_equal(
        y_env, _oracle(SHARED / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz")
    )


@needs_shared
def test_data_dir_reads_raw_files_too(tmp_path):
    src = SHARED / "mnist"
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(
            gzip.decompress((src / f"{name}.gz").read_bytes())
        )
    x, y = load("mnist", split="test", data_dir=tmp_path)
    x_ref, y_ref = load("mnist", split="test")
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(y, y_ref)


@needs_shared
def test_data_dir_with_the_wrong_datasets_files_fails_its_checksum(tmp_path):
    # MNIST test files placed where Fashion-MNIST is expected
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(SHARED / "mnist" / name, tmp_path / name)
    with pytest.raises(ValueError, match=r"checksum mismatch .* decompressed sha256"):
        load("fashion_mnist", split="test", data_dir=tmp_path)


def test_data_dir_without_the_files_says_how_to_get_them(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"train-images-idx3-ubyte.gz .*download=True"
    ):
        load("mnist", data_dir=tmp_path)


def test_mnist_train_gz_is_checked_by_its_upstream_md5(tmp_path):
    # no decompressed sha256 is recorded for the full MNIST train files
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"x"))
    with pytest.raises(ValueError, match=r"gz md5 .* f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        load("mnist", data_dir=tmp_path)


def test_unknown_dataset_and_split_are_rejected():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar10'; choose one of"):
        load("cifar10")
    with pytest.raises(ValueError, match=r"split must be one of .*got 'val'"):
        load("mnist", split="val")


def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts).astype(np.int32)


def test_stratified_subset_of_balanced_data_has_equal_classes():
    x, y = load("mnist")
    xs, ys = subset(x, y, 1000, seed=0)
    assert np.bincount(ys).tolist() == [100] * 10
    # each picked row is a real, distinct row of x with its own label
    idx = subset_indices(y, 1000, seed=0)
    assert len(np.unique(idx)) == 1000
    np.testing.assert_array_equal(xs, x[idx])
    np.testing.assert_array_equal(ys, y[idx])


def test_stratified_subset_follows_class_proportions_by_largest_remainder():
    y = _labels([500, 300, 200])
    # 7 * (0.5, 0.3, 0.2) = (3.5, 2.1, 1.4) -> floors (3, 2, 1), the extra to class 0
    idx = subset_indices(y, 7, seed=0)
    assert np.bincount(y[idx]).tolist() == [4, 2, 1]


def test_subset_is_reproducible_and_seed_dependent():
    y = _labels([50] * 10)
    a = subset_indices(y, 100, seed=1)
    np.testing.assert_array_equal(a, subset_indices(y, 100, seed=1))
    assert not np.array_equal(a, subset_indices(y, 100, seed=2))
    plain = subset_indices(y, 100, seed=1, stratified=False)
    assert len(np.unique(plain)) == 100


def test_train_val_split_partitions_the_data():
    x = np.arange(1000, dtype=np.float32)[:, None]
    y = _labels([100] * 10)
    x_tr, y_tr, x_val, y_val = train_val_split(x, y, 200, seed=0)
    assert len(x_tr) == 800 and len(x_val) == 200
    assert np.bincount(y_val).tolist() == [20] * 10
    np.testing.assert_array_equal(
        np.sort(np.concatenate([x_tr, x_val]).ravel()), x.ravel()
    )
    np.testing.assert_array_equal(y_tr, y[x_tr[:, 0].astype(int)])


def test_asking_for_more_examples_than_exist_names_the_fix():
    y = _labels([10, 10])
    with pytest.raises(
        ValueError, match=r"n must be in \[1, 20\] .* got 21; .*data_dir="
    ):
        subset_indices(y, 21, seed=0)
    with pytest.raises(ValueError, match=r"n_val must be in \[1, 19\] .* got 20"):
        train_val_split(y, y, 20, seed=0)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        subset_indices(y, 2.0, seed=0)
