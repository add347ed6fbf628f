"""The through-time views of recurrent runs (Altair): ‖∂L/∂h_t‖ over time steps, ridgelines over time steps,
and a time step × training step heatmap. Runs of other families have no time steps: they get a note, never an
axis they do not share."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..i18n import ENGLISH, N_, Translator, message
from ..results import RunResult
from ..spec import RECURRENT
from .common import (
    NOTE_COLOR,
    RIDGE_OVERLAP,
    Runs,
    _fit_x,
    _log_axis,
    _note,
    color_scale,
    heatmap_color,
    heatmap_step_rule,
    heatmap_x,
    note_lines,
    shared_range,
    snapshot_at,
)

TIME_ROW_HEIGHT = 18  # pixels per time step row of the ridgelines
TIME_HEATMAP_HEIGHT = 240  # pixels: the heatmap's time axis, whatever the number of steps

CAPTIONS = {
    "time": N_(
        "Recurrent runs only: the gradient of the loss with respect to each hidden state h_t, through time. "
        "**All runs:** ‖∂L/∂h_t‖ for every time step t at the chosen step (log scale; the loss is at the last step T). "
        "**Per run:** log₁₀|∂L/∂h_t| at 16 time steps, and ‖∂L/∂h_t‖ over training (first recurrent layer).  \n"
        "A line falling towards t = 1 is the vanishing gradient through time: the first steps of the sequence "
        "get no say in the loss. A rising one explodes; a flat one (gated nets) keeps its memory."
    ),
}


def is_recurrent(result: RunResult) -> bool:
    return result.spec is not None and result.spec.model in RECURRENT


def not_recurrent(name: str, result: RunResult, tr: Translator = ENGLISH) -> str:
    """The note a run without time steps gets in place of a through-time chart."""
    model = result.spec.model if result.spec is not None else tr.gettext(N_("this model"))
    return tr.render(message("{name}: {model} is not a recurrent net (it has no time steps).", name=name, model=model))


def time_flow_frame(runs: Runs, step: int | None) -> pd.DataFrame:
    """One row per recurrent run, layer and time step: ‖∂L/∂h_t‖ at the snapshot for `step`; positive and finite
    values only (a log scale); `zeros` counts the time steps left out because their gradient is exactly 0."""
    columns = ["run", "layer", "layer_name", "t", "value"]
    rows = []
    for name, result in runs:
        if not is_recurrent(result) or result.time_stats.empty:
            continue
        norms = result.hidden_grad_norms(snapshot_at(result, step))
        for layer, values in norms.items():
            rows.append(
                pd.DataFrame(
                    {
                        "run": name,
                        "layer": layer,
                        "layer_name": result.layer_name(layer),
                        "t": np.arange(1, len(values) + 1),
                        "value": values,
                    }
                )
            )
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    values = frame["value"].to_numpy(dtype=float)
    return frame[np.isfinite(values) & (values > 0)][columns]


def time_flow_notes(runs: Runs, step: int | None, frame: pd.DataFrame, tr: Translator = ENGLISH) -> list[str]:
    """What the through-time flow does not draw: runs of other families, and time steps whose gradient is 0."""
    notes = []
    for name, result in runs:
        if not is_recurrent(result):
            notes.append(not_recurrent(name, result, tr))
            continue
        norms = result.hidden_grad_norms(snapshot_at(result, step))
        total = sum(len(values) for values in norms.values())
        drawn = int((frame["run"] == name).sum())
        if total > drawn:
            text = N_("{name}: {count:d} time steps with ‖∂L/∂h_t‖ = 0 or not a number are not drawn.")
            notes.append(tr.render(message(text, name=name, count=total - drawn)))
    return notes


def time_flow(runs: Runs, step: int | None, tr: Translator = ENGLISH) -> alt.LayerChart:
    """‖∂L/∂h_t‖ against t, log scale, one line per recurrent run (dashed for its higher layers)."""
    names = [name for name, _ in runs]
    frame = time_flow_frame(runs, step)
    longest = max((r.spec.seq_len for _, r in runs if is_recurrent(r)), default=2)
    lines = (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=12) if longest <= 50 else False)
        .encode(
            x=alt.X(
                "t:Q",
                title=tr.gettext(N_("time step t (the loss is read at the last one)")),
                scale=alt.Scale(domain=[1, longest]),
            ),
            y=alt.Y("value:Q", scale=alt.Scale(type="log"), title="‖∂L/∂h_t‖", axis=_log_axis(frame["value"])),
            color=alt.Color(
                "run:N",
                scale=color_scale(names),
                legend=alt.Legend(orient="bottom", direction="vertical", title=None, labelLimit=0),
            ),
            strokeDash=alt.StrokeDash("layer_name:N", title=tr.gettext(N_("layer")), legend=None),
            detail=alt.Detail("layer_name:N"),
            tooltip=[
                alt.Tooltip("run:N"),
                alt.Tooltip("layer_name:N", title=tr.gettext(N_("layer"))),
                alt.Tooltip("t:Q"),
                alt.Tooltip("value:Q", format=".3e"),
            ],
        )
    )
    notes = time_flow_notes(runs, step, frame, tr)
    title = (
        alt.TitleParams(
            notes[0], subtitle=notes[1:], anchor="start", fontSize=12, fontWeight="normal", color=NOTE_COLOR
        )
        if notes
        else ""
    )
    parts: list[alt.Chart] = [lines]
    if frame.empty:
        parts.append(_note([tr.gettext(N_("No recurrent run has a gradient to draw at this step."))]))
    return _fit_x(alt.layer(*parts, title=title).properties(height=250))


def time_histogram_at(result: RunResult, step: int | None, layer: int = 1) -> pd.DataFrame:
    """log10|∂L/∂h_t| counts of recurrent layer `layer` at the snapshot for `step`, one block per recorded t."""
    frame = result.time_histograms
    at = snapshot_at(result, step)
    keep = (frame["step"] == at) & (frame["layer"] == layer) & (frame["quantity"] == "hidden_grad")
    return frame[keep]


def time_ridge_frame(result: RunResult, step: int | None) -> pd.DataFrame:
    """Ridges over time steps: row k (1 = t = 1 at the top) with a height of count / that row's largest count."""
    frame = time_histogram_at(result, step)[["t", "bin_start", "bin_end", "count"]].copy()
    rows = {t: k for k, t in enumerate(sorted(frame["t"].unique()), 1)}
    frame["row"] = frame["t"].map(rows).astype(float)
    peaks = frame.groupby("t")["count"].transform("max").replace(0, np.nan)
    frame["top"] = frame["row"] - RIDGE_OVERLAP * (frame["count"] / peaks).fillna(0.0)
    return frame[frame.groupby("t")["count"].transform("sum") > 0].reset_index(drop=True)


