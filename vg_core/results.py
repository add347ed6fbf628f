"""RunResult: tidy pandas frames of one run plus its metadata, saved as Parquet + JSON and nothing else."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import dataset_notes
from .i18n import Message
from .probes import (
    ACTIVATION_BINS,
    LOG_GRAD_BINS,
    POOLED_LAYER,
    PRE_ACTIVATION_BINS,
    SIGNED_GRAD_BINS,
    Bins,
    ProbeSnapshot,
)
from .probes.through_time import HISTOGRAM_COLUMNS as TIME_HISTOGRAM_COLUMNS
from .probes.through_time import STAT_COLUMNS as TIME_STAT_COLUMNS
from .probes.through_time import ThroughTime, time_histograms, time_stats
from .spec import RunSpec

FRAMES = ("history", "steps", "layer_steps", "layer_stats", "histograms", "time_stats", "time_histograms")
FRAME_COLUMNS = {
    "history": ["step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc"],
    "steps": ["step", "epoch", "loss"],
    "layer_steps": ["step", "layer", "weight_grad_norm"],
    "layer_stats": ["step", "layer", "quantity", "value"],
    "histograms": ["step", "layer", "quantity", "bin_start", "bin_end", "count"],
    "time_stats": TIME_STAT_COLUMNS,
    "time_histograms": TIME_HISTOGRAM_COLUMNS,
}


class ResultError(RuntimeError):
    """A saved result that is missing, partial or unreadable."""


@dataclass
class RunResult:
    """Everything one run recorded.

    history:     one row per evaluation (step 0 and each epoch end): train/test loss and accuracy
    steps:       one row per training step: the batch loss
    layer_steps: per training step and layer: the weight-gradient L2 norm of that batch (before clipping)
    layer_stats: per snapshot step and layer (1 = the first, see layer_names): scalar probe quantities, long form
    histograms:  per snapshot step, layer and quantity: fixed-bin counts (layer 0 = all pooled)
    time_stats:  recurrent nets, per snapshot step, recurrent layer and time step t = 1..T: ‖∂L/∂h_t‖ (and
                 ‖∂L/∂c_t‖ for an LSTM), see probes.through_time; empty for other families
    time_histograms: the same at 16 time steps: log10|∂L/∂h_t| and h_t fixed-bin counts; empty for others
    meta:        spec, key, layer names, dataset name/source/sizes, device, status, diverged step, timings
    spec:        None for a run recorded by vg_core.watch on a user's own model (meta["source"] == "watch",
                 with its name, key and layer names; see vg_core.runfiles)
    """

    spec: RunSpec | None
    meta: dict[str, Any]
    history: pd.DataFrame
    steps: pd.DataFrame
    layer_steps: pd.DataFrame
    layer_stats: pd.DataFrame
    histograms: pd.DataFrame
    time_stats: pd.DataFrame = field(default_factory=lambda: _empty("time_stats"))
    time_histograms: pd.DataFrame = field(default_factory=lambda: _empty("time_histograms"))

    @functools.cached_property
    def snapshot_steps(self) -> list[int]:
        return sorted(self.layer_stats["step"].unique().tolist())

    @functools.cached_property
    def _stats_by(self) -> dict[str, dict[int, pd.DataFrame]]:
        """layer_stats split by quantity, then step, once: a page's charts and verdicts look up dozens of these
        at each draw, and filtering the whole long frame each time was a third of a redraw's server time. (The
        frames are never changed after a result is made: a run in progress makes a new result each time.)"""
        split: dict[str, dict[int, pd.DataFrame]] = {}
        for (quantity, step), part in self.layer_stats.groupby(["quantity", "step"], sort=True):
            split.setdefault(str(quantity), {})[int(step)] = part
        return split

    def stat_rows(self, quantity: str, step: int | None = None) -> pd.DataFrame:
        """The layer_stats rows of `quantity` at `step` (default: its last snapshot); none if not recorded."""
        by_step = self._stats_by.get(quantity, {})
        rows = by_step.get(max(by_step, default=-1) if step is None else step)
        return self.layer_stats.iloc[:0] if rows is None else rows

    def layer_name(self, layer: int) -> str:
        """The name of layer number `layer` (1-based)."""
        return self.layer_names[layer - 1]

    @property
    def diverged_at_step(self) -> int | None:
        return self.meta.get("diverged_at_step")

    @property
    def layer_names(self) -> list[str]:
        """Each layer's name, index 0 <-> layer 1: module paths from meta["layers"], else fc1, fc2, ..."""
        n_layers = int(self.layer_stats["layer"].max()) if len(self.layer_stats) else 0
        return list(self.meta.get("layers") or [f"fc{i}" for i in range(1, n_layers + 1)])

    @property
    def label(self) -> str:
        """The spec's label, or a watched run's own name."""
        return self.spec.label if self.spec is not None else str(self.meta["name"])

    @property
    def data_notes(self) -> list[Message | str]:
        """What the user should know of the data it trained on (see data.dataset_notes); none for a watched run."""
        return dataset_notes(self.meta.get("dataset"), self.spec.n_train if self.spec is not None else 0)

    @property
    def key(self) -> str:
        """The spec's key, or a watched run's recording id."""
        return self.spec.key() if self.spec is not None else str(self.meta["key"])

    def stat(self, quantity: str, step: int | None = None) -> pd.Series:
        """One probe quantity per layer (index = layer) at `step` (default: the last snapshot)."""
        return self.stat_rows(quantity, step).set_index("layer")["value"].sort_index()

    def hidden_grad_norms(self, step: int | None = None) -> dict[int, list[float]]:
        """‖∂L/∂h_t‖ for t = 1..T per recurrent layer (number -> list) at `step` (default: the last
        snapshot); empty for a run without through-time rows."""
        frame = self.time_stats[self.time_stats["quantity"] == "hidden_grad_norm"]
        if frame.empty:
            return {}
        frame = frame[frame["step"] == (frame["step"].max() if step is None else step)].sort_values(["layer", "t"])
        return {int(layer): part["value"].tolist() for layer, part in frame.groupby("layer")}

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in FRAMES:
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=False)
        meta = self.meta if self.spec is None else {**self.meta, "spec": self.spec.to_dict()}
        (folder / "meta.json").write_text(json.dumps(json_safe(meta), indent=2, allow_nan=False))

    @classmethod
    def load(cls, folder: str | Path) -> RunResult:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text())
            spec = RunSpec(**meta.pop("spec"))
            frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in FRAMES}
        except Exception as err:
            raise ResultError(f"unreadable result in {folder}: {err}") from None
        for name, frame in frames.items():
            if list(frame.columns) != FRAME_COLUMNS[name]:
                raise ResultError(f"{folder / name}.parquet has columns {list(frame.columns)}")
        return cls(spec=spec, meta=meta, **frames)


