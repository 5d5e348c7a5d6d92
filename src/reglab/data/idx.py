"""Read and write IDX files (the MNIST container format), raw or gzipped."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"
UINT8_CODE = 0x08  # the only element type MNIST and Fashion-MNIST use


def decompress(data: bytes, *, source: str = "<bytes>") -> bytes:
    """Return data gunzipped if it starts with the gzip magic, unchanged otherwise."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(
            f"{source} is a damaged gzip file ({err}); delete it and fetch it again "
            "(download=True) or point data_dir at an intact copy"
        ) from err


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Return the uint8 array held by decompressed IDX bytes, validating the header."""
    # header: two zero bytes, a type code, ndim; then ndim big-endian uint32 sizes
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise ValueError(
            f"{source} is not an IDX file: magic {data[:4].hex() or 'empty'} should "
            "start with 0000 (images 00000803, labels 00000801); check the file name"
        )
    type_code, ndim = data[2], data[3]
    if type_code != UINT8_CODE:
        raise ValueError(
            f"{source} holds IDX element type 0x{type_code:02x}, only uint8 (0x08) is "
            "supported; MNIST-style files always use uint8"
        )
    if ndim == 0:
        raise ValueError(f"{source} declares 0 dimensions; an IDX file needs >= 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(
            f"{source} is truncated: {len(data)} bytes, shorter than its "
            f"{header_len}-byte header; fetch the file again"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = header_len + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{source} is {kind}: header {shape} implies {expected} bytes, got "
            f"{len(data)}; fetch the file again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Return the uint8 array stored in an IDX file (gzipped or raw)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} does not exist")
    data = decompress(path.read_bytes(), source=str(path))
    return parse_idx(data, source=str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Return the IDX bytes of a uint8 array (the inverse of parse_idx)."""
    if array.dtype != np.uint8:
        raise TypeError(f"encode_idx needs a uint8 array, got {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"encode_idx needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, UINT8_CODE, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + np.ascontiguousarray(array).tobytes()
