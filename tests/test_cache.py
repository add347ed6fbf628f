"""Results on disk (Parquet + strict JSON, no pickle) and the result cache: round trip, corruption,
two concurrent writers, LRU eviction, stopped runs."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from engine_helpers import start_cli, strict_json, tiny_spec
from filelock import FileLock

from vg_core import cache as cache_module
from vg_core.cache import USED_MARKER, ResultCache, cache_dir, resolved
from vg_core.results import FRAME_COLUMNS, FRAMES, ResultError, RunResult, json_safe
from vg_core.train import train


@pytest.fixture(scope="module")
def tiny_result() -> RunResult:
    return train(tiny_spec(epochs=1))


def assert_results_equal(a: RunResult, b: RunResult) -> None:
    assert a.spec == b.spec
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)


def count_trainings(monkeypatch) -> list:
    """Patch the cache's train() to record each call (and still train)."""
    calls = []

    def counting_train(spec, callback=None):
        calls.append(spec)
        return train(spec, callback)

    monkeypatch.setattr(cache_module, "train", counting_train)
    return calls


# ---------------------------------------------------------------- results on disk


def test_save_load_round_trip(tmp_path, tiny_result):
    tiny_result.save(tmp_path / "run")
    loaded = RunResult.load(tmp_path / "run")
    assert_results_equal(loaded, tiny_result)
    assert loaded.meta == json.loads(json.dumps(json_safe(tiny_result.meta)))
    assert loaded.meta["status"] == "complete" and loaded.meta["key"] == tiny_result.spec.key()
    for name in FRAMES:
        assert list(getattr(loaded, name).columns) == FRAME_COLUMNS[name]
    assert loaded.snapshot_steps == tiny_result.snapshot_steps


def test_saved_json_is_strict_and_nothing_is_pickled(tmp_path, tiny_result, monkeypatch):
    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used")

    for name in ("dump", "dumps", "load", "loads"):
        monkeypatch.setattr(pickle, name, no_pickle)
    result = dataclasses.replace(tiny_result, meta={**tiny_result.meta, "odd": [float("nan"), np.inf]})
    result.save(tmp_path / "run")
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == sorted([*(f"{name}.parquet" for name in FRAMES), "meta.json"])
    text = (tmp_path / "run" / "meta.json").read_text()
    meta = strict_json(text)  # no NaN / Infinity tokens
    assert meta["odd"] == [None, None]
    assert meta["spec"] == tiny_result.spec.to_dict()
    for path in (tmp_path / "run").glob("*.parquet"):
        assert path.read_bytes()[:4] == b"PAR1"
    RunResult.load(tmp_path / "run")


def test_json_safe():
    value = {"a": float("nan"), "b": [np.float32(1.5), np.int64(3), -np.inf], 1: {"c": np.nan}}
    assert json_safe(value) == {"a": None, "b": [1.5, 3, None], "1": {"c": None}}
    json.dumps(json_safe(value), allow_nan=False)


def test_diverged_result_round_trips_with_nan_losses(tmp_path):
    result = train(tiny_spec(activation="linear", init="normal", init_std=1.0, lr=1.0))
    assert result.meta["status"] == "diverged"
    result.steps.loc[result.steps.index[-1], "loss"] = np.nan  # what a loss that overflowed records
    result.save(tmp_path / "run")
    strict_json((tmp_path / "run" / "meta.json").read_text())
    loaded = RunResult.load(tmp_path / "run")
    assert_results_equal(loaded, result)
    assert loaded.diverged_at_step == result.diverged_at_step
    assert np.isnan(loaded.steps["loss"].iloc[-1]) or np.isinf(loaded.steps["loss"].iloc[-1])


@pytest.mark.parametrize(
    "damage",
    ["missing-meta", "garbage-meta", "missing-frame", "truncated-frame", "renamed-column", "bad-spec"],
)
def test_load_of_a_damaged_result_raises_result_error(tmp_path, tiny_result, damage):
    folder = tmp_path / "run"
    tiny_result.save(folder)
    damage_entry(folder, damage)
    with pytest.raises(ResultError, match=str(folder)):
        RunResult.load(folder)


