"""Activations: each layer's spread at one step (all runs), and over training per run (mean ± std, and the
last hidden layer's input percentiles)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..i18n import ENGLISH, N_, Translator, message
from ..probes import PERCENTILES
from ..results import RunResult
from ..spec import RECURRENT
from .common import (
    LAYER_SCHEME,
    Runs,
    _finite,
    _fit_x,
    _names_expr,
    _note,
    _step_rule,
    _training_steps,
    empty_reason,
    layer_count,
    layer_label,
    shared_range,
    trace_layers,
)
from .flow import _layer_lines, gradient_flow_frame, he_guide


def activation_std(runs: Runs, step: int | None, tr: Translator = ENGLISH) -> alt.LayerChart:
    """Each hidden layer's activation std at `step`, log y, one line per run (He et al. 2015, figure 2's view),
    with He's per-layer prediction dotted for plain ReLU runs."""
    frame = gradient_flow_frame(runs, step, "act_std")
    x_title, y_title = tr.gettext(N_("hidden layer (input → output)")), tr.gettext(N_("activation std"))
    return _layer_lines(
        frame, he_guide(runs, step), runs, x_title, y_title, (tr.gettext(N_("std")), ".3g"), 40, "act_std", step, tr
    )


def activation_trace_frame(result: RunResult) -> pd.DataFrame:
    """Per snapshot step and traced hidden layer: mean, std, mean ± std (finite rows only)."""
    stats = result.layer_stats
    layers = trace_layers(layer_count(result, "activation"))
    part = stats[stats["quantity"].isin(["act_mean", "act_std"]) & stats["layer"].isin(layers)]
    columns = ["step", "layer", "layer_name", "epoch", "mean", "std", "low", "high"]
    if part.empty:
        return pd.DataFrame(columns=columns)
    wide = part.pivot_table(index=["step", "layer"], columns="quantity", values="value").reset_index()
    wide = wide.rename(columns={"act_mean": "mean", "act_std": "std"})
    if not {"mean", "std"} <= set(wide.columns):  # every value NaN: nothing to trace
        return pd.DataFrame(columns=columns)
    wide = wide.dropna(subset=["mean", "std"])
    wide = wide[np.isfinite(wide["mean"]) & np.isfinite(wide["std"])]
    per_epoch = result.meta.get("steps_per_epoch") or 0
    wide["epoch"] = wide["step"] / per_epoch if per_epoch else np.nan
    wide["layer_name"] = [layer_label(result.layer_names, int(layer)) for layer in wide["layer"]]
    wide["low"], wide["high"] = wide["mean"] - wide["std"], wide["mean"] + wide["std"]
    return wide[columns].reset_index(drop=True)


def activation_trace_domain(runs: Runs) -> tuple[float, float]:
    """One y range (mean ± std over every traced layer and step) for every run's panel."""
    frames = [activation_trace_frame(result) for _, result in runs]
    return shared_range([frame[column] for frame in frames for column in ("low", "high")], (-1.0, 1.0))


def activation_trace(
    result: RunResult,
    y_domain: tuple[float, float],
    step: int | None = None,
    title: str | None = None,
    tr: Translator = ENGLISH,
) -> alt.LayerChart:
    """One run's hidden-layer activations over training: mean (line) and ± std (band), one colour per layer
    (Glorot & Bengio 2010, figure 2's view); x is the training step on a symlog axis, so the early snapshots show."""
    frame = activation_trace_frame(result)
    layers = trace_layers(layer_count(result, "activation"))
    color = alt.Color(
        "layer:O",
        scale=alt.Scale(domain=layers, scheme=LAYER_SCHEME),
        legend=alt.Legend(
            orient="bottom", title=None, labelExpr=_names_expr(result.layer_names), columns=3, symbolOpacity=1
        ),
    )
    x = _training_steps(result, frame, tr)
    y_scale = alt.Scale(domain=list(y_domain), nice=False)
    y_title = tr.gettext(N_("activation mean ± std"))
    y = alt.Y("mean:Q", title=y_title, scale=y_scale)
    base = alt.Chart(frame)
    band = base.mark_area(opacity=0.15).encode(
        x=x, y=alt.Y("low:Q", scale=y_scale, title=y_title), y2=alt.Y2("high:Q"), color=color
    )
    lines = base.mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=x,
        y=y,
        color=color,
        tooltip=[
            alt.Tooltip("layer_name:N"),
            alt.Tooltip("step:Q"),
            alt.Tooltip("epoch:Q", format=".2f"),
            alt.Tooltip("mean:Q", format=".3g"),
            alt.Tooltip("std:Q", format=".3g"),
        ],
    )
    layers_drawn: list[alt.Chart] = [band, lines]
    if step is not None and step > 0:
        layers_drawn.append(_step_rule(step))
    if frame.empty:
        layers_drawn.append(_note([empty_reason(result, "activation", step, tr)]))
    return _fit_x(alt.layer(*layers_drawn, title=title or "").properties(height=220))


