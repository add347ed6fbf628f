"""The IDX reader: real MNIST test files where they exist, hand-built IDX bytes everywhere, clear errors."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
from conftest import IN_CI, MNIST_T10K, require
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vg_core.idx import IdxError, parse_idx, read_idx

# md5 sums from the folder's README (the ones torchvision's MNIST.resources checks)
T10K_MD5 = {
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# Published facts about the MNIST test split.
T10K_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
T10K_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]

TYPE_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX: magic (0, 0, type, ndim), big-endian int32 sizes, big-endian values."""
    code = TYPE_CODES[array.dtype.name]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _check_t10k(images: np.ndarray, labels: np.ndarray, class_counts: list[int]) -> None:
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels, minlength=10).tolist() == class_counts


def test_idx_reader_on_mnist_t10k(tmp_path):
    """The real MNIST test files where they exist (always in CI); elsewhere the same shapes, hand-built."""
    if MNIST_T10K.is_dir():
        images_path = MNIST_T10K / "t10k-images-idx3-ubyte.gz"
        labels_path = MNIST_T10K / "t10k-labels-idx1-ubyte.gz"
        for path in (images_path, labels_path):
            assert hashlib.md5(path.read_bytes()).hexdigest() == T10K_MD5[path.name], path
        images, labels = read_idx(images_path), read_idx(labels_path)
        _check_t10k(images, labels, T10K_CLASS_COUNTS)
        assert labels[:10].tolist() == T10K_FIRST_LABELS
        # real digits: mostly black background, mean intensity ~0.1325, every image has ink
        assert 0.12 < images.mean() / 255 < 0.145
        assert images.min() == 0 and images.max() == 255
        assert (images.reshape(10_000, -1).max(axis=1) > 100).all()
        # gzip and plain files read the same
        plain = tmp_path / "t10k-labels-idx1-ubyte"
        plain.write_bytes(gzip.decompress(labels_path.read_bytes()))
        np.testing.assert_array_equal(read_idx(plain), labels)
        return
    # A user's machine: the folder is absent. CI always has it, so there its absence is a failure.
    require(not IN_CI, f"{MNIST_T10K} is missing")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10_000, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 1000)
    rng.shuffle(labels)
    (tmp_path / "images.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "labels").write_bytes(idx_bytes(labels))
    read_images, read_labels = read_idx(tmp_path / "images.gz"), read_idx(tmp_path / "labels")
    _check_t10k(read_images, read_labels, [1000] * 10)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


def test_header_layout_is_the_published_one():
    # MNIST's label file starts with magic 2049 (0x00000801) then the count, big-endian
    labels = np.array([7, 2, 1], dtype=np.uint8)
    data = idx_bytes(labels)
    assert data[:8] == b"\x00\x00\x08\x01\x00\x00\x00\x03"
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    assert idx_bytes(images)[:4] == struct.pack(">i", 2051)
    np.testing.assert_array_equal(parse_idx(data), labels)


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6),
        elements={"allow_nan": False},
    ),
    st.booleans(),
)
def test_round_trip_any_dtype_and_shape(array, compress):
    data = idx_bytes(array)
    if compress:
        data = gzip.compress(data)
        decoded = read_idx_bytes(data)
    else:
        decoded = parse_idx(data)
    assert decoded.shape == array.shape
    assert decoded.dtype == array.dtype  # native byte order, the IDX type's kind and size
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, array)


def read_idx_bytes(data: bytes, name: str = "x.idx") -> np.ndarray:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return read_idx(path)


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "bad magic"),
        (b"\x00", "bad magic"),
        (b"\x01\x00\x08\x01" + GOOD[4:], "bad magic"),
        (b"PK\x03\x04" + GOOD[4:], "bad magic"),
        (b"\x00\x00\x07\x02" + GOOD[4:], "unknown IDX element type 0x07"),
        (GOOD[:6], "truncated IDX header"),
        (GOOD[:-1], "body holds 11 bytes"),
        (GOOD + b"\x00", "body holds 13 bytes"),
    ],
)
def test_malformed_bytes_raise_idx_error(data, match):
    with pytest.raises(IdxError, match=match):
        parse_idx(data)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda good: good[:-5], id="truncated-body"),
        pytest.param(lambda good: gzip.compress(good)[:20], id="truncated-gzip"),
        pytest.param(lambda good: b"\x1f\x8b" + b"\x00" * 30, id="gzip-garbage"),
        pytest.param(lambda good: _flip_middle(gzip.compress(good)), id="gzip-bit-rot"),
        pytest.param(lambda good: b"", id="empty"),
        pytest.param(lambda good: b"<html>404 Not Found</html>", id="html-page"),
    ],
)
def test_corrupt_file_raises_idx_error_naming_the_file(tmp_path, corrupt):
    rng = np.random.default_rng(1)
    good = idx_bytes(rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(corrupt(good))
    with pytest.raises(IdxError, match=r"^train-images-idx3-ubyte\.gz: "):
        read_idx(path)


def _flip_middle(data: bytes) -> bytes:
    broken = bytearray(data)
    for i in range(20, min(len(broken) - 8, 80)):
        broken[i] ^= 0xFF
    return bytes(broken)


def test_missing_file_raises_idx_error_naming_the_file(tmp_path):
    with pytest.raises(IdxError, match=r"^t10k-labels-idx1-ubyte: "):
        read_idx(tmp_path / "t10k-labels-idx1-ubyte")


def test_idx_error_is_a_value_error():
    assert issubclass(IdxError, ValueError)
