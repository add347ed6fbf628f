"""Altair charts of RunResults for the page (no streamlit here): every builder takes the engine's tidy
frames, filters and pre-aggregates them in pandas, and hands Altair a few hundred rows at most.

Runs are passed as `(name, result)` pairs; a run keeps its colour (by position) in every chart, and
charts that sit side by side take a shared domain (`*_domain` helpers) so their columns compare honestly.
One module per view: `flow`, `curves`, `ridgelines`, `heatmap`, `article`, `activations`, `ratios`, `sweep`
and `through_time` (recurrent runs), on what `common` holds for all of them; `export` puts views in one SVG.
"""

from .activations import (
    PERCENTILE_DASHES,
    activation_std,
    activation_trace,
    activation_trace_domain,
    activation_trace_frame,
    percentile_domain,
    percentile_frame,
    percentile_trace,
)
from .article import article_frame, article_histogram, article_max, signed_outside
from .common import (
    CAPTIONS,
    MAX_LAYER_LABELS,
    RIDGE_OVERLAP,
    RUN_COLORS,
    TRACE_LAYERS,
    layer_names,
    layer_ticks,
    run_color,
    run_names,
    snapshot_at,
    step_label,
    trace_layers,
    with_step_rule,
)
from .curves import learning_curve
from .export import export_title, side_by_side, to_svg
from .flow import FLOW_TITLES, SIGMOID_SLOPE, gradient_flow, gradient_flow_frame, he_guide, sigmoid_guide
from .heatmap import gradient_heatmap, heatmap_domain, heatmap_frame
from .ratios import RATIO_GUIDE, RATIO_KINDS, ratio_chart, ratio_domain, ratio_frame
from .ridgelines import activation_domains, activation_of, histogram_at, ridge_domain, ridge_frame, ridgeline
from .sweep import sweep_chart

__all__ = [
    "CAPTIONS",
    "FLOW_TITLES",
    "MAX_LAYER_LABELS",
    "PERCENTILE_DASHES",
    "RATIO_GUIDE",
    "RATIO_KINDS",
    "RIDGE_OVERLAP",
    "RUN_COLORS",
    "SIGMOID_SLOPE",
    "TRACE_LAYERS",
    "activation_domains",
    "activation_of",
    "activation_std",
    "activation_trace",
    "activation_trace_domain",
    "activation_trace_frame",
    "article_frame",
    "article_histogram",
    "article_max",
    "export_title",
    "gradient_flow",
    "gradient_flow_frame",
    "gradient_heatmap",
    "he_guide",
    "heatmap_domain",
    "heatmap_frame",
    "histogram_at",
    "layer_names",
    "layer_ticks",
    "learning_curve",
    "percentile_domain",
    "percentile_frame",
    "percentile_trace",
    "ratio_chart",
    "ratio_domain",
    "ratio_frame",
    "ridge_domain",
    "ridge_frame",
    "ridgeline",
    "run_color",
    "run_names",
    "side_by_side",
    "sigmoid_guide",
    "signed_outside",
    "snapshot_at",
    "step_label",
    "sweep_chart",
    "to_svg",
    "trace_layers",
    "with_step_rule",
]
