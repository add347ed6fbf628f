"""The per-step log and the snapshots of a training run, shared by the engine (train.py) and vg_core.watch.

Per training step: the batch loss and each layer's weight-gradient L2 norm, written into a buffer of
BUFFER_STEPS steps on the device (no sync) and moved to the CPU in blocks, at snapshots and whenever the buffer
is full. At a snapshot: the probe pass on the fixed probe batch and the update/weight ratio of the training step
that led there.

Bounded memory, however long the run: at most MAX_STEP_POINTS rows. Each row is the mean of `stride`
consecutive steps (loss and per-layer gradient norm), labelled with the last of them; only the newest row may
hold fewer. A run of known length starts at the stride that fits it (1 up to MAX_STEP_POINTS steps); one of
unknown length starts at 1, and whenever the rows overflow the stride doubles and rows are merged pairwise.
Before a block of raw losses leaves the buffer it is checked for divergence, so the exact step is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .probes import Layer, probe_batch
from .probes.snapshot import LossFn
from .results import Recorder

BUFFER_STEPS = 1024  # steps logged on the device between moves to the CPU (one sync each)
MAX_STEP_POINTS = 10_000  # rows of the per-step log kept per run; a longer run averages steps into rows


class StepRecorder:
    """Records a run's training steps and snapshots into a Recorder (its meta gets "steps_per_point").

    total_steps: the run's length if known (sets the starting stride); per_epoch: steps per epoch for the
    `epoch` column (None: NaN, not known); capacity: steps the device buffer holds; max_rows: the bound on
    rows (default MAX_STEP_POINTS). `loss_limit`: a loss above it is a divergence, as NaN and inf are."""

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[Layer],
        recorder: Recorder,
        device: torch.device,
        total_steps: int | None = None,
        per_epoch: int | None = None,
        capacity: int = BUFFER_STEPS,
        max_rows: int | None = None,
    ):
        self.model, self.layers, self.recorder = model, list(layers), recorder
        self.per_epoch = per_epoch
        self.max_rows = MAX_STEP_POINTS if max_rows is None else max_rows
        # Per layer, its weight matrices (one, or a recurrent layer's input and recurrent ones).
        self.layer_weights = [layer.weights for layer in self.layers]
        self.weights = [w for weights in self.layer_weights for w in weights]
        self.losses = torch.zeros(capacity, device=device)
        self.grad_norms = torch.zeros(capacity, len(self.layers), device=device)
        self.base = 0  # steps moved out of the buffer before its first row (the buffer holds base+1 ...)
        self.count = 0  # steps recorded in the buffer
        self.synced = 0  # steps already on the CPU
        self.checked = 0  # steps already checked for divergence
        self.loss_limit = math.inf
        self.diverged_at: int | None = None  # the first step found with a NaN, inf or too high loss
        self.stride = max(1, math.ceil((total_steps or 0) / self.max_rows))  # steps per CPU row
        self.recorder.meta["steps_per_point"] = self.stride
        self.kept = _Rows.empty(len(self.layers))

    @property
    def step(self) -> int:
        """Training steps recorded so far."""
        return self.base + self.count

    def record(self, loss: torch.Tensor) -> None:
        """One training step, after backward: its loss and the weight-gradient norms (before any clipping)."""
        if self.count == len(self.losses):
            self.first_diverged(self.step)
            self.sync(self.step)
            self.base, self.count = self.step, 0
        with torch.no_grad():
            self.losses[self.count] = loss.detach()
            self.grad_norms[self.count] = self.layer_norms([w.grad for w in self.weights])
        self.count += 1

    def layer_norms(self, tensors: list[torch.Tensor | None]) -> torch.Tensor:
        """Per layer, the L2 norm of its weight tensors together (`tensors` in self.weights' order; a missing
        gradient counts as zero)."""
        present = [t for t in tensors if t is not None]
        # one fused kernel on a GPU, per-tensor vector_norm (the same numbers) on the CPU
        found = iter(torch._foreach_norm(present)) if present else iter(())
        zero = torch.zeros((), device=self.losses.device)
        norms = [next(found) if t is not None else zero for t in tensors]
        per_layer, start = [], 0
        for weights in self.layer_weights:
            part = norms[start : start + len(weights)]
            per_layer.append(part[0] if len(part) == 1 else torch.linalg.vector_norm(torch.stack(part)))
            start += len(weights)
        return torch.stack(per_layer)

    def weights_copy(self) -> list[torch.Tensor]:
        """The weights now, for the update/weight ratio of the coming optimizer step."""
        return [w.detach().clone() for w in self.weights]

    def first_diverged(self, step: int) -> int | None:
        """The first step up to `step` (1-based) whose loss is NaN, inf or above `loss_limit`, or None; each
        step is read once, and once found that step is the answer."""
        if self.diverged_at is None:
            start = max(self.checked, self.base)
            losses = self.losses[start - self.base : step - self.base]
            bad = ~torch.isfinite(losses) | (losses > self.loss_limit)
            first = int(bad.int().argmax()) if bool(bad.any()) else None
            self.diverged_at = None if first is None else start + first + 1
            self.checked = max(self.checked, step)
        return self.diverged_at

    def snapshot(
        self,
        step: int,
        x: torch.Tensor,
        y: torch.Tensor,
        activation: str,
        before: list[torch.Tensor] | None,
        loss_fn: LossFn = nn.functional.cross_entropy,
    ) -> None:
        """Sync the per-step log, probe the model at `step` and record it with the update/weight ratio of the
        step from the weights `before` to now (NaN per layer without them)."""
        self.sync(step)
        if before is None:
            update = np.full(len(self.layers), np.nan)
        else:
            with torch.no_grad():
                changes = self.layer_norms([w - b for w, b in zip(self.weights, before)])
                update = (changes / self.layer_norms(before)).cpu().numpy()
        self.recorder.add_snapshot(step, probe_batch(self.model, x, y, activation, self.layers, loss_fn), update)

    def live(
        self,
        step: int,
        x: torch.Tensor,
        y: torch.Tensor,
        activation: str,
        loss_fn: LossFn = nn.functional.cross_entropy,
    ) -> Recorder:
        """A copy of the recorder with the per-step log up to `step` and a probe of the model now (no update
        ratio): what a page watching the training draws between snapshots. Nothing of it is kept, here or in
        the recorder, so a run records the same numbers whether or not anyone watched it."""
        kept, stride = self._kept_with(self._rows(step))
        recorder = self.recorder.copy()
        recorder.meta["steps_per_point"] = stride
        recorder.steps, recorder.layer_steps = self._frames(kept)
        recorder.add_snapshot(
            step,
            probe_batch(self.model, x, y, activation, self.layers, loss_fn),
            np.full(len(self.layers), np.nan),
        )
        return recorder

    def sync(self, step: int) -> None:
        """Move the per-step scalars of steps synced+1..step to the CPU and the recorder's frames."""
        if step <= self.synced:
            return
        self.kept, self.stride = self._kept_with(self._rows(step))
        self.synced = step
        self.recorder.meta["steps_per_point"] = self.stride
        self.recorder.steps, self.recorder.layer_steps = self._frames(self.kept)

    def _rows(self, step: int) -> _Rows:
        """The steps synced+1..step from the device buffer, one row each."""
        start, end = self.synced - self.base, step - self.base
        return _Rows(
            np.arange(self.synced + 1, step + 1),
            self.losses[start:end].cpu().numpy().astype(float),
            self.grad_norms[start:end].cpu().numpy().astype(float),
            np.ones(end - start, dtype=np.int64),
        )

    def _kept_with(self, raw: _Rows) -> tuple[_Rows, int]:
        """The kept rows and their stride once `raw` has joined them (neither is changed here)."""
        kept, stride = self.kept, self.stride
        if stride == 1 and len(kept) + len(raw) <= self.max_rows:
            return kept.concat(raw), stride
        if stride > 1 and len(kept) and kept.weight[-1] < stride:  # the newest row is open: it takes more steps
            raw = kept.tail().concat(raw)
            kept = kept.head()
        kept = kept.concat(raw.merged(stride))
        while len(kept) > self.max_rows:
            stride *= 2
            kept = kept.merged(stride)
        return kept, stride

    def _frames(self, kept: _Rows) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The recorder's `steps` and `layer_steps` frames of the kept rows."""
        n_layers = len(self.layers)
        epoch = kept.step / self.per_epoch if self.per_epoch else np.full(len(kept), np.nan)
        steps = pd.DataFrame({"step": kept.step, "epoch": epoch, "loss": kept.loss})
        layer_steps = pd.DataFrame(
            {
                "step": np.repeat(kept.step, n_layers),
                "layer": np.tile(np.arange(1, n_layers + 1), len(kept)),
                "weight_grad_norm": kept.norms.reshape(-1),
            }
        )
        return steps, layer_steps


