"""The cache against faulty disks and forged entries: each is dropped and retrained (never served, never a
traceback), nothing outside the root is followed or deleted, and eviction holds up under several processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from engine_helpers import REPO, tiny_spec

import vg_core.data as data
from vg_core.cache import CacheError, ResultCache, resolved
from vg_core.results import RunResult
from vg_core.train import train


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[RunResult, Path]:
    """A tiny run, and a pristine copy of its cache entry to damage."""
    result = train(tiny_spec())
    folder = tmp_path_factory.mktemp("pristine") / "entry"
    result.save(folder)
    return result, folder


def _entry(cache: ResultCache, result: RunResult) -> Path:
    cache.put(result)
    return cache.path(result.spec)


def _assert_retrained(cache: ResultCache, result: RunResult) -> None:
    again, cached = cache.get_or_train(result.spec)
    assert cached is False and again.spec == result.spec
    pd.testing.assert_frame_equal(again.history, result.history)
    assert cache.get(result.spec) is not None  # the bad entry was replaced by a good one


def _forge_meta(folder: Path, change) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "forgery",
    [
        pytest.param(lambda meta: meta["spec"].update(depth=4), id="spec-of-another-depth"),
        pytest.param(lambda meta: meta.pop("dataset"), id="meta-without-dataset"),
        pytest.param(lambda meta: meta.update(status="stopped"), id="a-stopped-run"),
    ],
)
def test_an_entry_whose_meta_does_not_match_its_key_is_retrained(tmp_path, stored, forgery):
    result, _ = stored
    cache = ResultCache(tmp_path / "c")
    _forge_meta(_entry(cache, result), forgery)
    assert cache.get(result.spec) is None
    _assert_retrained(cache, result)


@pytest.mark.parametrize("frame", ["history", "layer_stats", "steps", "histograms"])
def test_an_entry_with_a_zero_row_frame_is_retrained(tmp_path, stored, frame):
    result, _ = stored
    cache = ResultCache(tmp_path / "c")
    folder = _entry(cache, result)
    getattr(result, frame).iloc[:0].to_parquet(folder / f"{frame}.parquet", index=False)
    assert cache.get(result.spec) is None
    _assert_retrained(cache, result)


def test_an_entry_that_is_a_file_is_replaced(tmp_path, stored):
    result, _ = stored
    cache = ResultCache(tmp_path / "c")
    cache.path(result.spec).write_text("not a folder")
    assert cache.get(result.spec) is None
    _assert_retrained(cache, result)


def test_a_symlink_out_of_the_root_is_never_followed_nor_its_target_deleted(tmp_path, stored):
    result, pristine = stored
    cache = ResultCache(tmp_path / "c")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    cache.path(result.spec).symlink_to(foreign, target_is_directory=True)
    assert cache.get(result.spec) is None
    _assert_retrained(cache, result)
    assert (foreign / "precious.txt").read_text() == "keep me"
    # even a symlink to a perfectly good entry elsewhere is not served
    link = cache.path(result.spec.replace(seed=5))
    link.symlink_to(pristine, target_is_directory=True)
    assert cache.get(result.spec.replace(seed=5)) is None and pristine.is_dir() and not link.exists()


def test_a_lock_path_that_is_a_folder_does_not_stop_training(tmp_path, stored):
    result, _ = stored
    cache = ResultCache(tmp_path / "c")
    (cache.root / f"{result.spec.key()}.lock").mkdir()
    _assert_retrained(cache, result)
    assert not list(cache.root.glob("*.lock"))  # and lock files are cleaned up after training


def test_a_root_that_is_a_file_is_one_clear_error(tmp_path):
    root = tmp_path / "file"
    root.write_text("x")
    with pytest.raises(CacheError, match=f"cache: {root} is not a folder"):
        ResultCache(root)


def test_a_root_that_cannot_be_written_is_found_up_front_and_the_run_still_trains():
    cache = ResultCache("/proc/vg-cache-not-writable")  # nobody, not even root, can create folders in /proc
    assert cache.problem is not None and "/proc/vg-cache-not-writable cannot be written" in cache.problem
    result, cached = cache.get_or_train(tiny_spec())
    assert cached is False and result.meta["status"] == "complete"
    assert cache.get(tiny_spec()) is None


def test_the_offline_stand_in_is_cached_under_the_key_of_what_trained(monkeypatch, tmp_path):
    """MNIST cannot be had: the run trains on mnist-sample, is stored as mnist-sample, and is found again by
    the MNIST spec while MNIST stays unavailable; once it is available the MNIST spec misses (and would train)."""
    monkeypatch.setattr(data, "_mnist_failed_at", [])
    read = data._read

    def offline(name: str) -> data.RawSplit:
        if name == "mnist":
            raise data.DataError("offline")
        return read(name)

    monkeypatch.setattr(data, "_read", offline)
    cache = ResultCache(tmp_path / "c")
    spec = resolved(tiny_spec(dataset="mnist"))
    result, cached = cache.get_or_train(spec)
    assert cached is False and result.spec == spec.replace(dataset="mnist-sample")
    assert result.meta["dataset"]["notice"].startswith("MNIST could not be downloaded")
    assert cache.path(spec.replace(dataset="mnist-sample")).is_dir() and not cache.path(spec).exists()
    again, cached = cache.get_or_train(spec)
    assert cached is True and again.spec == result.spec
    monkeypatch.setattr(data, "MNIST_RETRY_S", 0)  # MNIST may be had again
    assert cache.get(spec) is None


STRESS = textwrap.dedent(
    """
    import random, sys, time
    import pandas as pd
    from vg_core.cache import ResultCache
    from vg_core.results import RunResult
    role, root, source, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    original = RunResult.load(source)
    cache = ResultCache(root, max_mb=0.6)
    end, served, written = time.monotonic() + seconds, 0, 0
    while time.monotonic() < end:
        spec = original.spec.replace(seed=random.randrange(6))
        if role == "writer":
            cache.put(RunResult(**{**original.__dict__, "spec": spec, "meta": {**original.meta, "key": spec.key()}}))
            cache.evict()
            written += 1
        else:
            got = cache.get(spec)
            if got is not None:
                pd.testing.assert_frame_equal(got.layer_stats, original.layer_stats)
                pd.testing.assert_frame_equal(got.steps, original.steps)
                served += 1
    print(role, served, written)
    """
)


def test_eviction_under_concurrent_writers_and_readers_raises_nothing_and_serves_no_torn_entry(tmp_path, stored):
    """Two writers and two readers in separate processes, a cap of about two entries, for a few seconds."""
    _, pristine = stored
    root = tmp_path / "c"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    roles = ["writer", "writer", "reader", "reader"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", STRESS, role, str(root), str(pristine), "4"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in roles
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    counts = [line.split() for line, _ in outputs]
    assert sum(int(c[2]) for c in counts if c[0] == "writer") > 10
    assert sum(int(c[1]) for c in counts if c[0] == "reader") > 0  # readers were served whole entries
    leftovers = [p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
    assert leftovers == []
