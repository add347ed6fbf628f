"""The on-disk result cache: one folder per spec key, written atomically, locked, LRU-bounded."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from . import data
from .integrity import STORED_STATUSES, check_result
from .results import ResultError, RunResult
from .spec import RunSpec
from .train import Callback, resolve_device, train

DEFAULT_MAX_MB = 2048
USED_MARKER = "last_used"  # its mtime is the entry's last use, for LRU eviction
STALE_S = 3600  # staging, trash and lock files older than this, and not in use, are removed


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


class CacheError(OSError):
    """A cache folder that cannot be used at all (not a folder, cannot be created)."""


def resolved(spec: RunSpec) -> RunSpec:
    """The spec with device 'auto' replaced by the device it picks here, so the key names real hardware."""
    return spec.replace(device=resolve_device(spec.device).type)


class ResultCache:
    """Results keyed by RunSpec.key(), each verified before it is served; a bad entry is dropped and retrained.

    Nothing outside `root` is ever followed or deleted: an entry that is a symlink or a file is removed as a
    name inside the root. A root that cannot be written (read-only, no permission) is found up front: runs then
    train and are returned uncached, and `problem` says why. A root that is not a folder is a CacheError.
    """

    def __init__(self, root: str | Path | None = None, max_mb: float | None = None):
        self.root = Path(root) if root else cache_dir()
        self.max_bytes = int((max_mb or env_number("VG_CACHE_MAX_MB", DEFAULT_MAX_MB, 1, 2**30)) * 2**20)
        self.problem: str | None = None  # why results are not stored, or None
        if self.root.exists() and not self.root.is_dir():
            raise CacheError(f"cache: {self.root} is not a folder (set VG_CACHE_DIR or --cache-dir to a folder)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{uuid.uuid4().hex}"
            probe.touch()
            probe.unlink()
        except OSError as err:
            reason = err.strerror or str(err)
            self.problem = f"the cache folder {self.root} cannot be written ({reason}): results are not stored"

    def path(self, spec: RunSpec) -> Path:
        return self.root / spec.key()

    def lookup_spec(self, spec: RunSpec) -> RunSpec:
        """The spec whose result stands for `spec` now: while MNIST cannot be had, its offline stand-in's."""
        if spec.dataset == "mnist" and data.mnist_unavailable():
            return spec.replace(dataset=data.MNIST_STAND_IN)
        return spec

    def get(self, spec: RunSpec) -> RunResult | None:
        """The verified cached result of `spec` (device already resolved; see lookup_spec), or None."""
        spec = self.lookup_spec(spec)
        folder = self.path(spec)
        try:
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                self._remove(folder)  # never followed: not an entry this cache wrote
                return None
            if not folder.is_dir():
                return None
            inode = folder.stat().st_ino
        except OSError:
            return None
        try:
            result = RunResult.load(folder)
            check_result(result, spec)
        except ResultError:
            with contextlib.suppress(OSError):
                if folder.stat().st_ino == inode:  # not an entry another process put in its place meanwhile
                    self._remove(folder)
            return None
        with contextlib.suppress(OSError):  # evicted by another process meanwhile: the result is still whole
            (folder / USED_MARKER).touch()
        return result

    def put(self, result: RunResult) -> None:
        """Write to a temporary folder, then rename it into place (readers never see half an entry).
        An OSError (disk full, permissions) leaves the cache as it was."""
        final = self.path(result.spec)
        staging = self.root / f".tmp-{final.name}-{uuid.uuid4().hex}"
        try:
            result.save(staging)
            (staging / USED_MARKER).touch()
            if final.exists() or final.is_symlink():
                self._remove(final)
            try:
                os.rename(staging, final)
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise  # else another process has just put the same entry: its copy stands
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def get_or_train(self, spec: RunSpec, callback: Callback | None = None) -> tuple[RunResult, bool]:
        """(result, was_cached). Two processes asking for one spec train it once: the second waits.

        A run that fell back to a stand-in dataset (offline MNIST -> mnist-sample) is stored under the key of
        what it trained on, so it is found again while MNIST cannot be had, and never taken for MNIST's."""
        spec = resolved(spec)
        result = self.get(spec)
        if result is not None:
            return result, True
        with self._lock(self.lookup_spec(spec).key()):
            result = self.get(spec)
            if result is not None:
                return result, True
            result = stored_as_trained(train(spec, callback))
            if result.meta["status"] in STORED_STATUSES and self.problem is None:
                try:
                    self.put(result)
                    self.evict(keep=result.spec.key())
                except OSError as err:
                    self.problem = f"the result could not be stored in {self.root} ({err.strerror or err})"
        return result, False

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        """One trainer per key across processes; its lock file is removed afterwards. Without a usable lock
        (read-only root, a folder in its place) the run trains unlocked: at worst twice, never torn."""
        path = self.root / f"{key}.lock"
        lock = FileLock(str(path))
        try:
            if path.is_dir() and not path.is_symlink():
                self._remove(path)
            lock.acquire()
        except OSError:
            yield
            return
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()  # a waiter on the old file re-checks the cache, which now holds the result
            lock.release()

    def entries(self) -> list[tuple[Path, int, float]]:
        """(folder, bytes, last used) of every complete entry; one removed meanwhile by another process is skipped."""
        found = []
        with contextlib.suppress(OSError):
            for folder in self.root.iterdir():
                if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
                    continue
                try:
                    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
                    marker = folder / USED_MARKER
                    used = marker.stat().st_mtime if marker.exists() else folder.stat().st_mtime
                except OSError:
                    continue
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
            self._remove(folder)
            total -= size
            removed.append(folder.name)
        self._drop_stale()
        return removed

    def _remove(self, path: Path) -> None:
        """Delete one name directly inside the root: a folder is renamed away first (it vanishes at once for
        readers) and then deleted; a symlink or a file is unlinked, never followed."""
        if path.parent != self.root:
            raise ValueError(f"{path} is not directly inside the cache folder {self.root}")
        with contextlib.suppress(OSError):
            if path.is_symlink() or not path.is_dir():
                path.unlink()
                return
            trash = self.root / f".trash-{uuid.uuid4().hex}"
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def _drop_stale(self, older_than_s: float = STALE_S) -> None:
        """Staging and trash folders left by a process that died mid-write, and unused old lock files."""
        now = time.time()
        for pattern in (".tmp-*", ".trash-*", "*.lock"):
            for path in self.root.glob(pattern):
                with contextlib.suppress(OSError):
                    if now - path.lstat().st_mtime <= older_than_s:
                        continue
                    if path.suffix == ".lock" and path.is_file() and not path.is_symlink():
                        lock = FileLock(str(path), timeout=0)
                        with lock:  # filelock.Timeout (an OSError) while someone holds it: kept
                            path.unlink()
                    else:
                        self._remove(path)


def stored_as_trained(result: RunResult) -> RunResult:
    """The result under the spec of the data it really trained on (the stand-in's, when MNIST fell back)."""
    used = result.meta["dataset"]["name"]
    if used == result.spec.dataset:
        return result
    spec = result.spec.replace(dataset=used)
    return dataclasses.replace(result, spec=spec, meta={**result.meta, "key": spec.key()})