def json_safe(value: Any) -> Any:
    """A copy with NaN/inf replaced by None and numpy scalars made plain, for strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Recorder:
    """Collects a run's rows as training goes, and turns them into a RunResult at any moment."""

    spec: RunSpec | None  # None for a run recorded by vg_core.watch
    meta: dict[str, Any]
    activation: str | None = None  # the activation histogram's bins (ACTIVATION_BINS); None: the spec's
    history: list[tuple] = field(default_factory=list)
    # Per snapshot, its rows as columns (numpy arrays): made into frames only when a result is asked for, as
    # building two frames at each of a run's ~25 snapshots cost more than a third of a small net's probes.
    stat_columns: list[dict[str, np.ndarray]] = field(default_factory=list)
    histogram_columns: list[dict[str, np.ndarray]] = field(default_factory=list)
    time_stat_columns: list[dict[str, np.ndarray]] = field(default_factory=list)
    time_histogram_columns: list[dict[str, np.ndarray]] = field(default_factory=list)
    steps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FRAME_COLUMNS["steps"]))
    layer_steps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FRAME_COLUMNS["layer_steps"]))

    def copy(self) -> Recorder:
        """A recorder to add rows to without changing this one (the rows recorded so far are shared)."""
        return replace(
            self,
            meta=dict(self.meta),
            history=list(self.history),
            stat_columns=list(self.stat_columns),
            histogram_columns=list(self.histogram_columns),
            time_stat_columns=list(self.time_stat_columns),
            time_histogram_columns=list(self.time_histogram_columns),
        )

    def add_evaluation(self, step: int, epoch: float, train: tuple[float, float], test: tuple[float, float]) -> None:
        self.history.append((step, epoch, *train, *test))

    def add_snapshot(self, step: int, snapshot: ProbeSnapshot, update_ratio: np.ndarray) -> None:
        """One probe pass at `step`, plus the update-to-weight ratio of the training step that led there."""
        n_layers = len(update_ratio)
        stats = {**snapshot.stats, "update_ratio": update_ratio}
        value = np.concatenate([np.asarray(v, dtype=float) for v in stats.values()])
        kept = ~np.isnan(value)  # a quantity a layer does not have is NaN: no row
        # then the pooled row: how many signed gradients fell outside the article's histogram
        value = np.append(value[kept], float(snapshot.signed_outside))
        self.stat_columns.append(
            {
                "step": np.full(len(value), step, dtype=np.int64),
                "layer": np.append(np.tile(np.arange(1, n_layers + 1), len(stats))[kept], POOLED_LAYER),
                "quantity": np.append(np.repeat(list(stats), n_layers)[kept], "signed_outside"),
                "value": value,
            }
        )
        bins = {
            "activation": ACTIVATION_BINS[self.activation or self.spec.activation],
            "pre_activation": PRE_ACTIVATION_BINS,
            "weight_grad": LOG_GRAD_BINS,
            "grad_out": LOG_GRAD_BINS,
        }
        parts = [
            _histogram_rows(step, name, counts, bins[name], snapshot.histogram_layers[name])
            for name, counts in snapshot.histograms.items()
        ]
        pooled_counts = snapshot.signed_histogram[None, :]
        parts.append(_histogram_rows(step, "weight_grad_signed", pooled_counts, SIGNED_GRAD_BINS, [POOLED_LAYER]))
        self.histogram_columns.append({column: np.concatenate([part[column] for part in parts]) for column in parts[0]})

    def add_time(self, step: int, probe: ThroughTime) -> None:
        """One through-time probe pass of a recurrent net at `step`."""
        self.time_stat_columns.append(time_stats(step, probe))
        self.time_histogram_columns.append(time_histograms(step, probe))

    def result(self) -> RunResult:
        history = pd.DataFrame(self.history, columns=FRAME_COLUMNS["history"])
        return RunResult(
            spec=self.spec,
            meta=dict(self.meta),
            history=history.astype({"step": "int64"}),
            steps=self.steps.astype({"step": "int64", "epoch": float, "loss": float}),
            layer_steps=self.layer_steps.astype({"step": "int64", "layer": "int64", "weight_grad_norm": float}),
            layer_stats=_frame(self.stat_columns, "layer_stats"),
            histograms=_frame(self.histogram_columns, "histograms"),
            time_stats=_frame(self.time_stat_columns, "time_stats"),
            time_histograms=_frame(self.time_histogram_columns, "time_histograms"),
        )


