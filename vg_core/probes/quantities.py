"""The per-layer quantities a probe records: one small class each (its bins, what it applies to, its summary).

To add a quantity, write one class and append an instance to QUANTITIES: the snapshot, the result frames and
the page's stat lookups pick it up from there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .bins import ACTIVATION_BINS, LOG_GRAD_BINS, PRE_ACTIVATION_BINS, Bins, exact, gradient_summary, histogram
from .hooks import Capture
from .layers import Layer

Stats = dict[str, torch.Tensor]

# A unit is stuck where |f'(input)| is below this fraction of the activation's largest slope: a sigmoid
# output of 0.06 has slope 0.056, 23 % of sigmoid's 0.25, and counts; tanh counts beyond |x| = 1.32.
SLOPE_FRACTION = 0.25
# What a stuck unit is called, per activation; the rest have a "near-zero slope", and "linear" never counts.
STUCK_WORDS = {"sigmoid": "saturated", "tanh": "saturated", "relu": "dead"}
PER_ELEMENT = (nn.Sigmoid, nn.Tanh)  # saturation is per element; for the rest a unit stuck on every sample
SLOPE_GRID = (-20.0, 20.0, 40_001)  # where an activation's largest slope is looked for (float64)
GRADIENT_SUFFIXES = ("norm", "mean_abs", "std", "zeros", "nan", "inf")
# The pre-activation percentiles Ioffe & Szegedy (2015, figure 1) follow over training.
PERCENTILES = (15, 50, 85)


def stuck_word(activation: str) -> str | None:
    """'saturated', 'dead' or 'near-zero slope' for the page; None for linear, where nothing counts."""
    return None if activation == "linear" else STUCK_WORDS.get(activation, "near-zero slope")


def _joined(tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """One tensor of every call's values (stacked along the batch), or None if the module never ran."""
    if not tensors:
        return None
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat([t.reshape(-1) for t in tensors])


class Quantity:
    """One measured quantity. `name` is its histogram's quantity in the results ('' for scalars only)."""

    name = ""
    stats: tuple[str, ...] = ()

    def bins(self, activation: str) -> Bins | None:
        """The fixed bins of its histogram in a run with this activation, or None."""
        return None

    def values(self, layer: Layer, capture: Capture) -> torch.Tensor | None:
        """What it measures on this layer, or None where it does not apply."""
        raise NotImplementedError

    def summarise(self, values: torch.Tensor, layer: Layer, bins: Bins | None, done: Stats) -> tuple:
        """(histogram counts or None, {stat: 0-d tensor}); `done` holds the stats measured before it."""
        raise NotImplementedError


class _Gradient(Quantity):
    bins = staticmethod(lambda activation: LOG_GRAD_BINS)

    def summarise(self, values, layer, bins, done):
        counts, summary = gradient_summary(values, bins)
        return counts, {f"{self.name}_{suffix}": summary[i] for i, suffix in enumerate(GRADIENT_SUFFIXES)}


class WeightGrad(_Gradient):
    """dL/dW of the layer's weight matrices (biases excluded), log10|g| histogram and summary."""

    name = "weight_grad"
    stats = tuple(f"weight_grad_{s}" for s in GRADIENT_SUFFIXES)

    def values(self, layer, capture):
        grads = [w.grad for w in layer.weights]
        return None if any(g is None for g in grads) else _flat(grads)


class OutputGrad(_Gradient):
    """dL/dz of the weight module's output z (all elements: units, channels and positions, time steps)."""

    name = "grad_out"
    stats = tuple(f"grad_out_{s}" for s in GRADIENT_SUFFIXES)

    def values(self, layer, capture):
        return _flat(capture.output_grads) if capture.output_grads else None


class WeightScale(Quantity):
    """The std of the layer's weights."""

    stats = ("weight_std",)

    def values(self, layer, capture):
        return _flat([w.detach() for w in layer.weights])

    def summarise(self, values, layer, bins, done):
        return None, {"weight_std": values.std()}


class GradWeightRatio(Quantity):
    """std(dL/dW) / std(W): how large a step the gradient is against the weights."""

    stats = ("grad_weight_ratio",)

    def values(self, layer, capture):
        return capture.outputs[0] if capture.outputs else None  # applies wherever the layer ran

    def summarise(self, values, layer, bins, done):
        return None, {"grad_weight_ratio": done["weight_grad_std"] / done["weight_std"]}


class _Distribution(Quantity):
    """A histogram of the values with their mean, std and NaN count (NaN falls in no bin: counted apart, so that
    every histogram adds up to its element count)."""

    prefix = ""

    def summarise(self, values, layer, bins, done):
        stats = {
            f"{self.prefix}_mean": values.mean(),
            f"{self.prefix}_std": values.std(),
            f"{self.prefix}_nan": torch.count_nonzero(torch.isnan(values)).float(),
        }
        return histogram(values, bins), stats


class Activation(_Distribution):
    """The activation's output (a fused recurrent module's own output)."""

    name, prefix = "activation", "act"
    stats = ("act_mean", "act_std", "act_nan")

    def bins(self, activation):
        return ACTIVATION_BINS[activation]

    def values(self, layer, capture):
        if layer.output_is_activation:
            return _joined(capture.outputs)
        return _joined(capture.activations)


class PreActivation(_Distribution):
    """The activation module's input (after any norm); none for a fused recurrent module."""

    name, prefix = "pre_activation", "pre_act"
    stats = ("pre_act_mean", "pre_act_std", "pre_act_nan")
    bins = staticmethod(lambda activation: PRE_ACTIVATION_BINS)

    def values(self, layer, capture):
        return _joined(capture.pre_activations)


