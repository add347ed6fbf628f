"""The on-disk result cache: one folder per spec key, written atomically, locked, LRU-bounded."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from filelock import FileLock

from .results import ResultError, RunResult
from .spec import RunSpec
from .train import Callback, resolve_device, train

DEFAULT_MAX_MB = 2048
STORED_STATUSES = ("complete", "diverged")  # a stopped run is partial: never cached
USED_MARKER = "last_used"  # its mtime is the entry's last use, for LRU eviction


def cache_dir() -> Path:
    """$VG_CACHE_DIR, else ~/.cache/vg_core/results."""
    return Path(os.environ.get("VG_CACHE_DIR") or Path.home() / ".cache" / "vg_core" / "results")


def env_number(name: str, default: float, low: float, high: float) -> float:
    """A numeric setting from the environment; a malformed or out-of-range value falls back to the default
    (a typo in a deployment's settings must not stop the page or the CLI from starting)."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if low <= value <= high else default


def resolved(spec: RunSpec) -> RunSpec:
    """The spec with device 'auto' replaced by the device it picks here, so the key names real hardware."""
    return spec.replace(device=resolve_device(spec.device).type)


class ResultCache:
    """Results keyed by RunSpec.key(); an unreadable entry is dropped and retrained, never an error."""

    def __init__(self, root: str | Path | None = None, max_mb: float | None = None):
        self.root = Path(root) if root else cache_dir()
        self.max_bytes = int((max_mb or env_number("VG_CACHE_MAX_MB", DEFAULT_MAX_MB, 1, 2**30)) * 2**20)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, spec: RunSpec) -> Path:
        return self.root / spec.key()

    def get(self, spec: RunSpec) -> RunResult | None:
        """The cached result of `spec` (device already resolved), or None."""
        folder = self.path(spec)
        if not folder.is_dir():
            return None
        try:
            result = RunResult.load(folder)
        except ResultError:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        (folder / USED_MARKER).touch()
        return result

    def put(self, result: RunResult) -> None:
        """Write to a temporary folder, then rename it into place (readers never see half an entry)."""
        final = self.path(result.spec)
        staging = self.root / f".tmp-{final.name}-{uuid.uuid4().hex}"
        try:
            result.save(staging)
            (staging / USED_MARKER).touch()
            if final.exists():
                shutil.rmtree(final)
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def get_or_train(self, spec: RunSpec, callback: Callback | None = None) -> tuple[RunResult, bool]:
        """(result, was_cached). Two processes asking for one spec train it once: the second waits."""
        spec = resolved(spec)
        result = self.get(spec)
        if result is not None:
            return result, True
        with FileLock(str(self.root / f"{spec.key()}.lock")):
            result = self.get(spec)
            if result is not None:
                return result, True
            result = train(spec, callback)
            # A run on a stand-in dataset (offline MNIST -> mnist-sample) is not stored under the real dataset's
            # key: once MNIST can be downloaded, the same spec must train on it.
            substituted = result.meta["dataset"]["name"] != spec.dataset
            if result.meta["status"] in STORED_STATUSES and not substituted:
                self.put(result)
                self.evict(keep=spec.key())
        return result, False

    def entries(self) -> list[tuple[Path, int, float]]:
        """(folder, bytes, last used) of every complete entry."""
        found = []
        for folder in self.root.iterdir():
            if folder.is_dir() and not folder.name.startswith("."):
                size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
                marker = folder / USED_MARKER
                used = marker.stat().st_mtime if marker.exists() else folder.stat().st_mtime
                found.append((folder, size, used))
        return found

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least-recently-used entries until the cache fits its cap; returns the removed keys."""
        entries = sorted(self.entries(), key=lambda entry: entry[2])
        total = sum(size for _, size, _ in entries)
        removed = []
        for folder, size, _ in entries:
            if total <= self.max_bytes:
                break
            if folder.name == keep:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            removed.append(folder.name)
        self._drop_stale_staging()
        return removed

    def _drop_stale_staging(self, older_than_s: float = 3600) -> None:
        """Temporary folders left by a process that died mid-write."""
        now = time.time()
        for folder in self.root.glob(".tmp-*"):
            if now - folder.stat().st_mtime > older_than_s:
                shutil.rmtree(folder, ignore_errors=True)
