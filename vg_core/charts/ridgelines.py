"""Ridgelines: one run's histogram per layer at one step, of its gradients or its activations."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..i18n import ENGLISH, N_, Translator, message
from ..probes import POOLED_LAYER
from ..results import RunResult
from ..summary import run_stuck_word
from .common import (
    RIDGE_OVERLAP,
    ROW_HEIGHT,
    Runs,
    _fit_x,
    _layer_axis,
    _note,
    empty_reason,
    layer_count,
    layer_label,
    snapshot_at,
)

LABEL_GUTTER = 0.25  # ridgelines leave this share of their x range free on the right for the layer labels


def histogram_at(result: RunResult, quantity: str, step: int | None) -> pd.DataFrame:
    """The fixed-bin counts of `quantity` at the snapshot for `step`, per layer (pooled layer excluded)."""
    frame = result.histograms
    at = snapshot_at(result, step)
    return frame[(frame["quantity"] == quantity) & (frame["step"] == at) & (frame["layer"] != POOLED_LAYER)]


def ridge_domain(runs: Runs, quantity: str, step: int | None, pad: float = 0.5) -> tuple[float, float]:
    """The x range every run's non-empty bins fall in at `step` (with `pad` either side), plus a gutter on the
    right for the per-layer labels: one range for all columns."""
    lows, highs = [], []
    for _, result in runs:
        frame = histogram_at(result, quantity, step)
        filled = frame[frame["count"] > 0]
        if len(filled):
            lows.append(float(filled["bin_start"].min()))
            highs.append(float(filled["bin_end"].max()))
    if not lows:
        return (-10.0, 1.0) if quantity in ("weight_grad", "grad_out") else (0.0, 1.0)
    low, high = min(lows) - pad, max(highs) + pad
    return low, high + LABEL_GUTTER * (high - low)


def activation_of(result: RunResult) -> str:
    """The activation a run's activation axis is shared by: its spec's, or 'own' for a watched model."""
    return result.spec.activation if result.spec is not None else "own"


def activation_domains(runs: Runs, step: int | None) -> dict[str, tuple[float, float]]:
    """One activation x range per activation function: runs with the same activation share it, and sigmoid's
    0…1 is not squeezed into ReLU's 0…5."""
    groups: dict[str, list[tuple[str, RunResult]]] = {}
    for name, result in runs:
        groups.setdefault(activation_of(result), []).append((name, result))
    return {activation: ridge_domain(group, "activation", step, pad=0.05) for activation, group in groups.items()}


def ridge_frame(result: RunResult, quantity: str, step: int | None) -> pd.DataFrame:
    """Bins with a ridge height per layer: count / the layer's largest count, so every row shows its shape."""
    frame = histogram_at(result, quantity, step)[["layer", "bin_start", "bin_end", "count"]].copy()
    if frame.empty:
        return frame.assign(base=[], top=[], share=[])
    totals = frame.groupby("layer")["count"].transform("sum").replace(0, np.nan)
    peaks = frame.groupby("layer")["count"].transform("max").replace(0, np.nan)
    frame["share"] = (frame["count"] / totals).fillna(0.0)
    frame["base"] = frame["layer"].astype(float)
    frame["top"] = frame["base"] - RIDGE_OVERLAP * (frame["count"] / peaks).fillna(0.0)
    # Empty bins beyond a layer's filled range carry nothing: keep one either side to close the outline.
    filled = frame[frame["count"] > 0].groupby("layer")["bin_start"].agg(["min", "max"])
    step = float((frame["bin_end"] - frame["bin_start"]).max())
    bounds = frame["layer"].map(filled["min"]), frame["layer"].map(filled["max"])
    keep = (frame["bin_start"] >= bounds[0] - step * 1.01) & (frame["bin_start"] <= bounds[1] + step * 1.01)
    return frame[keep.fillna(False)].reset_index(drop=True)


