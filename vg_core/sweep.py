"""Depth sweep: one spec over several depths and per-run variants, every point cached, resumable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .cache import ResultCache, resolved
from .i18n import N_, message
from .results import RunResult
from .spec import RANGES, RunSpec, SpecError
from .summary import at_chance, final_metrics, gradient_ratio
from .train import Callback

SWEEP_COLUMNS = [
    "depth",
    "activation",
    "init",
    "model",
    "residual",
    "test_acc",
    "train_loss",
    "train_acc",
    "grad_first_init",
    "grad_first_final",
    "grad_ratio_init",
    "grad_ratio_final",
    "epochs_to_90pct",
    "diverged",
    "key",
]
MAX_POINTS = 64


@dataclass(frozen=True)
class Sweep:
    """A base spec trained at every depth for every variant, activation and init; points train shallow-first.

    variants: per-run overrides, e.g. ({"residual": False}, {"residual": True}); a variant's own activation or
    init wins over the activations and inits."""

    base: RunSpec
    depths: tuple[int, ...]
    activations: tuple[str, ...]
    inits: tuple[str, ...] = ("default",)
    variants: tuple[Mapping[str, Any], ...] = ({},)

    def __post_init__(self) -> None:
        if not self.depths or not self.activations or not self.inits or not self.variants:
            raise SpecError(message("sweep: give at least one depth, one activation, one init and one variant"))
        if len(self.points()) > MAX_POINTS:
            text = N_("sweep: {count:d} points is more than the {limit:d} allowed")
            raise SpecError(message(text, count=len(self.points()), limit=MAX_POINTS))

    def points(self) -> list[RunSpec]:
        """Every spec of the sweep, validated, in the order they train (a resumed sweep skips cached ones)."""
        return [
            self.base.replace(**{"depth": depth, "activation": activation, "init": init, **variant})
            for depth in sorted(set(self.depths))
            for variant in self.variants
            for activation in self.activations
            for init in self.inits
        ]


def parse_depths(text: str) -> tuple[int, ...]:
    """'2,5,10' -> (2, 5, 10), each within RunSpec's depth range."""
    low, high = RANGES["depth"][1:]
    try:
        depths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SpecError(message("depths: {text!r} is not a comma-separated list of whole numbers", text=text)) from None
    if not depths or not all(low <= d <= high for d in depths):
        bounds = {"low": format(low, "g"), "high": format(high, "g")}
        raise SpecError(message("depths: {text!r} must list depths from {low} to {high}", text=text, **bounds))
    return depths


def epochs_to_fraction_of_best(history: pd.DataFrame, fraction: float = 0.9) -> float:
    """First epoch whose test accuracy reaches `fraction` of the run's best; NaN without epochs, and for a run whose
    best is at chance (summary.at_chance): it never learned, so "1 epoch to 90 % of its best" would read as fast."""
    trained = history[history["epoch"] > 0]
    if trained.empty or not np.isfinite(trained["test_acc"]).any() or at_chance(trained["test_acc"].max()):
        return float("nan")
    reached = trained[trained["test_acc"] >= fraction * trained["test_acc"].max()]
    return float(reached["epoch"].iloc[0])


def point_row(result: RunResult) -> dict:
    """One line of the sweep table (grad_first: the first layer's weight-gradient norm)."""
    metrics = final_metrics(result)
    return {
        "depth": result.spec.depth,
        "activation": result.spec.activation,
        "init": result.spec.init,
        "model": result.spec.model,
        "residual": result.spec.residual,
        "test_acc": metrics["test_acc"],
        "train_loss": metrics["train_loss"],
        "train_acc": metrics["train_acc"],
        "grad_first_init": float(result.stat("weight_grad_norm", result.snapshot_steps[0]).get(1, np.nan)),
        "grad_first_final": float(result.stat("weight_grad_norm").get(1, np.nan)),
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
