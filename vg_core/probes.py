"""The measurements: one forward+backward pass on a fixed probe batch, summarised per layer, on the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .model import MLP, Recording


@dataclass(frozen=True)
class Bins:
    """Fixed histogram bins: `count` equal bins on [low, high]; values outside are clamped to the ends."""

    low: float
    high: float
    count: int

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.low, self.high, self.count + 1)


# Fixed per activation (same bins at every step and in every run with that activation).
ACTIVATION_BINS = {
    "sigmoid": Bins(0.0, 1.0, 50),
    "tanh": Bins(-1.0, 1.0, 50),
    "relu": Bins(-1.0, 4.0, 50),
    "leaky_relu": Bins(-1.0, 4.0, 50),
    "elu": Bins(-1.0, 4.0, 50),
    "gelu": Bins(-1.0, 4.0, 50),
    "swish": Bins(-1.0, 4.0, 50),
    "linear": Bins(-5.0, 5.0, 50),
}
PRE_ACTIVATION_BINS = Bins(-10.0, 10.0, 80)
# log10|g|: wide enough for 1e-30 .. 1e+3 at a quarter decade per bin; smaller non-zero values
# (float32 denormals reach 1e-45) fall in the first bin. Zeros, NaN and inf are counted apart.
LOG_GRAD_BINS = Bins(-30.0, 3.0, 132)
SIGNED_GRAD_BINS = Bins(-1.0, 1.0, 100)  # the article's plt.hist(range=(-1, 1), bins=100)

SATURATING = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}  # bounds of the saturating activations
RELU_LIKE = ("relu", "leaky_relu", "elu", "gelu", "swish")  # a unit is dead when its input is <= 0 always
SATURATION_MARGIN = 0.01  # "within 1% of the bounds", as a fraction of the output range

# Per-layer scalar quantities a probe records (NaN where a quantity does not apply to a layer).
LAYER_QUANTITIES = (
    "weight_grad_norm",
    "weight_grad_mean_abs",
    "weight_grad_std",
    "weight_grad_zeros",
    "weight_grad_nan",
    "weight_grad_inf",
    "grad_out_norm",
    "grad_out_mean_abs",
    "grad_out_std",
    "grad_out_zeros",
    "grad_out_nan",
    "grad_out_inf",
    "weight_std",
    "grad_weight_ratio",
    "act_mean",
    "act_std",
    "pre_act_mean",
    "pre_act_std",
    "saturated_frac",
    "dead_frac",
    "saturated_or_dead",
)
HISTOGRAM_QUANTITIES = ("activation", "pre_activation", "weight_grad", "grad_out")
POOLED_LAYER = 0  # the "layer" of the article's pooled histogram of all parameter gradients


@dataclass(frozen=True)
class ProbeSnapshot:
    """One probe pass, on the CPU: loss, per-layer scalars and fixed-bin histogram counts."""

    loss: float
    stats: dict[str, np.ndarray]  # quantity -> one value per linear layer
    histograms: dict[str, np.ndarray]  # quantity -> (layers, bins) counts
    signed_histogram: np.ndarray  # article's view: all parameter gradients pooled, (bins,)
    signed_outside: int  # pooled gradients outside -1..1 (plt.hist drops them; we say how many)


def histogram(values: torch.Tensor, bins: Bins) -> torch.Tensor:
    """Counts on fixed bins, values outside clamped into the end bins; NaN is not counted."""
    return torch.histc(values.detach().float().clamp(bins.low, bins.high), bins.count, bins.low, bins.high)


def log_abs_histogram(values: torch.Tensor, bins: Bins = LOG_GRAD_BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts of log10|v| for finite non-zero v, and (zeros, NaN, inf) counts; no sync with the device."""
    flat = values.detach().float().reshape(-1)
    finite_nonzero = torch.isfinite(flat) & (flat != 0)
    logs = torch.log10(flat.abs()).clamp(bins.low, bins.high)
    # Values to leave out go to a point outside [low, high], which histc ignores.
    logs = torch.where(finite_nonzero, logs, torch.full_like(logs, bins.low - 10.0))
    counts = torch.histc(logs, bins.count, bins.low, bins.high)
    specials = torch.stack([(flat == 0).sum(), torch.isnan(flat).sum(), torch.isinf(flat).sum()])
    return counts, specials.float()


def _summary(values: torch.Tensor) -> torch.Tensor:
    """L2 norm, mean |v| and std of a tensor, as one 3-vector."""
    flat = values.detach().float().reshape(-1)
    return torch.stack([torch.linalg.vector_norm(flat), flat.abs().mean(), flat.std()])