def _histogram_rows(step: int, quantity: str, counts: np.ndarray, bins: Bins, layers) -> dict[str, np.ndarray]:
    n_layers, n_bins = counts.shape
    edges = bins.edges
    return {
        "step": np.full(n_layers * n_bins, step, dtype=np.int64),
        "layer": np.repeat(np.asarray(layers, dtype=np.int64), n_bins),
        "quantity": np.full(n_layers * n_bins, quantity),
        "bin_start": np.tile(edges[:-1], n_layers),
        "bin_end": np.tile(edges[1:], n_layers),
        "count": counts.reshape(-1).round().astype(np.int64),
    }


def _frame(parts: list[dict[str, np.ndarray]], name: str) -> pd.DataFrame:
    """One frame of the rows recorded as columns, part after part."""
    if not parts:
        return _empty(name)
    columns = {column: np.concatenate([part[column] for part in parts]) for column in FRAME_COLUMNS[name]}
    return pd.DataFrame(columns).astype({"step": "int64", "layer": "int64"})


def _empty(name: str) -> pd.DataFrame:
    """A frame with no rows and its columns' types (so that it saves to Parquet with the right schema); a copy,
    as the caller may change it."""
    return _empty_frame(name).copy()


@functools.cache
def _empty_frame(name: str) -> pd.DataFrame:
    """Built once per name: astype on an empty frame costs ~10 ms, and a partial result asks for two."""
    frame = pd.DataFrame(columns=FRAME_COLUMNS[name])
    return frame.astype({c: (object if c == "quantity" else float) for c in frame.columns}).astype(
        {c: "int64" for c in ("step", "layer", "t", "count") if c in frame.columns}
    )