def damage_entry(folder: Path, damage: str) -> None:
    if damage == "missing-meta":
        (folder / "meta.json").unlink()
    elif damage == "garbage-meta":
        (folder / "meta.json").write_text("{not json")
    elif damage == "missing-frame":
        (folder / "layer_stats.parquet").unlink()
    elif damage == "truncated-frame":
        path = folder / "histograms.parquet"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "renamed-column":
        frame = pd.read_parquet(folder / "history.parquet").rename(columns={"test_acc": "accuracy"})
        frame.to_parquet(folder / "history.parquet", index=False)
    elif damage == "bad-spec":
        meta = json.loads((folder / "meta.json").read_text())
        meta["spec"]["depth"] = -3
        (folder / "meta.json").write_text(json.dumps(meta))
    elif damage == "empty-folder":
        for path in folder.iterdir():
            path.unlink()
    else:
        raise AssertionError(damage)


# ---------------------------------------------------------------- the cache


def test_cache_dir_follows_the_environment(isolated_cache):
    assert cache_dir() == isolated_cache
    assert ResultCache().root == isolated_cache and isolated_cache.is_dir()


def test_get_or_train_round_trip(monkeypatch):
    calls = count_trainings(monkeypatch)
    cache = ResultCache()
    spec = tiny_spec(device="auto")
    first, cached = cache.get_or_train(spec)
    assert not cached and len(calls) == 1
    assert calls[0] == resolved(spec) and calls[0].device in ("cpu", "cuda", "mps")
    second, cached = cache.get_or_train(spec)
    assert cached and len(calls) == 1
    assert_results_equal(first, second)
    assert second.meta["status"] == "complete"
    # an equivalent spec (same canonical form) hits the same entry
    _, cached = cache.get_or_train(spec.replace(init_std=0.5))
    assert cached and len(calls) == 1
    assert [p.name for p in cache.root.iterdir() if p.is_dir()] == [resolved(spec).key()]
    assert not list(cache.root.glob(".tmp-*"))


@pytest.mark.parametrize(
    "damage",
    ["missing-meta", "garbage-meta", "missing-frame", "truncated-frame", "renamed-column", "bad-spec", "empty-folder"],
)
def test_a_corrupted_entry_is_retrained_not_raised(monkeypatch, damage):
    calls = count_trainings(monkeypatch)
    cache = ResultCache()
    spec = tiny_spec(epochs=0)
    original, _ = cache.get_or_train(spec)
    damage_entry(cache.path(resolved(spec)), damage)
    assert cache.get(resolved(spec)) is None  # unreadable: dropped
    again, cached = cache.get_or_train(spec)
    assert not cached and len(calls) == 2
    assert_results_equal(again, original)
    # and the entry is whole again
    _, cached = cache.get_or_train(spec)
    assert cached and len(calls) == 2


def test_stopped_runs_are_not_cached(monkeypatch):
    calls = count_trainings(monkeypatch)
    cache = ResultCache()
    spec = tiny_spec(epochs=2)
    result, cached = cache.get_or_train(spec, callback=lambda progress: progress.step >= 2)
    assert result.meta["status"] == "stopped" and not cached
    assert cache.get(resolved(spec)) is None
    assert not [p for p in cache.root.iterdir() if p.is_dir()]
    full, cached = cache.get_or_train(spec)
    assert full.meta["status"] == "complete" and not cached and len(calls) == 2


def test_diverged_runs_are_cached(monkeypatch):
    calls = count_trainings(monkeypatch)
    cache = ResultCache()
    spec = tiny_spec(activation="linear", init="normal", init_std=1.0, lr=1.0)
    result, _ = cache.get_or_train(spec)
    assert result.meta["status"] == "diverged"
    again, cached = cache.get_or_train(spec)
    assert cached and again.diverged_at_step == result.diverged_at_step and len(calls) == 1


def _fill(cache: ResultCache, result: RunResult, seeds: list[int]) -> dict[int, Path]:
    folders = {}
    for seed in seeds:
        spec = result.spec.replace(seed=seed)
        cache.put(dataclasses.replace(result, spec=spec, meta={**result.meta, "key": spec.key()}))
        folders[seed] = cache.path(spec)
    return folders


def test_lru_eviction_removes_the_least_recently_used(tmp_path, tiny_result):
    cache = ResultCache(tmp_path / "c")
    folders = _fill(cache, tiny_result, [1, 2, 3])
    sizes = {seed: sum(f.stat().st_size for f in folder.iterdir()) for seed, folder in folders.items()}
    now = time.time()
    # written long ago in the order 1, 2, 3 ...
    for age, seed in ((3000, 1), (2000, 2), (1000, 3)):
        os.utime(folders[seed] / USED_MARKER, (now - age, now - age))
    # ... then entry 1 is read again: now 2 is the least recently used
    assert cache.get(tiny_result.spec.replace(seed=1)) is not None
    cache.max_bytes = sizes[1] + sizes[3] + 10  # room for two
    removed = cache.evict()
    assert removed == [folders[2].name]
    assert folders[1].is_dir() and folders[3].is_dir() and not folders[2].exists()
    # nothing more to do when it fits
    assert cache.evict() == []