class PreActivationPercentiles(Quantity):
    """Exact 15th, 50th and 85th percentiles of the pre-activation over every element on the probe batch
    (units x samples x positions pooled), interpolated linearly as numpy.percentile does; NaN if any is NaN."""

    stats = tuple(f"pre_act_p{q}" for q in PERCENTILES)

    def values(self, layer, capture):
        return _joined(capture.pre_activations)

    def summarise(self, values, layer, bins, done):
        found = percentiles(values, PERCENTILES).to(values.dtype)
        return None, dict(zip(self.stats, found))


def percentiles(values: torch.Tensor, qs: tuple[float, ...]) -> torch.Tensor:
    """numpy.percentile's default (linear) on the flattened values, in float64; NaN if any value is NaN.

    Only the order statistics the percentiles need are found, by selection, not a sort of millions of elements:
    nested numpy partitions on the CPU (select_on_cpu), kthvalue elsewhere (no sync with the device; torch.quantile
    refuses tensors above 2^24 elements). Selection in the values' own precision picks exactly the elements a
    float64 sort would (widening is monotonic); only the interpolation is in float64."""
    flat = values.detach().reshape(-1)
    last = flat.numel() - 1
    positions = [q / 100 * last for q in qs]
    ranks = sorted({rank for position in positions for rank in (int(position), min(int(position) + 1, last))})
    select = select_on_cpu if flat.device.type == "cpu" else select_on_device
    at = dict(zip(ranks, exact(select(flat, ranks))))
    result = torch.stack([at[int(p)] + (at[min(int(p) + 1, last)] - at[int(p)]) * (p - int(p)) for p in positions])
    return torch.where(torch.isnan(flat).any(), torch.full_like(result, float("nan")), result)


def select_on_cpu(flat: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    """The elements of these 0-based ranks (sorted, distinct) in sorted order, by numpy partitions in place on
    one copy: the middle rank first, then each side for the ranks on it, so that every partition works on a
    smaller part (numpy's own multi-rank partition is several times slower); a rank at either end of its part
    is that part's min or max."""
    wide = flat if flat.dtype in (torch.float32, torch.float64) else flat.float()  # a dtype numpy has
    values = wide.numpy().copy()
    _select(values, 0, len(values), ranks)
    return torch.from_numpy(values[ranks])


def _select(values: np.ndarray, low: int, high: int, ranks: list[int]) -> None:
    """Put the elements of `ranks` (all within low..high-1) in their sorted places within values[low:high]."""
    if not ranks:
        return
    middle = len(ranks) // 2
    rank, part = ranks[middle], values[low:high]
    if rank in (low, high - 1):
        end = 0 if rank == low else len(part) - 1
        found = int(part.argmin() if rank == low else part.argmax())
        part[[end, found]] = part[[found, end]]
    else:
        part.partition(rank - low)
    _select(values, low, rank, ranks[:middle])
    _select(values, rank + 1, high, ranks[middle + 1 :])


def select_on_device(flat: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    """The same on any device, one kthvalue per rank."""
    return torch.stack([flat.kthvalue(rank + 1).values for rank in ranks])


class Stuck(Quantity):
    """Saturated or dead units, by slope: |f'(pre-activation)| < SLOPE_FRACTION x the activation's largest slope.

    saturated_frac: share of elements (units x samples x positions) with such a slope; dead_frac: share of
    units (unit_dim) with it on every probe sample and position; saturated_or_dead: the first for sigmoid and
    tanh, the second for the rest. An identity activation never counts (all NaN)."""

    stats = ("saturated_frac", "dead_frac", "saturated_or_dead")

    def values(self, layer, capture):
        if layer.activation is None or isinstance(layer.activation, nn.Identity):
            return None
        return _joined(capture.pre_activations)

    def summarise(self, values, layer, bins, done):
        stuck = slope(layer.activation, values).abs() < SLOPE_FRACTION * max_slope(layer.activation)
        saturated = torch.count_nonzero(stuck) / stuck.numel()
        units = stuck.movedim(layer.unit_dim, 0)
        dead = torch.count_nonzero(units.reshape(units.shape[0], -1).all(1)) / units.shape[0]
        either = saturated if isinstance(layer.activation, PER_ELEMENT) else dead
        return None, {"saturated_frac": saturated, "dead_frac": dead, "saturated_or_dead": either}


@torch.enable_grad()
def slope(activation: nn.Module, pre: torch.Tensor) -> torch.Tensor:
    """f'(pre) element by element, by autograd through the activation module itself."""
    x = pre.detach().requires_grad_(True)
    # the sum's gradient is f'(x) for an element-wise f; clone: an in-place activation must not write to x
    (grad,) = torch.autograd.grad(activation(x.clone()).sum(), x)
    return grad


_MAX_SLOPES: dict[tuple[type, str], float] = {}


def max_slope(activation: nn.Module) -> float:
    """The largest |f'(x)| of this activation on SLOPE_GRID (kept per kind and settings, e.g. LeakyReLU's)."""
    key = (type(activation), repr(activation))
    if key not in _MAX_SLOPES:
        grid = torch.linspace(*SLOPE_GRID)
        _MAX_SLOPES[key] = float(slope(activation, grid).abs().max())
    return _MAX_SLOPES[key]


QUANTITIES: tuple[Quantity, ...] = (
    WeightGrad(),
    OutputGrad(),
    WeightScale(),
    GradWeightRatio(),
    Activation(),
    PreActivation(),
    PreActivationPercentiles(),
    Stuck(),
)
# Per-layer scalar quantities a probe records (NaN where a quantity does not apply to a layer).
LAYER_QUANTITIES = tuple(stat for quantity in QUANTITIES for stat in quantity.stats)
HISTOGRAM_QUANTITIES = tuple(quantity.name for quantity in QUANTITIES if quantity.name)
