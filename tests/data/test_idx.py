"""Tests for reglab.data.idx: the IDX reader validates everything it reads."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reglab.data.idx import encode_idx, parse_idx, read_idx

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data absent")


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 9)
)
def test_encode_then_parse_is_the_identity(shape, seed):
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(encode_idx(array)), array)


def test_header_follows_the_published_layout():
    # labels: magic 0x00000801, count, then bytes (an independent hand-built oracle)
    data = struct.pack(">II", 0x801, 3) + bytes([7, 2, 1])
    assert encode_idx(np.array([7, 2, 1], dtype=np.uint8)) == data


@needs_shared
def test_reads_real_gzipped_and_raw_mnist_test_labels(tmp_path):
    gz = SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels = read_idx(gz)
    assert labels.shape == (10_000,)
    assert labels[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]  # the famous first digits
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(gz.read_bytes()))
    np.testing.assert_array_equal(read_idx(raw), labels)


def _images(n=2):
    return encode_idx(np.zeros((n, 28, 28), dtype=np.uint8))


def test_truncated_file_is_rejected_with_the_expected_length(tmp_path):
    path = tmp_path / "cut"
    path.write_bytes(_images()[:-10])
    with pytest.raises(
        ValueError, match=r"truncated: header \(2, 28, 28\) implies 1584"
    ):
        read_idx(path)


def test_file_shorter_than_its_header_is_rejected():
    with pytest.raises(ValueError, match="shorter than its 16-byte header"):
        parse_idx(_images()[:10])


def test_trailing_bytes_are_rejected():
    with pytest.raises(ValueError, match="longer than its header says"):
        parse_idx(_images() + b"\x00")


def test_foreign_file_is_rejected_naming_its_magic(tmp_path):
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=r"not an IDX file: magic 89504e47"):
        read_idx(path)


def test_non_uint8_element_type_is_rejected():
    with pytest.raises(ValueError, match=r"element type 0x0d, only uint8"):
        parse_idx(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + bytes(4))


def test_damaged_gzip_is_rejected(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(_images())[:-20])
    with pytest.raises(ValueError, match="damaged gzip file"):
        read_idx(path)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_idx(tmp_path / "nope")


def test_encode_rejects_other_dtypes():
    with pytest.raises(TypeError, match="uint8 array, got int64"):
        encode_idx(np.zeros(3, dtype=np.int64))
