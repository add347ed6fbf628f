"""Depth sweep: one spec over several depths and activations (or inits), every point cached, resumable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cache import ResultCache, resolved
from .results import RunResult
from .spec import RANGES, RunSpec, SpecError
from .summary import final_metrics, gradient_ratio
from .train import Callback

SWEEP_COLUMNS = [
    "depth",
    "activation",
    "init",
    "test_acc",
    "grad_ratio_init",
    "grad_ratio_final",
    "epochs_to_90pct",
    "diverged",
    "key",
]
MAX_POINTS = 64


@dataclass(frozen=True)
class Sweep:
    """A base spec trained at every depth for every activation (and init); points train shallow-first."""

    base: RunSpec
    depths: tuple[int, ...]
    activations: tuple[str, ...]
    inits: tuple[str, ...] = ("default",)

    def __post_init__(self) -> None:
        if not self.depths or not self.activations or not self.inits:
            raise SpecError("sweep: give at least one depth, one activation and one init")
        if len(self.points()) > MAX_POINTS:
            raise SpecError(f"sweep: {len(self.points())} points is more than the {MAX_POINTS} allowed")

    def points(self) -> list[RunSpec]:
        """Every spec of the sweep, validated, in the order they train (a resumed sweep skips cached ones)."""
        return [
            self.base.replace(depth=depth, activation=activation, init=init)
            for depth in sorted(set(self.depths))
            for activation in self.activations
            for init in self.inits
        ]


def parse_depths(text: str) -> tuple[int, ...]:
    """'2,5,10' -> (2, 5, 10), each within RunSpec's depth range."""
    low, high = RANGES["depth"][1:]
    try:
        depths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SpecError(f"depths: {text!r} is not a comma-separated list of whole numbers") from None
    if not depths or not all(low <= d <= high for d in depths):
        raise SpecError(f"depths: {text!r} must list depths from {low:g} to {high:g}")
    return depths


def epochs_to_fraction_of_best(history: pd.DataFrame, fraction: float = 0.9) -> float:
    """First epoch whose test accuracy reaches `fraction` of the run's best (NaN without epochs)."""
    trained = history[history["epoch"] > 0]
    if trained.empty or not np.isfinite(trained["test_acc"]).any():
        return float("nan")
    reached = trained[trained["test_acc"] >= fraction * trained["test_acc"].max()]
    return float(reached["epoch"].iloc[0])


def point_row(result: RunResult) -> dict:
    """One line of the sweep table."""
    return {
        "depth": result.spec.depth,
        "activation": result.spec.activation,
        "init": result.spec.init,
        "test_acc": final_metrics(result)["test_acc"],
        "grad_ratio_init": gradient_ratio(result, result.snapshot_steps[0]),
        "grad_ratio_final": gradient_ratio(result),
        "epochs_to_90pct": epochs_to_fraction_of_best(result.history),
        "diverged": result.diverged_at_step is not None,
        "key": result.spec.key(),
    }


def cached_table(sweep: Sweep, cache: ResultCache) -> tuple[pd.DataFrame, list[RunSpec]]:
    """(table of the points already in the cache, specs still missing); trains nothing."""
    rows, missing = [], []
    for spec in sweep.points():
        result = cache.get(resolved(spec))
        if result is None:
            missing.append(spec)
        else:
            rows.append(point_row(result))
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS), missing


def run_sweep(
    sweep: Sweep,
    cache: ResultCache,
    on_point: Callable[[int, int, RunSpec], Callback | None] | None = None,
) -> pd.DataFrame:
    """Train every missing point (cached ones load at once) and return the whole table.

    on_point(index, count, spec) is called before each point and may return a training callback.
    An interruption loses at most the point in progress: the next call resumes after the cached ones.
    """
    points = sweep.points()
    rows = []
    for index, spec in enumerate(points):
        callback = on_point(index, len(points), spec) if on_point else None
        result, _ = cache.get_or_train(spec, callback)
        rows.append(point_row(result))
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)
