"""Helpers shared by the engine tests (test_spec ... test_cli): small specs, strict JSON, the CLI in a subprocess."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from vg_core.results import RunResult
from vg_core.spec import RunSpec

REPO = Path(__file__).resolve().parents[1]


def tiny_spec(**changes: Any) -> RunSpec:
    """A spec that trains in well under a second on mnist-sample (real digits, always installed)."""
    base = {
        "dataset": "mnist-sample",
        "n_train": 400,
        "activation": "sigmoid",
        "depth": 3,
        "width": 32,
        "batch_size": 50,
        "epochs": 1,
        "probe_size": 100,
        "device": "cpu",
    }
    return RunSpec(**{**base, **changes})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (which json.loads accepts by default)."""
    return json.loads(text, parse_constant=_reject_constant)


def run_cli(*args: str, cache_dir: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m vg_core ARGS` in a fresh process (single-threaded torch, isolated cache)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if cache_dir is not None:
        env["VG_CACHE_DIR"] = str(cache_dir)
    return subprocess.run(
        [sys.executable, "-m", "vg_core", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args: str, cache_dir: Path) -> subprocess.Popen:
    """Like run_cli, but returns the running process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "VG_CACHE_DIR": str(cache_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "vg_core", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def as_watched(result: RunResult, layers: list[str], name: str = "my-net") -> RunResult:
    """`result`'s frames as a run recorded by vg_core.watch carries them: no spec, its own name and layer names."""
    meta = {
        "source": "watch",
        "name": name,
        "key": f"watch-{name}-0123abcd",
        "layers": layers,
        "status": "complete",
        "diverged_at_step": None,
        "total_steps": result.meta["total_steps"],
        "device": "cpu",
    }
    return dataclasses.replace(result, spec=None, meta=meta)


def zipped_run(result: RunResult, folder: Path) -> bytes:
    """A .zip of the folder `result.save` writes (one top-level folder), as a user would upload it."""
    result.save(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{folder.name}/{path.name}")
    return buffer.getvalue()