def time_ridge_domain(runs: Runs, step: int | None, pad: float = 0.5) -> tuple[float, float]:
    """One log10|∂L/∂h_t| range for every recurrent run's ridgelines: where any of them has counts."""
    parts = [time_histogram_at(result, step) for _, result in runs if is_recurrent(result)]
    filled = [part[part["count"] > 0] for part in parts]
    filled = [part for part in filled if len(part)]
    if not filled:
        return (-10.0, 0.0)
    joined = pd.concat(filled)
    return (float(joined["bin_start"].min()) - pad, float(joined["bin_end"].max()) + pad)


def time_ridgeline(
    name: str,
    result: RunResult,
    step: int | None,
    x_domain: tuple[float, float],
    color: str,
    tr: Translator = ENGLISH,
) -> alt.LayerChart:
    """log10|∂L/∂h_t| of the first recurrent layer, one row per recorded time step (t = 1 on top)."""
    if not is_recurrent(result):
        return _note_panel(not_recurrent(name, result, tr))
    frame = time_ridge_frame(result, step)
    ts = sorted(time_histogram_at(result, step)["t"].unique().tolist())
    labels = f"{ts}[datum.value - 1] ? 't = ' + {ts}[datum.value - 1] : ''"
    y = alt.Y(
        "row:Q",
        axis=alt.Axis(values=list(range(1, len(ts) + 1)), labelExpr=labels, title=None, grid=False, domain=False),
        scale=alt.Scale(domain=[1.0 - RIDGE_OVERLAP, len(ts) + 0.25], reverse=True, nice=False, zero=False),
    )
    ridges = (
        alt.Chart(frame)
        .mark_area(interpolate="step-after", color=color, fillOpacity=0.55, stroke=color, strokeWidth=1, clip=True)
        .encode(
            x=alt.X(
                "bin_start:Q", title="log₁₀ |∂L/∂h_t|", scale=alt.Scale(domain=list(x_domain), nice=False, clamp=True)
            ),
            y=y,
            y2=alt.Y2("top:Q"),
            detail=alt.Detail("t:N"),
            tooltip=[
                alt.Tooltip("t:Q"),
                alt.Tooltip("bin_start:Q", format=".2f", title=tr.gettext(N_("from"))),
                alt.Tooltip("count:Q", format=",", title=tr.gettext(N_("count"))),
            ],
        )
    )
    parts: list[alt.Chart] = [ridges]
    if frame.empty:
        parts.append(_note([tr.gettext(N_("Nothing to draw: every ∂L/∂h_t is 0 or not a number here."))]))
    title = f"{name}: {result.layer_name(1)}"
    height = TIME_ROW_HEIGHT * (max(len(ts), 1) + RIDGE_OVERLAP)
    return _fit_x(alt.layer(*parts, title=title).properties(height=height))