class _Rows:
    """Logged rows on the CPU: the last step each covers, mean loss, mean per-layer norms, steps covered."""

    def __init__(self, step: np.ndarray, loss: np.ndarray, norms: np.ndarray, weight: np.ndarray):
        self.step, self.loss, self.norms, self.weight = step, loss, norms, weight

    @classmethod
    def empty(cls, n_layers: int) -> _Rows:
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, n_layers)), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.step)

    def concat(self, other: _Rows) -> _Rows:
        parts = zip(*((rows.step, rows.loss, rows.norms, rows.weight) for rows in (self, other)))
        return _Rows(*(np.concatenate(part) for part in parts))

    def head(self) -> _Rows:
        return _Rows(self.step[:-1], self.loss[:-1], self.norms[:-1], self.weight[:-1])

    def tail(self) -> _Rows:
        return _Rows(self.step[-1:], self.loss[-1:], self.norms[-1:], self.weight[-1:])

    def merged(self, stride: int) -> _Rows:
        """Consecutive rows merged into rows of `stride` steps each (the last may hold fewer), weighted means."""
        group = (np.cumsum(self.weight) - 1) // stride
        starts = np.flatnonzero(np.diff(group, prepend=-1))
        ends = np.append(starts[1:], len(self)) - 1
        weight = np.add.reduceat(self.weight, starts)
        loss = np.add.reduceat(self.loss * self.weight, starts) / weight
        norms = np.add.reduceat(self.norms * self.weight[:, None], starts, axis=0) / weight[:, None]
        return _Rows(self.step[ends], loss, norms, weight)