def saturation(activation: str, post: torch.Tensor, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fraction of outputs within 1% of a saturating bound, fraction of units whose input is <= 0 always)."""
    nan = torch.tensor(float("nan"), device=post.device)
    if activation in SATURATING:
        low, high = SATURATING[activation]
        margin = SATURATION_MARGIN * (high - low)
        saturated = ((post <= low + margin) | (post >= high - margin)).float().mean()
    else:
        saturated = nan
    dead = (pre <= 0).all(dim=0).float().mean() if activation in RELU_LIKE else nan
    return saturated, dead


@torch.enable_grad()
def probe_batch(model: MLP, x: torch.Tensor, y: torch.Tensor, activation: str) -> ProbeSnapshot:
    """Forward and backward on (x, y) without updating weights, optimiser or batch-norm statistics."""
    saved_buffers = [buffer.clone() for buffer in model.buffers()]
    model.zero_grad(set_to_none=True)
    record = Recording()
    loss = nn.functional.cross_entropy(model(x, record=record), y)
    loss.backward()
    with torch.no_grad():
        for buffer, saved in zip(model.buffers(), saved_buffers):
            buffer.copy_(saved)
        result = _summarise(model, record, activation, loss)
    model.zero_grad(set_to_none=True)
    return result


def _summarise(model: MLP, record: Recording, activation: str, loss: torch.Tensor) -> ProbeSnapshot:
    n_layers = len(model.linears)
    device = loss.device
    stats = torch.full((len(LAYER_QUANTITIES), n_layers), float("nan"), device=device)
    row = {name: index for index, name in enumerate(LAYER_QUANTITIES)}
    act_bins = ACTIVATION_BINS[activation]
    hists = {
        "activation": torch.zeros(n_layers, act_bins.count, device=device),
        "pre_activation": torch.zeros(n_layers, PRE_ACTIVATION_BINS.count, device=device),
        "weight_grad": torch.zeros(n_layers, LOG_GRAD_BINS.count, device=device),
        "grad_out": torch.zeros(n_layers, LOG_GRAD_BINS.count, device=device),
    }
    for layer, (linear, z) in enumerate(zip(model.linears, record.linear_outputs)):
        for prefix, grad in (("weight_grad", linear.weight.grad), ("grad_out", z.grad)):
            counts, specials = log_abs_histogram(grad)
            hists[prefix][layer] = counts
            summary = _summary(grad)
            for offset, suffix in enumerate(("norm", "mean_abs", "std")):
                stats[row[f"{prefix}_{suffix}"], layer] = summary[offset]
            for offset, suffix in enumerate(("zeros", "nan", "inf")):
                stats[row[f"{prefix}_{suffix}"], layer] = specials[offset]
        weight_std = linear.weight.detach().std()
        stats[row["weight_std"], layer] = weight_std
        stats[row["grad_weight_ratio"], layer] = stats[row["weight_grad_std"], layer] / weight_std
    for layer, (pre, post) in enumerate(zip(record.pre_activations, record.activations)):
        pre, post = pre.detach(), post.detach()
        hists["activation"][layer] = histogram(post, act_bins)
        hists["pre_activation"][layer] = histogram(pre, PRE_ACTIVATION_BINS)
        stats[row["act_mean"], layer], stats[row["act_std"], layer] = post.mean(), post.std()
        stats[row["pre_act_mean"], layer], stats[row["pre_act_std"], layer] = pre.mean(), pre.std()
        saturated, dead = saturation(activation, post, pre)
        stats[row["saturated_frac"], layer], stats[row["dead_frac"], layer] = saturated, dead
        stats[row["saturated_or_dead"], layer] = dead if activation in RELU_LIKE else saturated
    pooled = torch.cat([p.grad.detach().reshape(-1) for p in model.parameters() if p.grad is not None])
    signed = torch.histc(pooled, SIGNED_GRAD_BINS.count, SIGNED_GRAD_BINS.low, SIGNED_GRAD_BINS.high)
    outside = (pooled.abs() > 1).sum()
    stats_cpu = stats.cpu().numpy()
    # Hidden layers have no activation histogram at the output layer: drop that all-zero row.
    hidden = {"activation", "pre_activation"}
    return ProbeSnapshot(
        loss=float(loss.detach().cpu()),
        stats={name: stats_cpu[index] for name, index in row.items()},
        histograms={k: (v[: n_layers - 1] if k in hidden else v).cpu().numpy() for k, v in hists.items()},
        signed_histogram=signed.cpu().numpy(),
        signed_outside=int(outside.cpu()),
    )
