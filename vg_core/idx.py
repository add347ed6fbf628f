"""Reader for the IDX files MNIST and Fashion-MNIST are published in (plain or gzip)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

# IDX type byte -> numpy dtype (big-endian, as the format stores it)
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxError(ValueError):
    """A file that is not a well-formed IDX file."""


def parse_idx(data: bytes) -> np.ndarray:
    """Decode IDX bytes: magic (0, 0, type, ndim), ndim big-endian int32 sizes, then the values."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxError("not an IDX file (bad magic number)")
    dtype, ndim = _DTYPES.get(data[2]), data[3]
    if dtype is None:
        raise IdxError(f"unknown IDX element type 0x{data[2]:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError("truncated IDX header")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(data) - header != expected:
        raise IdxError(f"IDX body holds {len(data) - header} bytes, shape {shape} needs {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype[1:])


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file from disk; `.gz` files are decompressed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise IdxError(f"{path.name}: cannot be read ({err.strerror or type(err).__name__})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise IdxError(f"{path.name}: corrupt gzip stream ({err})") from None
    try:
        return parse_idx(raw)
    except IdxError as err:
        raise IdxError(f"{path.name}: {err}") from None