# ---------------------------------------------------------------- the last hidden layer's input over training

PERCENTILE_DASHES = {15: [4, 3], 50: [1, 0], 85: [4, 3]}  # the median solid, the outer percentiles dashed
PERCENTILE_COLORS = {15: "#6baed6", 50: "#08306b", 85: "#2171b5"}  # one blue ramp, the median darkest


def percentile_frame(result: RunResult) -> pd.DataFrame:
    """Per snapshot step: the 15th, 50th and 85th percentiles of the last hidden layer's pre-activation on the
    probe batch (the last layer that has them), one row per percentile; finite rows only."""
    stats = result.layer_stats
    names = {f"pre_act_p{q}": q for q in PERCENTILES}
    part = stats[stats["quantity"].isin(list(names))]
    part = _finite(part[part["layer"] == part["layer"].max()], "value") if len(part) else part
    per_epoch = result.meta.get("steps_per_epoch") or 0
    return pd.DataFrame(
        {
            "step": part["step"].to_numpy(),
            "epoch": part["step"].to_numpy() / per_epoch if per_epoch else np.nan,
            "layer_name": [layer_label(result.layer_names, int(layer)) for layer in part["layer"]],
            "percentile": part["quantity"].map(names).to_numpy(dtype=int),
            "value": part["value"].to_numpy(dtype=float),
        }
    )


def percentile_domain(runs: Runs) -> tuple[float, float]:
    """One y range (every run's percentiles at every step) for every run's panel."""
    return shared_range([percentile_frame(result)["value"] for _, result in runs], (-1.0, 1.0))


def percentile_trace(
    result: RunResult,
    y_domain: tuple[float, float],
    step: int | None = None,
    title: str | None = None,
    tr: Translator = ENGLISH,
) -> alt.LayerChart:
    """One run's last-hidden-layer pre-activation over training as its 15th, 50th and 85th percentiles
    (Ioffe & Szegedy 2015, figure 1 b and c); x is the training step on a symlog axis."""
    frame = percentile_frame(result)
    layer = frame["layer_name"].iloc[0] if len(frame) else tr.gettext(N_("last hidden layer"))
    labels = {q: tr.render(message("{q:d}th percentile", q=q)) for q in PERCENTILES}
    lines = (
        alt.Chart(frame.assign(label=frame["percentile"].map(labels)))
        .mark_line(point=alt.OverlayMarkDef(size=20))
        .encode(
            x=_training_steps(result, frame, tr),
            y=alt.Y(
                "value:Q",
                title=tr.render(message("{layer}: activation's input", layer=layer)),
                scale=alt.Scale(domain=list(y_domain), nice=False),
            ),
            color=alt.Color(
                "label:N",
                scale=alt.Scale(domain=list(labels.values()), range=[PERCENTILE_COLORS[q] for q in PERCENTILES]),
                legend=alt.Legend(orient="bottom", direction="vertical", title=None, symbolOpacity=1),  # a row was cut
            ),
            strokeDash=alt.StrokeDash(
                "label:N",
                scale=alt.Scale(domain=list(labels.values()), range=[PERCENTILE_DASHES[q] for q in PERCENTILES]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("layer_name:N"),
                alt.Tooltip("label:N"),
                alt.Tooltip("step:Q"),
                alt.Tooltip("epoch:Q", format=".2f"),
                alt.Tooltip("value:Q", format=".3g"),
            ],
        )
    )
    layers_drawn: list[alt.Chart] = [lines]
    if step is not None and step > 0:
        layers_drawn.append(_step_rule(step))
    if frame.empty:
        fused = result.spec is not None and result.spec.model in RECURRENT
        reason = (
            tr.gettext(N_("A fused recurrent layer's activation has no separate input to take percentiles of."))
            if fused
            else empty_reason(result, "pre_activation", step, tr)
        )
        layers_drawn.append(_note([reason]))
    return _fit_x(alt.layer(*layers_drawn, title=title or "").properties(height=220))
