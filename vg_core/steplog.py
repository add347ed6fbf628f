"""Per-step scalars of a run (batch loss, per-layer weight-gradient norm) in bounded memory, however long it is."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

MAX_STEP_POINTS = 10_000  # points kept per run; a longer run averages consecutive steps into one point


class StepLog:
    """At most MAX_STEP_POINTS points, preallocated on the run's device.

    With more training steps than that, each point is the mean over `bucket` consecutive steps and is labelled
    with the last of them (bucket 1: every step as it was). The raw losses of the last `window` steps are kept
    apart, so a check can still name the exact step where the loss went wrong.
    """

    def __init__(self, total_steps: int, n_layers: int, device: torch.device, window: int) -> None:
        self.total = total_steps
        self.bucket = max(1, math.ceil(total_steps / MAX_STEP_POINTS))
        points = math.ceil(total_steps / self.bucket)
        self.loss = torch.zeros(points, device=device)
        self.norms = torch.zeros(points, n_layers, device=device)
        self.recent = torch.zeros(window, device=device)
        self.emitted = 0  # points already turned into frame rows

    @torch.no_grad()
    def add(self, step: int, loss: torch.Tensor, norms: torch.Tensor) -> None:
        """Step `step` (1-based): its batch loss and its per-layer weight-gradient norms."""
        index = (step - 1) // self.bucket
        self.loss[index] += loss
        self.norms[index] += norms
        self.recent[(step - 1) % len(self.recent)] = loss

    def recent_losses(self, first: int, last: int) -> torch.Tensor:
        """The raw losses of steps first..last (1-based, at most `window` steps back)."""
        slots = [(step - 1) % len(self.recent) for step in range(first, last + 1)]
        return self.recent[slots]

    def rows(self, step: int, per_epoch: int, final: bool) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """New (steps, layer_steps) rows of the points complete up to `step` (`final`: also a partial last one)."""
        end = step // self.bucket + (1 if final and step % self.bucket else 0)
        if end <= self.emitted:
            return None
        points = np.arange(self.emitted, end)
        last = np.minimum((points + 1) * self.bucket, step)  # each point's last step
        counts = (last - points * self.bucket).astype(float)
        losses = self.loss[self.emitted : end].cpu().numpy() / counts
        norms = self.norms[self.emitted : end].cpu().numpy() / counts[:, None]
        self.emitted = end
        n_layers = norms.shape[1]
        steps = pd.DataFrame({"step": last, "epoch": last / per_epoch, "loss": losses})
        layer_steps = pd.DataFrame(
            {
                "step": np.repeat(last, n_layers),
                "layer": np.tile(np.arange(1, n_layers + 1), len(last)),
                "weight_grad_norm": norms.reshape(-1),
            }
        )
        return steps, layer_steps