def _side_labels(result: RunResult, step: int | None, quantity: str, kind: str, tr: Translator) -> pd.DataFrame:
    """One text per layer for the right edge: the share of exact zeros, or the saturated/dead share."""
    at = snapshot_at(result, step)
    stats = result.layer_stats
    at_step = stats[(stats["step"] == at) & (stats["layer"] > 0)]
    if kind == "zeros":
        zeros = at_step[at_step["quantity"] == f"{quantity}_zeros"].set_index("layer")["value"]
        counted = histogram_at(result, quantity, step).groupby("layer")["count"].sum()
        extra = sum(
            at_step[at_step["quantity"] == f"{quantity}_{name}"].set_index("layer")["value"]
            for name in ("zeros", "nan", "inf")
        )
        share = zeros / (counted + extra).replace(0, np.nan)
        texts = share.map(
            lambda v: tr.render(message("{share:.0%} zero", share=v)) if np.isfinite(v) and v >= 0.005 else ""
        )
    else:
        word = run_stuck_word(result)
        stuck = at_step[at_step["quantity"] == "saturated_or_dead"].set_index("layer")["value"]
        shown = tr.gettext(word) if word else ""
        texts = stuck.map(
            lambda v: tr.render(message("{share:.0%} {word}", share=v, word=shown)) if np.isfinite(v) and word else ""
        )
    frame = texts.rename("text").reset_index()
    return frame.assign(y=frame["layer"].astype(float) - 0.35)


RIDGE_X_TITLES = {  # a ridgeline's x axis per quantity
    "weight_grad": "log₁₀ |∂L/∂W|",
    "grad_out": N_("log₁₀ |∂L/∂z| (back-propagated)"),
    "activation": N_("activation value"),
    "pre_activation": N_("pre-activation value"),
}


def ridgeline(
    result: RunResult,
    quantity: str,
    step: int | None,
    x_domain: tuple[float, float],
    color: str,
    title: str | None = None,
    tr: Translator = ENGLISH,
) -> alt.LayerChart:
    """One row per layer (fc1 on top) of the distribution of `quantity` at `step`.

    quantity: 'weight_grad' or 'grad_out' (x = log10|g|) or 'activation' / 'pre_activation' (x = value).
    """
    frame = ridge_frame(result, quantity, step)
    is_grad = quantity in ("weight_grad", "grad_out")
    n_layers = layer_count(result, quantity)
    names = result.layer_names[:n_layers] or [layer_label([], n_layers)]
    frame = frame.assign(layer_name=[layer_label(names, int(layer)) for layer in frame["layer"]])
    x_title = tr.gettext(RIDGE_X_TITLES[quantity])
    x = alt.X("bin_start:Q", title=x_title, scale=alt.Scale(domain=list(x_domain), nice=False, clamp=True))
    y_axis = _layer_axis(names, None, most=n_layers)  # one row per layer: every row has room for its name
    y_scale = alt.Scale(domain=[1.0 - RIDGE_OVERLAP, n_layers + 0.25], reverse=True, nice=False, zero=False)
    y = alt.Y(
        "base:Q",
        axis=y_axis,
        scale=y_scale,
    )
    ridges = (
        alt.Chart(frame)
        .mark_area(interpolate="step-after", color=color, fillOpacity=0.55, stroke=color, strokeWidth=1, clip=True)
        .encode(
            x=x,
            y=y,
            y2=alt.Y2("top:Q"),
            detail=alt.Detail("layer:N"),
            tooltip=[
                alt.Tooltip("layer_name:N", title=tr.gettext(N_("layer"))),
                alt.Tooltip("bin_start:Q", format=".2f", title=tr.gettext(N_("from"))),
                alt.Tooltip("bin_end:Q", format=".2f", title=tr.gettext(N_("to"))),
                alt.Tooltip("count:Q", format=",", title=tr.gettext(N_("count"))),
                alt.Tooltip("share:Q", format=".1%", title=tr.gettext(N_("share"))),
            ],
        )
    )
    labels = _side_labels(result, step, quantity, "zeros" if is_grad else "stuck", tr)
    text = (
        alt.Chart(labels)
        .mark_text(align="right", baseline="middle", dx=-2, fontSize=11, color="#555")
        .encode(
            x=alt.value("width"), y=alt.Y("y:Q", axis=y_axis, scale=y_scale), text=alt.Text("text:N")
        )  # pinned to the right edge
    )
    height = ROW_HEIGHT * (n_layers + RIDGE_OVERLAP - 0.75)
    parts: list[alt.Chart] = [ridges, text]
    if not (frame["count"] > 0).any():
        parts.append(_note([empty_reason(result, quantity, step, tr)]))
    return _fit_x(alt.layer(*parts, title=title or "").properties(height=height))