def test_eviction_never_removes_the_entry_it_keeps(tmp_path, tiny_result):
    cache = ResultCache(tmp_path / "c", max_mb=1e-6)  # smaller than any entry
    folders = _fill(cache, tiny_result, [1, 2])
    os.utime(folders[1] / USED_MARKER, (1, 1))
    assert cache.evict(keep=folders[1].name) == [folders[2].name]
    assert folders[1].is_dir()


def test_get_or_train_evicts_under_a_small_cap(monkeypatch):
    count_trainings(monkeypatch)
    cache = ResultCache(max_mb=1e-6)
    first = tiny_spec(epochs=0)
    cache.get_or_train(first)
    os.utime(cache.path(resolved(first)) / USED_MARKER, (1, 1))
    second = first.replace(seed=5)
    cache.get_or_train(second)
    assert not cache.path(resolved(first)).exists()  # evicted
    assert cache.path(resolved(second)).is_dir()  # the new entry stays even over the cap


def test_cap_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VG_CACHE_MAX_MB", "3")
    assert ResultCache(tmp_path).max_bytes == 3 * 2**20
    assert ResultCache(tmp_path, max_mb=5).max_bytes == 5 * 2**20


def test_stale_staging_folders_are_dropped_and_fresh_ones_kept(tmp_path, tiny_result):
    cache = ResultCache(tmp_path / "c")
    stale, fresh = cache.root / ".tmp-dead-writer", cache.root / ".tmp-live-writer"
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (1, 1))
    cache.evict()
    assert not stale.exists() and fresh.is_dir()
    assert all(not entry[0].name.startswith(".") for entry in cache.entries())


def test_put_replaces_an_existing_entry_atomically(tmp_path, tiny_result):
    cache = ResultCache(tmp_path / "c")
    cache.put(tiny_result)
    cache.put(tiny_result)
    assert [p.name for p in cache.root.iterdir()] == [tiny_result.spec.key()]
    assert_results_equal(cache.get(tiny_result.spec), tiny_result)


# ---------------------------------------------------------------- two processes, one spec


CLI_ARGS = [
    "run",
    "--dataset",
    "mnist-sample",
    "--n-train",
    "400",
    "--depth",
    "3",
    "--width",
    "32",
    "--batch-size",
    "50",
    "--epochs",
    "1",
    "--probe-size",
    "100",
    "--json",
    "--quiet",
]


@pytest.mark.slow
def test_two_concurrent_processes_train_once(isolated_cache):
    """Both processes miss the cache and queue on the entry's lock (held here until both have started);
    exactly one trains, the other reads its result."""
    spec = resolved(tiny_spec(device="auto"))
    isolated_cache.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(isolated_cache / f"{spec.key()}.lock"))
    with lock:
        processes = [start_cli(*CLI_ARGS, cache_dir=isolated_cache) for _ in range(2)]
        time.sleep(4)  # long enough for both to import torch and reach the lock
        assert all(p.poll() is None for p in processes)  # both waiting, neither finished
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    payloads = [strict_json(stdout) for stdout, _ in outputs]
    assert sorted(p["cached"] for p in payloads) == [False, True]
    assert payloads[0]["key"] == payloads[1]["key"] == spec.key()
    assert payloads[0]["final"] == payloads[1]["final"]
    assert payloads[0]["layers"] == payloads[1]["layers"]
    entries = [p for p in isolated_cache.iterdir() if p.is_dir()]
    assert [p.name for p in entries] == [spec.key()]
    # a third process finds it cached too
    third = start_cli(*CLI_ARGS, cache_dir=isolated_cache)
    stdout, stderr = third.communicate(timeout=300)
    assert third.returncode == 0, stderr
    assert strict_json(stdout)["cached"] is True


def test_malformed_cache_cap_in_the_environment_falls_back_to_the_default(monkeypatch, tmp_path):
    from vg_core.cache import DEFAULT_MAX_MB, ResultCache

    for bad in ("lots", "-5", "nan", ""):
        monkeypatch.setenv("VG_CACHE_MAX_MB", bad)
        assert ResultCache(tmp_path).max_bytes == DEFAULT_MAX_MB * 2**20
    monkeypatch.setenv("VG_CACHE_MAX_MB", "3")
    assert ResultCache(tmp_path).max_bytes == 3 * 2**20
