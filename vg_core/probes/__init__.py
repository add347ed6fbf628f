"""The measurements: one forward+backward pass on a fixed probe batch, summarised per layer, on the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..model import MLP, Recording


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
    "act_nan",
    "pre_act_nan",
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
    signed_outside: int  # pooled gradients outside -1..1 or NaN (plt.hist drops them; we say how many)


def histogram(values: torch.Tensor, bins: Bins) -> torch.Tensor:
    """Counts on fixed bins, values outside clamped into the end bins; NaN is not counted."""
    return torch.histc(_exact(values).clamp(bins.low, bins.high), bins.count, bins.low, bins.high)


def _exact(values: torch.Tensor) -> torch.Tensor:
    """Values in float64 where the device has it: histc computes (v - low) * count / (high - low) in the input's
    precision, and in float32 -1e-9 + 1 == 1, so every tiny negative value (a vanishing gradient) would be
    counted right of zero. MPS has no float64."""
    values = values.detach().reshape(-1)
    return values.float() if values.device.type == "mps" else values.double()


def log_abs_histogram(values: torch.Tensor, bins: Bins = LOG_GRAD_BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts of log10|v| for finite non-zero v, and (zeros, NaN, inf) counts; no sync with the device."""
    counts, summary = _gradient_summary(values, bins)
    return counts, summary[3:]


def _gradient_summary(values: torch.Tensor, bins: Bins = LOG_GRAD_BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """log10|v| counts as in log_abs_histogram, and (L2 norm, mean |v|, std, zeros, NaN, inf) as one 6-vector.

    The probe's costliest part (the article's net has 4.8 M weight gradients), so each tensor is read as few
    times as possible: |v| is computed once and turned into log10|v| in place, and rather than masking
    zeros and infinities out first, the clamp lets them into the end bins and they are taken out again.
    """
    flat = values.detach().float().reshape(-1)
    magnitude = flat.abs()
    norm, mean_abs, std = torch.linalg.vector_norm(flat), magnitude.mean(), flat.std()
    # count_nonzero, not (mask).sum(): a sum of booleans first copies them into int64
    zeros = flat.numel() - torch.count_nonzero(flat)
    nan, inf = torch.count_nonzero(torch.isnan(flat)), torch.count_nonzero(magnitude == torch.inf)
    # log10|0| = -inf is clamped into the first bin, log10|inf| = inf into the last; NaN stays NaN: histc skips it
    logs = magnitude.log10_().clamp_(bins.low, bins.high)
    counts = torch.histc(logs, bins.count, bins.low, bins.high)
    counts[0] -= zeros
    counts[-1] -= inf
    return counts, torch.stack([norm, mean_abs, std, zeros.float(), nan.float(), inf.float()])


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
    nan = torch.tensor(float("nan"), device=loss.device)
    act_bins = ACTIVATION_BINS[activation]
    # Per layer, a dict quantity -> 0-d tensor, and per histogram, one row of counts per layer; each is
    # stacked once at the end, rather than written element by element into a preallocated tensor.
    layer_stats = [dict.fromkeys(LAYER_QUANTITIES, nan) for _ in range(n_layers)]
    hists: dict[str, list[torch.Tensor]] = {name: [] for name in HISTOGRAM_QUANTITIES}
    for layer, (linear, z) in enumerate(zip(model.linears, record.linear_outputs)):
        stats = layer_stats[layer]
        for prefix, grad in (("weight_grad", linear.weight.grad), ("grad_out", z.grad)):
            counts, summary = _gradient_summary(grad)
            hists[prefix].append(counts)
            for offset, suffix in enumerate(("norm", "mean_abs", "std", "zeros", "nan", "inf")):
                stats[f"{prefix}_{suffix}"] = summary[offset]
        stats["weight_std"] = linear.weight.detach().std()
        stats["grad_weight_ratio"] = stats["weight_grad_std"] / stats["weight_std"]
    # Hidden layers only: the output layer has no activation, so its activation rows stay NaN.
    for layer, (pre, post) in enumerate(zip(record.pre_activations, record.activations)):
        stats = layer_stats[layer]
        pre, post = pre.detach(), post.detach()
        hists["activation"].append(histogram(post, act_bins))
        hists["pre_activation"].append(histogram(pre, PRE_ACTIVATION_BINS))
        stats["act_mean"], stats["act_std"] = post.mean(), post.std()
        stats["pre_act_mean"], stats["pre_act_std"] = pre.mean(), pre.std()
        saturated, dead = saturation(activation, post, pre)
        stats["saturated_frac"], stats["dead_frac"] = saturated, dead
        stats["saturated_or_dead"] = dead if activation in RELU_LIKE else saturated
        # NaN falls in no bin: count it, so that every histogram adds up to its element count.
        stats["act_nan"] = torch.isnan(post).sum().float()
        stats["pre_act_nan"] = torch.isnan(pre).sum().float()
    table = torch.stack([torch.stack([stats[name] for name in LAYER_QUANTITIES]) for stats in layer_stats], dim=1)
    # Counts add up, so the article's pooled histogram is the sum of per-parameter ones (no 4.8 M-element cat).
    grads = [p.grad.detach().reshape(-1) for p in model.parameters() if p.grad is not None]
    bins = SIGNED_GRAD_BINS
    signed = sum(torch.histc(_exact(g), bins.count, bins.low, bins.high) for g in grads)
    outside = sum(torch.count_nonzero(~(g.abs() <= 1)) for g in grads)  # NaN included: it is in no bin
    table_cpu = table.cpu().numpy()
    return ProbeSnapshot(
        loss=float(loss.detach().cpu()),
        stats={name: table_cpu[index] for index, name in enumerate(LAYER_QUANTITIES)},
        histograms={name: torch.stack(rows).cpu().numpy() for name, rows in hists.items()},
        signed_histogram=signed.cpu().numpy(),
        signed_outside=int(outside),
    )
