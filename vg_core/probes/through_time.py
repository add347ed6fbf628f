"""Gradients through time: a recurrent net unrolled step by step on its own weights, ∂L/∂h_t for every t."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..models.rnn import RecurrentNet
from .bins import ACTIVATION_BINS, LOG_GRAD_BINS, Bins, histogram, log_abs_histogram

DENORMAL = 1e-39  # a float32 denormal: it survives * 1.0 unless denormals are flushed
HISTOGRAM_TIME_STEPS = 16  # time steps, evenly spaced from 1 to T, whose full distributions are kept
STAT_COLUMNS = ["step", "layer", "t", "quantity", "value"]
HISTOGRAM_COLUMNS = ["step", "layer", "t", "quantity", "bin_start", "bin_end", "count"]


@dataclass(frozen=True)
class ThroughTime:
    """One probe pass through time, on the CPU; time steps t = 1..T, layers bottom up by module path."""

    loss: float
    layers: tuple[str, ...]
    hidden_grad_norm: np.ndarray  # (layers, T): ‖∂L/∂h_t‖ over the batch and units, the total gradient
    cell_grad_norm: np.ndarray | None  # (layers, T): ‖∂L/∂c_t‖ for an LSTM, else None
    hist_t: np.ndarray  # (S,): the time steps with histograms
    hidden_grad_hist: np.ndarray  # (layers, S, LOG_GRAD_BINS.count): log10|∂L/∂h_t| counts
    hidden_grad_special: np.ndarray  # (layers, S, 3): zeros, NaN and inf in ∂L/∂h_t (in no bin)
    activation_hist: np.ndarray  # (layers, S, activation_bins.count): h_t counts, clamped into the end bins
    activation_nan: np.ndarray  # (layers, S): NaN in h_t (in no bin)
    activation_bins: Bins


def histogram_steps(seq_len: int, count: int = HISTOGRAM_TIME_STEPS) -> np.ndarray:
    """About `count` time steps evenly spaced from 1 to seq_len, both included (all of them if fewer)."""
    return np.unique(np.rint(np.linspace(1, seq_len, min(count, seq_len))).astype(np.int64))


def unrolled_forward(
    model: RecurrentNet, x: torch.Tensor
) -> tuple[torch.Tensor, list[list[torch.Tensor]], list[list[torch.Tensor]] | None]:
    """The model's forward cell by cell on its own parameters (PyTorch's equations and gate order):
    logits, h_t per layer and t, and c_t per layer and t for an LSTM (else None). Each h_t and c_t is
    one node of the graph, so a gradient with respect to it is the total one: through time and upwards."""
    kind = model.config.kind
    inputs = model.sequence(x)
    hidden, cells = [], [] if kind == "lstm" else None
    for _, module in model.recurrent_layers:
        # The input projections of all time steps at once; only the recurrence runs step by step.
        projected = F.linear(inputs, module.weight_ih_l0, module.bias_ih_l0).unbind(1)
        w_hh, b_hh = module.weight_hh_l0, module.bias_hh_l0
        h = c = x.new_zeros(len(x), module.hidden_size)
        hs, cs = [], []
        for x_t in projected:
            recurrent = F.linear(h, w_hh, b_hh)
            if kind == "rnn":
                h = torch.tanh(x_t + recurrent) if module.nonlinearity == "tanh" else torch.relu(x_t + recurrent)
            elif kind == "lstm":
                i, f, g, o = (x_t + recurrent).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                cs.append(c)
            else:
                x_r, x_z, x_n = x_t.chunk(3, dim=1)
                h_r, h_z, h_n = recurrent.chunk(3, dim=1)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                h = torch.lerp(torch.tanh(x_n + r * h_n), h, z)  # (1 - z) * n + z * h
            hs.append(h)
        hidden.append(hs)
        if cells is not None:
            cells.append(cs)
        inputs = torch.stack(hs, dim=1)
    return model.fc(hidden[-1][-1]), hidden, cells


@contextlib.contextmanager
def flushed_denormals():
    """Flush float32 denormals (|v| < 1.2e-38) to zero on this thread while inside, then restore the setting.

    A gradient that vanishes through time passes through the denormal range at every step, and CPU arithmetic
    on denormals is several times slower (measured: an LSTM over 196 steps, 0.4 s -> 2.9 s). They lie 8 decades
    below LOG_GRAD_BINS' first bin and are then counted as zeros. Intra-op worker threads keep their own setting.
    """
    was_on = bool((torch.tensor([DENORMAL]) * 1.0).item() == 0.0)  # torch has no getter for the flag
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_on)


@torch.enable_grad()
def probe_through_time(model: RecurrentNet, x: torch.Tensor, y: torch.Tensor) -> ThroughTime:
    """Loss, ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) for every t and layer, and histograms at histogram_steps(T).

    One unrolled forward and one torch.autograd.grad, with denormals flushed (flushed_denormals): no
    parameter's .grad, no buffer, no training mode and no weight is touched.
    """
    with flushed_denormals():
        return _probe(model, x, y)


def _probe(model: RecurrentNet, x: torch.Tensor, y: torch.Tensor) -> ThroughTime:
    logits, hidden, cells = unrolled_forward(model, x)
    loss = F.cross_entropy(logits, y)
    states = [h for hs in hidden for h in hs] + ([c for cs in cells for c in cs] if cells is not None else [])
    grads = torch.autograd.grad(loss, states)
    depth, seq_len = len(hidden), len(hidden[0])
    norms = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]).reshape(-1, depth, seq_len)
    hist_t = histogram_steps(seq_len)
    bins = ACTIVATION_BINS[model.config.activation]
    grad_counts, specials, act_counts, act_nan = [], [], [], []
    with torch.no_grad():
        for layer in range(depth):
            for t in hist_t:
                counts, special = log_abs_histogram(grads[layer * seq_len + t - 1])
                state = hidden[layer][t - 1].detach()
                grad_counts.append(counts)
                specials.append(special)
                act_counts.append(histogram(state, bins))
                act_nan.append(torch.count_nonzero(torch.isnan(state)))
    norms = norms.cpu().numpy().astype(np.float64)
    shape = (depth, len(hist_t))
    return ThroughTime(
        loss=float(loss.detach().cpu()),
        layers=tuple(name for name, _ in model.recurrent_layers),
        hidden_grad_norm=norms[0],
        cell_grad_norm=norms[1] if cells is not None else None,
        hist_t=hist_t,
        hidden_grad_hist=torch.stack(grad_counts).cpu().numpy().reshape(*shape, -1),
        hidden_grad_special=torch.stack(specials).cpu().numpy().reshape(*shape, 3),
        activation_hist=torch.stack(act_counts).cpu().numpy().reshape(*shape, -1),
        activation_nan=torch.stack(act_nan).cpu().numpy().reshape(shape),
        activation_bins=bins,
    )


def time_stats(step: int, probe: ThroughTime) -> dict[str, np.ndarray]:
    """Long-form scalars as columns (STAT_COLUMNS: step, layer, t, quantity, value): hidden_grad_norm and
    cell_grad_norm (LSTM) at every t; hidden_grad_zeros/_nan/_inf and activation_nan at the histogrammed t.
    `layer` is the layer's number as in the other frames (1 = the first; a RecurrentNet's recurrent layers
    come first)."""
    seq_len = probe.hidden_grad_norm.shape[1]
    every_t = {"hidden_grad_norm": probe.hidden_grad_norm}
    if probe.cell_grad_norm is not None:
        every_t["cell_grad_norm"] = probe.cell_grad_norm
    at_hist_t = {
        f"hidden_grad_{name}": probe.hidden_grad_special[..., k] for k, name in enumerate(("zeros", "nan", "inf"))
    }
    at_hist_t["activation_nan"] = probe.activation_nan
    numbers = np.arange(1, len(probe.layers) + 1)
    parts = [
        _stat_rows(step, numbers, np.arange(1, seq_len + 1), every_t),
        _stat_rows(step, numbers, probe.hist_t, at_hist_t),
    ]
    return _joined(parts, STAT_COLUMNS)


def _stat_rows(step: int, layers: np.ndarray, ts: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    per_quantity = len(layers) * len(ts)
    return {
        "step": np.full(per_quantity * len(values), step, dtype=np.int64),
        "layer": np.tile(np.repeat(layers, len(ts)), len(values)).astype(np.int64),
        "t": np.tile(ts, len(layers) * len(values)).astype(np.int64),
        "quantity": np.repeat(list(values), per_quantity),
        "value": np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values.values()]),
    }


def time_histograms(step: int, probe: ThroughTime) -> dict[str, np.ndarray]:
    """Long-form counts as columns (HISTOGRAM_COLUMNS: step, layer, t, quantity, bin_start, bin_end, count) of
    hidden_grad (log10|∂L/∂h_t|, LOG_GRAD_BINS) and activation (h_t, the activation's bins) at the histogrammed
    t; `layer` as in time_stats."""
    parts = [
        _histogram_rows(step, probe, "hidden_grad", probe.hidden_grad_hist, LOG_GRAD_BINS),
        _histogram_rows(step, probe, "activation", probe.activation_hist, probe.activation_bins),
    ]
    return _joined(parts, HISTOGRAM_COLUMNS)


def _histogram_rows(
    step: int, probe: ThroughTime, quantity: str, counts: np.ndarray, bins: Bins
) -> dict[str, np.ndarray]:
    n_layers, n_t, n_bins = counts.shape
    rows = n_layers * n_t * n_bins
    return {
        "step": np.full(rows, step, dtype=np.int64),
        "layer": np.repeat(np.arange(1, n_layers + 1), n_t * n_bins).astype(np.int64),
        "t": np.tile(np.repeat(probe.hist_t, n_bins), n_layers).astype(np.int64),
        "quantity": np.full(rows, quantity),
        "bin_start": np.tile(bins.edges[:-1], n_layers * n_t),
        "bin_end": np.tile(bins.edges[1:], n_layers * n_t),
        "count": counts.reshape(-1).round().astype(np.int64),
    }


def _joined(parts: list[dict[str, np.ndarray]], columns: list[str]) -> dict[str, np.ndarray]:
    """The parts' rows one after another, as `columns`."""
    return {column: np.concatenate([part[column] for part in parts]) for column in columns}
