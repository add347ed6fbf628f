"""The measurements: hooks on a model's layers during one forward+backward pass on a fixed probe batch.

bins (fixed histogram bins), layers (what a layer is, and finding them), hooks (attach and remove),
quantities (one class per measured quantity), snapshot (one probe pass).
"""

from .bins import (
    ACTIVATION_BINS,
    LOG_GRAD_BINS,
    PRE_ACTIVATION_BINS,
    SIGNED_GRAD_BINS,
    Bins,
    histogram,
    log_abs_histogram,
)
from .layers import Layer, find_layers, model_layers
from .quantities import (
    HISTOGRAM_QUANTITIES,
    LAYER_QUANTITIES,
    PERCENTILES,
    QUANTITIES,
    SLOPE_FRACTION,
    percentiles,
    stuck_word,
)
from .snapshot import POOLED_LAYER, ProbeSnapshot, probe_batch

__all__ = [
    "ACTIVATION_BINS",
    "HISTOGRAM_QUANTITIES",
    "LAYER_QUANTITIES",
    "LOG_GRAD_BINS",
    "PERCENTILES",
    "POOLED_LAYER",
    "PRE_ACTIVATION_BINS",
    "QUANTITIES",
    "SIGNED_GRAD_BINS",
    "SLOPE_FRACTION",
    "Bins",
    "Layer",
    "ProbeSnapshot",
    "find_layers",
    "histogram",
    "log_abs_histogram",
    "model_layers",
    "percentiles",
    "probe_batch",
    "stuck_word",
]
