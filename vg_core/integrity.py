"""Whether a loaded result is what its cache key promises: checked before the cache serves it."""

from __future__ import annotations

import math

import pandas as pd

from .results import FRAME_COLUMNS, FRAMES, ResultError, RunResult
from .spec import RECURRENT, RunSpec

STORED_STATUSES = ("complete", "diverged")  # a stopped run is partial: never cached
DATASET_KEYS = ("name", "source", "notice", "n_train", "n_test", "n_probe")


def check_result(result: RunResult, spec: RunSpec) -> None:
    """ResultError unless `result` is a whole stored run of exactly `spec`: its recorded spec and key, its
    metadata, and frames with the right columns, numeric values and row counts consistent with the metadata."""
    meta = result.meta
    if result.spec != spec or meta.get("key") != spec.key():
        raise ResultError(f"the entry records another spec ({meta.get('key')}), not {spec.key()}")
    if meta.get("status") not in STORED_STATUSES:
        raise ResultError(f"status {meta.get('status')!r} is not a finished run")
    dataset = meta.get("dataset")
    if not isinstance(dataset, dict) or not all(key in dataset for key in DATASET_KEYS):
        raise ResultError("the metadata lacks the dataset's description")
    for name in FRAMES:
        frame = getattr(result, name)
        if list(frame.columns) != FRAME_COLUMNS[name]:
            raise ResultError(f"{name} has columns {list(frame.columns)}")
        if not all(pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns if c != "quantity"):
            raise ResultError(f"{name} has a column that is not numeric")
    _check_rows(result)


def _check_rows(result: RunResult) -> None:
    meta, spec = result.meta, result.spec
    history, stats = result.history, result.layer_stats
    if history.empty or stats.empty or result.histograms.empty:
        raise ResultError("a frame a finished run always fills is empty")
    if history["step"].iloc[0] != 0 or result.snapshot_steps[0] != 0:
        raise ResultError("the initialisation's row is missing")
    total, per_point = meta.get("total_steps"), meta.get("steps_per_point", 1)
    if not isinstance(total, int) or not isinstance(per_point, int) or per_point < 1:
        raise ResultError("the metadata lacks the step counts")
    layers = stats.loc[stats["layer"] > 0, "layer"].nunique()
    if meta["status"] == "complete":
        if len(history) != spec.epochs + 1:
            raise ResultError(f"history has {len(history)} rows for {spec.epochs} epochs")
        points = math.ceil(total / per_point)
        if len(result.steps) != points or len(result.layer_steps) != points * layers:
            raise ResultError(f"steps has {len(result.steps)} rows for {total} steps")
    elif not isinstance(meta.get("diverged_at_step"), int):
        raise ResultError("a diverged run without the step it diverged at")
    _check_time(result)


def _check_time(result: RunResult) -> None:
    """A recurrent run records ‖∂L/∂h_t‖ at every snapshot, for its recurrent layers and t = 1..T; others none."""
    spec, frame = result.spec, result.time_stats
    if spec.model not in RECURRENT:
        if len(frame) or len(result.time_histograms):
            raise ResultError(f"a {spec.model} run with through-time rows")
        return
    norms = frame[frame["quantity"] == "hidden_grad_norm"]
    expected = len(result.snapshot_steps) * spec.depth * spec.seq_len
    if sorted(set(norms["step"])) != result.snapshot_steps or len(norms) != expected or result.time_histograms.empty:
        raise ResultError(f"time_stats has {len(norms)} gradient norms where the snapshots need {expected}")
    if not (norms["layer"].between(1, spec.depth).all() and norms["t"].between(1, spec.seq_len).all()):
        raise ResultError("time_stats has a layer or time step out of range")
