"""Over training: one run's weight-gradient norm per layer and step, as a heatmap."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..i18n import ENGLISH, N_, Translator
from ..results import RunResult
from .common import (
    ROW_HEIGHT,
    Runs,
    _fit_x,
    _names_expr,
    _no_steps,
    _note,
    heatmap_color,
    heatmap_step_rule,
    heatmap_x,
    layer_label,
    shared_range,
)

HEATMAP_COLUMNS = 100  # steps are averaged into at most this many columns


def heatmap_frame(result: RunResult, columns: int = HEATMAP_COLUMNS) -> pd.DataFrame:
    """log10 of every step's weight-gradient norm per layer, averaged into at most `columns` step bins."""
    frame = result.layer_steps
    frame = frame[np.isfinite(frame["weight_grad_norm"]) & (frame["weight_grad_norm"] > 0)]
    if frame.empty:
        return pd.DataFrame(columns=["layer", "step_start", "step_end", "log_norm"])
    total = int(result.meta.get("total_steps") or frame["step"].max())
    width = max(1, int(np.ceil(total / columns)))
    bucket = (frame["step"] - 1) // width
    grouped = frame.assign(bucket=bucket, log_norm=np.log10(frame["weight_grad_norm"])).groupby(["layer", "bucket"])
    out = grouped["log_norm"].mean().reset_index()
    out["step_start"] = out["bucket"] * width
    out["step_end"] = (out["bucket"] + 1) * width
    return out[["layer", "step_start", "step_end", "log_norm"]]


def heatmap_domain(runs: Runs) -> tuple[float, float]:
    """One log colour range for every run's heatmap."""
    return shared_range([heatmap_frame(result)["log_norm"] for _, result in runs], (-6.0, 0.0))


def gradient_heatmap(
    result: RunResult,
    color_domain: tuple[float, float],
    step: int | None = None,
    title: str | None = None,
    tr: Translator = ENGLISH,
) -> alt.LayerChart:
    frame = heatmap_frame(result)
    n_layers = len(result.layer_names)
    names = result.layer_names[:n_layers] or [layer_label([], n_layers)]
    frame = frame.assign(layer_name=[layer_label(names, int(layer)) for layer in frame["layer"]])
    total = int(result.meta.get("total_steps") or (frame["step_end"].max() if len(frame) else 1))
    cells = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            **heatmap_x(total, tr),
            y=alt.Y(
                "layer:O",
                sort="ascending",
                title=None,
                scale=alt.Scale(domain=list(range(1, n_layers + 1))),
                axis=alt.Axis(labelExpr=_names_expr(names)),
            ),
            color=heatmap_color("log₁₀ ‖∂L/∂W‖", color_domain),
            tooltip=[
                alt.Tooltip("layer_name:N", title=tr.gettext(N_("layer"))),
                alt.Tooltip("step_start:Q", title=tr.gettext(N_("from step"))),
                alt.Tooltip("step_end:Q", title=tr.gettext(N_("to step"))),
                alt.Tooltip("log_norm:Q", format=".2f"),
            ],
        )
    )
    layers: list[alt.Chart] = [cells]
    if step is not None and step > 0:
        layers.append(heatmap_step_rule(step))
    if frame.empty:
        layers.append(_note([heatmap_empty_reason(result, tr)]))
    return _fit_x(alt.layer(*layers, title=title or "").properties(height=ROW_HEIGHT * n_layers))


def heatmap_empty_reason(result: RunResult, tr: Translator = ENGLISH) -> str:
    if result.layer_steps.empty:
        return _no_steps(tr, N_("Not trained (0 epochs): no training step to show."), result)
    return tr.gettext(N_("Nothing to draw: every step's gradient norm is 0, NaN or infinite."))
