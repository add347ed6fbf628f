"""Learning curves: loss and accuracy per epoch (and the batch loss) of all runs, with the chosen step marked."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..i18n import ENGLISH, N_, Translator
from .common import (
    Runs,
    _finite,
    _fit_x,
    _log_axis,
    _no_steps,
    _note,
    _step_rule,
    color_scale,
)


def _curve_frames(runs: Runs) -> tuple[pd.DataFrame, pd.DataFrame]:
    history, batches = [], []
    for name, result in runs:
        long = result.history.melt(
            id_vars=["step", "epoch"], value_vars=["train_loss", "test_loss", "train_acc", "test_acc"]
        )
        long["split"] = long["variable"].str.split("_").str[0]
        long["metric"] = long["variable"].str.split("_").str[1]
        history.append(long.assign(run=name))
        steps = result.steps
        if len(steps):
            # At most ~200 points per run: mean batch loss over equal windows of steps.
            window = max(1, int(np.ceil(len(steps) / 200)))
            grouped = steps.assign(bucket=(steps["step"] - 1) // window).groupby("bucket")
            batches.append(
                pd.DataFrame({"step": grouped["step"].max(), "value": grouped["loss"].mean()}).assign(run=name)
            )
    history_frame = pd.concat(history, ignore_index=True) if history else pd.DataFrame()
    batch_frame = pd.concat(batches, ignore_index=True) if batches else pd.DataFrame(columns=["step", "value", "run"])
    if len(history_frame):
        history_frame = _finite(history_frame, "value")
    return history_frame, _finite(batch_frame, "value")


def learning_curve(runs: Runs, metric: str, step: int | None = None, tr: Translator = ENGLISH) -> alt.LayerChart:
    """metric 'loss' (log y, with the smoothed batch loss) or 'acc'; train dashed, test solid; the step marked
    (a caller that keeps the chart while only the step changes adds the marker with with_step_rule)."""
    parts = curve_layers(runs, metric, tr)
    if step is not None:
        parts.append(_step_rule(step))
    title = tr.gettext(N_("Loss") if metric == "loss" else N_("Accuracy"))
    return _fit_x(alt.layer(*parts, title=title).properties(height=200))


def curve_layers(runs: Runs, metric: str, tr: Translator = ENGLISH) -> list[alt.Chart]:
    """A learning curve's layers without the step's marker (they do not depend on it)."""
    names = [name for name, _ in runs]
    history, batches = _curve_frames(runs)
    if len(history):
        history = history[history["metric"] == metric]
    color = alt.Color("run:N", scale=color_scale(names), legend=None)
    is_loss = metric == "loss"
    y = alt.Y(
        "value:Q",
        title=tr.gettext(N_("loss (cross-entropy)") if is_loss else N_("accuracy")),
        scale=alt.Scale(type="log") if is_loss else alt.Scale(domain=[0, 1]),
        axis=_log_axis(history["value"] if len(history) else []) if is_loss else alt.Axis(format="%"),
    )
    total = max([int(result.meta.get("total_steps") or 0) for _, result in runs] + [1])
    x = alt.X(
        "step:Q",
        title=tr.gettext(N_("training step")),
        scale=alt.Scale(domain=[0, total], nice=False),
        axis=alt.Axis(format=",d"),
    )
    lines = (
        alt.Chart(history)
        .mark_line(point=True)
        .encode(
            x=x,
            y=y,
            color=color,
            strokeDash=alt.StrokeDash(
                "split:N", scale=alt.Scale(domain=["train", "test"], range=[[4, 3], [1, 0]]), legend=None
            ),
            tooltip=[
                alt.Tooltip("run:N"),
                alt.Tooltip("split:N"),
                alt.Tooltip("epoch:Q"),
                alt.Tooltip("value:Q", format=".4g", title=tr.gettext(N_("loss") if is_loss else N_("accuracy"))),
            ],
        )
    )
    layers: list[alt.Chart] = []
    if is_loss and len(batches):
        layers.append(
            alt.Chart(batches)
            .mark_line(strokeWidth=1, opacity=0.35)
            .encode(x=x, y=y, color=color, detail=alt.Detail("run:N"))
        )
    layers.append(lines)
    if not any(len(result.steps) for _, result in runs):
        text = N_("Not trained (0 epochs): the dots at step 0 are the untrained networks.")
        layers.append(_note([_no_steps(tr, text, *(result for _, result in runs))]))
    return layers
