"""One probe pass: forward and backward on a fixed probe batch through hooks, summarised per layer, on the device."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import rng
from .bins import SIGNED_GRAD_BINS, exact
from .hooks import attach
from .layers import Layer, model_layers
from .quantities import HISTOGRAM_QUANTITIES, LAYER_QUANTITIES, QUANTITIES

POOLED_LAYER = 0  # the "layer" of the article's pooled histogram of all parameter gradients

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ProbeSnapshot:
    """One probe pass, on the CPU: loss, per-layer scalars and fixed-bin histogram counts."""

    loss: float
    stats: dict[str, np.ndarray]  # quantity -> one value per layer
    histograms: dict[str, np.ndarray]  # quantity -> (layers it applies to, bins) counts
    histogram_layers: dict[str, np.ndarray]  # quantity -> those layers' numbers (1 = the first layer)
    signed_histogram: np.ndarray  # article's view: all parameter gradients pooled, (bins,)
    signed_outside: int  # pooled gradients outside -1..1 or NaN (plt.hist drops them; we say how many)


def probe_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    activation: str,
    layers: Sequence[Layer] | None = None,
    loss_fn: LossFn = nn.functional.cross_entropy,
) -> ProbeSnapshot:
    """Forward and backward on (x, y) through hooks on `layers` (default: the model's own).

    `activation` picks the activation histogram's bins. The model is left exactly as it was: weights,
    gradients (restored, not zeroed), buffers (batch-norm statistics) and training mode; so is the random
    number generator (a dropout layer's draws in the probe do not shift the training's)."""
    layers = model_layers(model) if layers is None else list(layers)
    params = list(model.parameters())
    saved_grads = [p.grad for p in params]
    saved_buffers = [buffer.clone() for buffer in model.buffers()]
    modes = [module.training for module in model.modules()]  # per module: a frozen part may be in eval
    try:
        for p in params:
            p.grad = None
        with rng.kept([x.device] if x.device.type == "cuda" else []), attach(layers) as captures, torch.enable_grad():
            loss = loss_fn(model(x), y)
            loss.backward()
        with torch.no_grad():
            return _summarise(model, layers, captures, activation, loss)
    finally:
        with torch.no_grad():
            for buffer, saved in zip(model.buffers(), saved_buffers):
                buffer.copy_(saved)
        for p, grad in zip(params, saved_grads):
            p.grad = grad
        for module, mode in zip(model.modules(), modes):
            module.training = mode


def _summarise(model, layers, captures, activation, loss) -> ProbeSnapshot:
    nan = torch.tensor(float("nan"), device=loss.device)
    # Per layer, a dict stat -> 0-d tensor, and per histogram one row of counts per layer; each is stacked
    # once at the end (one copy to the CPU), rather than written element by element.
    layer_stats = [dict.fromkeys(LAYER_QUANTITIES, nan) for _ in layers]
    hists: dict[str, list[torch.Tensor]] = {name: [] for name in HISTOGRAM_QUANTITIES}
    hist_layers: dict[str, list[int]] = {name: [] for name in HISTOGRAM_QUANTITIES}
    for quantity in QUANTITIES:
        bins = quantity.bins(activation)
        for number, (layer, capture, stats) in enumerate(zip(layers, captures, layer_stats), 1):
            values = quantity.values(layer, capture)
            if values is None:
                continue
            counts, found = quantity.summarise(values, layer, bins, stats)
            stats.update(found)
            if counts is not None:
                hists[quantity.name].append(counts)
                hist_layers[quantity.name].append(number)
    widths = {quantity.name: quantity.bins(activation).count for quantity in QUANTITIES if quantity.name}
    table = torch.stack([torch.stack([stats[name] for name in LAYER_QUANTITIES]) for stats in layer_stats], dim=1)
    # Counts add up, so the article's pooled histogram is the sum of per-parameter ones (no 4.8 M-element cat).
    grads = [p.grad.detach().reshape(-1) for p in model.parameters() if p.grad is not None]
    bins = SIGNED_GRAD_BINS
    signed = sum(torch.histc(exact(g), bins.count, bins.low, bins.high) for g in grads)
    # histc keeps -1 and 1 and drops what lies outside and NaN: those are the rest
    outside = sum(g.numel() for g in grads) - signed.sum()
    table_cpu = table.cpu().numpy()
    return ProbeSnapshot(
        loss=float(loss.detach().cpu()),
        stats={name: table_cpu[index] for index, name in enumerate(LAYER_QUANTITIES)},
        histograms={name: _rows(rows, widths[name]) for name, rows in hists.items()},
        histogram_layers={name: np.asarray(numbers, dtype=np.int64) for name, numbers in hist_layers.items()},
        signed_histogram=signed.cpu().numpy(),
        signed_outside=int(outside),
    )


def _rows(rows: list[torch.Tensor], width: int) -> np.ndarray:
    return torch.stack(rows).cpu().numpy() if rows else np.zeros((0, width))
