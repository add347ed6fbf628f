"""The gradient flow: each layer's gradient norm at one step, all runs in one chart, with the theory's guides."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..i18n import ENGLISH, N_, Translator, message
from ..results import RunResult
from .common import (
    MAX_LAYER_LABELS,
    NOTE_COLOR,
    Runs,
    _finite,
    _fit_x,
    _layer_axis,
    _log_axis,
    color_scale,
    layer_count,
    layer_label,
    layer_names,
    snapshot_at,
)

SIGMOID_SLOPE = 0.25  # sigmoid's largest derivative: a plain sigmoid layer shrinks the gradient at least this much
# ReLU's activation std per layer under two inits (He et al. 2015): ×1/√2 under N(0, 1/n), ×1 under Kaiming.
HE_FACTORS = {"lecun_normal": 2**-0.5, "kaiming_normal": 1.0, "kaiming_uniform": 1.0}


def _plain(result: RunResult, activation: str) -> int | None:
    """The hidden-layer count of a built-in run with `activation`, no skips and no norm (a theory guide applies),
    else None (a watched run has no spec)."""
    spec = result.spec
    if spec is None or spec.activation != activation or spec.residual or spec.norm != "none":
        return None
    return layer_count(result, "activation")


def gradient_flow_frame(runs: Runs, step: int | None, quantity: str = "weight_grad_norm") -> pd.DataFrame:
    """One row per run and layer: `quantity` at the snapshot for `step`, positive and finite only (log scale)."""
    columns = ["run", "layer", "layer_name", "value"]
    rows = [_layer_values(name, result, step, quantity) for name, result in runs]
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    frame = _finite(frame, "value")
    return frame[frame["value"] > 0][columns]


def _layer_values(name: str, result: RunResult, step: int | None, quantity: str) -> pd.DataFrame:
    part = result.stat_rows(quantity, snapshot_at(result, step))
    part = part[part["layer"] > 0]
    labels = [layer_label(result.layer_names, int(layer)) for layer in part["layer"]]
    return part.assign(run=name, layer_name=labels)[["run", "layer", "layer_name", "value"]]


def not_drawn(runs: Runs, step: int | None, quantity: str, tr: Translator = ENGLISH) -> list[str]:
    """Why a run has layers missing from a per-layer log chart at `step`: one line per such run."""
    lines = []
    for name, result in runs:
        stats = result.layer_stats
        expected = stats[(stats["quantity"] == quantity) & (stats["layer"] > 0)]["layer"].nunique()
        values = _layer_values(name, result, step, quantity)["value"].to_numpy(dtype=float)
        drawn = int((np.isfinite(values) & (values > 0)).sum())
        if drawn >= expected:
            continue
        at, diverged = snapshot_at(result, step), result.diverged_at_step
        if diverged is not None and at >= diverged:
            why = tr.render(message("NaN: diverged at step {step:,d}", step=int(diverged)))
        elif len(values) and (values[np.isfinite(values)] == 0).any():
            why = tr.gettext(N_("exactly 0, which a log scale cannot show"))
        else:
            why = tr.gettext(N_("NaN or infinite"))
        if drawn == 0:
            count = tr.gettext(N_("no layer drawn"))
        else:
            count = tr.render(
                message("{missing:d} of {expected:d} layers not drawn", missing=expected - drawn, expected=expected)
            )
        lines += [f"{name}: {count}", f"   ({why})"]
    return lines


def sigmoid_guide(runs: Runs, step: int | None, quantity: str, floor: float) -> pd.DataFrame:
    """For each plain sigmoid run: its last hidden layer's value × (1/4)^k, k layers towards the input (down to
    `floor`): the most a sigmoid's slope lets through; weights and saturation shrink the gradient further."""
    rows = []
    for name, result in runs:
        depth = _plain(result, "sigmoid")
        if depth is None:
            continue
        values = _layer_values(name, result, step, quantity).set_index("layer")["value"]
        last = float(values.get(depth, np.nan))
        if not (np.isfinite(last) and last > 0):
            continue
        for layer in range(depth, 0, -1):
            value = last * SIGMOID_SLOPE ** (depth - layer)
            if value < floor:
                break
            rows.append({"run": name, "layer": layer, "value": value})
    return pd.DataFrame(rows, columns=["run", "layer", "value"])