def time_heatmap_frame(result: RunResult) -> pd.DataFrame:
    """log10 ‖∂L/∂h_t‖ of the first recurrent layer per snapshot (from it to the next) and time step."""
    frame = result.time_stats
    keep = (frame["quantity"] == "hidden_grad_norm") & (frame["layer"] == 1)
    frame = frame[keep & np.isfinite(frame["value"]) & (frame["value"] > 0)]
    columns = ["step_start", "step_end", "t", "t_end", "log_norm"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    steps = sorted(frame["step"].unique())
    total = max(int(result.meta.get("total_steps") or 0), steps[-1] + 1)
    following = dict(zip(steps, [*steps[1:], total]))
    return pd.DataFrame(
        {
            "step_start": frame["step"].to_numpy(),
            "step_end": frame["step"].map(following).to_numpy(),
            "t": frame["t"].to_numpy() - 0.5,
            "t_end": frame["t"].to_numpy() + 0.5,
            "log_norm": np.log10(frame["value"].to_numpy()),
        }
    )


def time_heatmap_domain(runs: Runs) -> tuple[float, float]:
    """One colour range for every recurrent run's through-time heatmap."""
    frames = [time_heatmap_frame(result)["log_norm"] for _, result in runs if is_recurrent(result)]
    return shared_range(frames, (-6.0, 0.0))


def time_heatmap(
    name: str, result: RunResult, color_domain: tuple[float, float], step: int | None = None, tr: Translator = ENGLISH
) -> alt.LayerChart:
    """Time step (t = 1 on top) × training step, coloured by log10 ‖∂L/∂h_t‖ of the first recurrent layer."""
    if not is_recurrent(result):
        return _note_panel(not_recurrent(name, result, tr))
    frame = time_heatmap_frame(result)
    total = int(result.meta.get("total_steps") or 0)
    seq_len = result.spec.seq_len
    cells = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            **heatmap_x(total, tr),
            y=alt.Y(
                "t:Q",
                title=tr.gettext(N_("time step t")),
                scale=alt.Scale(domain=[0.5, seq_len + 0.5], reverse=True, nice=False),
            ),
            y2=alt.Y2("t_end:Q"),
            color=heatmap_color("log₁₀ ‖∂L/∂h_t‖", color_domain),
            tooltip=[
                alt.Tooltip("step_start:Q", title=tr.gettext(N_("from step"))),
                alt.Tooltip("t:Q", title="t", format=".0f"),
                alt.Tooltip("log_norm:Q", format=".2f"),
            ],
        )
    )
    parts: list[alt.Chart] = [cells]
    if step is not None and step > 0:
        parts.append(heatmap_step_rule(step))
    if frame.empty:
        parts.append(_note([tr.gettext(N_("Nothing to draw: every ‖∂L/∂h_t‖ is 0 or not a number."))]))
    title = f"{name}: {result.layer_name(1)}"
    return _fit_x(alt.layer(*parts, title=title).properties(height=TIME_HEATMAP_HEIGHT))


def _note_panel(text: str) -> alt.LayerChart:
    """A panel with only a note (a run this view does not apply to), as tall as its lines of text."""
    return _fit_x(alt.layer(_note([text])).properties(height=14 + 16 * len(note_lines([text]))))
