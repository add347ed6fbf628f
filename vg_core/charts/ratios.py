"""Update and gradient size relative to the weights, per layer over one run's training."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ..i18n import ENGLISH, N_, Translator
from ..results import RunResult
from .common import (
    LAYER_SCHEME,
    Runs,
    _finite,
    _fit_x,
    _log_axis,
    _names_expr,
    _no_steps,
    _note,
    _step_rule,
    _training_steps,
    empty_reason,
    layer_label,
    trace_layers,
)

RATIO_GUIDE = 1e-3  # update ÷ weight per step: Karpathy's rule of thumb for a healthy learning rate

RATIO_KINDS = {"update_ratio": "update ÷ weight", "grad_weight_ratio": "gradient ÷ weight"}


def ratio_frame(result: RunResult) -> pd.DataFrame:
    """Per snapshot step and traced layer: update ÷ weight and gradient ÷ weight (positive, finite rows only)."""
    stats = result.layer_stats
    layers = trace_layers(len(result.layer_names))
    part = stats[stats["quantity"].isin(list(RATIO_KINDS)) & stats["layer"].isin(layers)]
    part = _finite(part, "value")
    part = part[part["value"] > 0]
    return pd.DataFrame(
        {
            "step": part["step"].to_numpy(),
            "layer": part["layer"].to_numpy(),
            "layer_name": [layer_label(result.layer_names, int(layer)) for layer in part["layer"]],
            "kind": part["quantity"].map(RATIO_KINDS).to_numpy(),
            "value": part["value"].to_numpy(dtype=float),
        }
    )


def ratio_domain(runs: Runs) -> tuple[float, float]:
    """One log y range for every run's ratio panel, the 1e-3 guide always inside."""
    values = [ratio_frame(result)["value"] for _, result in runs]
    joined = pd.concat([v for v in values if len(v)] or [pd.Series([RATIO_GUIDE])])
    return min(float(joined.min()), RATIO_GUIDE) / 2, max(float(joined.max()), RATIO_GUIDE) * 2


def ratio_chart(
    result: RunResult,
    y_domain: tuple[float, float],
    step: int | None = None,
    title: str | None = None,
    tr: Translator = ENGLISH,
) -> alt.LayerChart:
    """One run's update ÷ weight (solid) and gradient ÷ weight (dashed) per traced layer over training, log y,
    with the 1e-3 rule of thumb as a grey line."""
    frame = ratio_frame(result)
    layers = trace_layers(len(result.layer_names))
    x = _training_steps(result, frame, tr)
    y = alt.Y(
        "value:Q",
        title=tr.gettext(N_("ratio (log)")),
        scale=alt.Scale(type="log", domain=list(y_domain)),
        axis=_log_axis(y_domain),
    )
    lines = (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=16), clip=True)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "layer:O",
                scale=alt.Scale(domain=layers, scheme=LAYER_SCHEME),
                legend=alt.Legend(
                    orient="bottom", title=None, labelExpr=_names_expr(result.layer_names), columns=4, symbolOpacity=1
                ),
            ),
            strokeDash=alt.StrokeDash(
                "kind:N",
                scale=alt.Scale(domain=list(RATIO_KINDS.values()), range=[[1, 0], [4, 3]]),
                legend=None,  # solid and dashed are named in the caption: a second legend would crowd the first
            ),
            detail=alt.Detail("kind:N"),
            tooltip=[
                alt.Tooltip("layer_name:N"),
                alt.Tooltip("kind:N"),
                alt.Tooltip("step:Q"),
                alt.Tooltip("value:Q", format=".3g"),
            ],
        )
    )
    guide = alt.Chart(pd.DataFrame({"value": [RATIO_GUIDE]})).mark_rule(color="#999", strokeDash=[6, 3]).encode(y=y)
    parts: list[alt.Chart] = [guide, lines]
    if step is not None and step > 0:
        parts.append(_step_rule(step))
    if frame.empty:
        reason = (
            _no_steps(tr, N_("Not trained (0 epochs): no update yet."), result)
            if result.layer_steps.empty
            else empty_reason(result, "weight_grad", step, tr)
        )
        parts.append(_note([reason]))
    return _fit_x(alt.layer(*parts, title=title or "").properties(height=220))