def he_guide(runs: Runs, step: int | None) -> pd.DataFrame:
    """For each plain ReLU run under a √(1/n) or Kaiming init: fc1's activation std × the per-layer factor He et
    al. 2015 predict (1/√2 or 1), over every hidden layer."""
    rows = []
    for name, result in runs:
        depth = _plain(result, "relu")
        factor = HE_FACTORS.get(result.spec.init) if depth is not None else None
        if factor is None:
            continue
        first = float(_layer_values(name, result, step, "act_std").set_index("layer")["value"].get(1, np.nan))
        if np.isfinite(first) and first > 0:
            rows += [
                {"run": name, "layer": layer, "value": first * factor ** (layer - 1)} for layer in range(1, depth + 1)
            ]
    return pd.DataFrame(rows, columns=["run", "layer", "value"])


FLOW_TITLES = {
    "weight_grad_norm": N_("weight-gradient norm ‖∂L/∂W‖"),
    "grad_out_norm": N_("back-propagated norm ‖∂L/∂z‖"),
}


def gradient_flow(
    runs: Runs, step: int | None, quantity: str = "weight_grad_norm", tr: Translator = ENGLISH
) -> alt.LayerChart:
    """Per-layer gradient norm, log scale, one line per run; sigmoid's (1/4)^k guide; a note on runs not drawn."""
    title = tr.gettext(FLOW_TITLES[quantity])
    frame = gradient_flow_frame(runs, step, quantity)
    floor = float(frame["value"].min()) / 10 if len(frame) else 0.0
    guide = sigmoid_guide(runs, step, quantity, floor)
    x_title = tr.gettext(N_("layer (input → output)"))
    return _layer_lines(frame, guide, runs, x_title, title, (tr.gettext(N_("norm")), ".3e"), 50, quantity, step, tr)


def _layer_lines(
    frame: pd.DataFrame,
    guide: pd.DataFrame,
    runs: Runs,
    x_title: str,
    y_title: str,
    tooltip: tuple[str, str],
    point_size: int,
    quantity: str,
    step: int | None,
    tr: Translator = ENGLISH,
) -> alt.LayerChart:
    """One value per layer on a log y scale, one line per run (gradient flow, activation std), a dotted theory
    guide per run where one applies, and a note naming the runs (or layers) the log scale cannot show."""
    names = [name for name, _ in runs]
    layers = layer_names(runs)
    if quantity == "act_std":
        layers = layers[: max((layer_count(result, "activation") for _, result in runs), default=len(layers))]
    most = MAX_LAYER_LABELS if quantity != "act_std" else MAX_LAYER_LABELS // 2  # act_std sits in a narrow column
    x = alt.X(
        "layer:Q", axis=_layer_axis(layers, x_title, most), scale=alt.Scale(domain=[1, max(len(layers), 2)], nice=False)
    )
    y = alt.Y(
        "value:Q",
        scale=alt.Scale(type="log"),
        title=y_title,
        axis=_log_axis(pd.concat([frame["value"], guide["value"]])),
    )
    color = alt.Color(
        "run:N",
        scale=color_scale(names),
        legend=alt.Legend(orient="bottom", direction="vertical", title=None, labelLimit=0),
    )
    lines = (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=point_size))
        .encode(
            x=x,
            y=y,
            color=color,
            tooltip=[
                alt.Tooltip("run:N"),
                alt.Tooltip("layer_name:N"),
                alt.Tooltip("value:Q", format=tooltip[1], title=tooltip[0]),
            ],
        )
    )
    parts: list[alt.Chart] = [lines]
    if len(guide):
        parts.append(
            alt.Chart(guide)
            .mark_line(strokeDash=[2, 3], strokeWidth=1.5, opacity=0.8)
            .encode(
                x=x, y=y, color=alt.Color("run:N", scale=color_scale(names), legend=None), detail=alt.Detail("run:N")
            )
        )
    missing = not_drawn(runs, step, quantity, tr)  # said above the plot, where no line can hide it
    title = (
        alt.TitleParams(
            missing[0], subtitle=missing[1:], anchor="start", fontSize=12, fontWeight="normal", color=NOTE_COLOR
        )
        if missing
        else ""
    )
    return _fit_x(alt.layer(*parts, title=title).properties(height=250))
