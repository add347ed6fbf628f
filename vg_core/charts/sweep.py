"""The depth sweep: each run's final accuracy and gradient ratio against depth."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from ..i18n import ENGLISH, N_, Translator
from .common import (
    _finite,
    _fit_x,
    _log_axis,
    color_scale,
)


def sweep_chart(table: pd.DataFrame, names: Sequence[str], metric: str, tr: Translator = ENGLISH) -> alt.LayerChart:
    """metric 'test_acc' (linear 0..1) or 'grad_ratio' (log; at init solid, after training dashed) against depth,
    one line per run; `table` is vg_core.sweep's table with a `run` column naming each point's run."""
    color = alt.Color(
        "run:N",
        scale=color_scale(names),
        legend=alt.Legend(orient="bottom", direction="vertical", title=None, labelLimit=0),
    )
    depths = sorted(int(d) for d in table["depth"].unique()) if len(table) else [1]
    x = alt.X(
        "depth:Q",
        title=tr.gettext(N_("hidden layers")),
        scale=alt.Scale(domain=[min(depths), max(depths)] if len(depths) > 1 else [0, depths[0] + 1], nice=False),
        axis=alt.Axis(values=depths, format="d"),
    )
    if metric == "test_acc":
        frame = _finite(table[["run", "depth", "test_acc"]].rename(columns={"test_acc": "value"}), "value")
        frame = frame.assign(when="after training")
        accuracy = tr.gettext(N_("test accuracy"))
        y = alt.Y("value:Q", title=accuracy, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
        title, tip = tr.gettext(N_("Test accuracy against depth")), alt.Tooltip("value:Q", format=".1%", title=accuracy)
    else:
        long = table.melt(id_vars=["run", "depth"], value_vars=["grad_ratio_init", "grad_ratio_final"], var_name="when")
        long["when"] = long["when"].map({"grad_ratio_init": "at initialisation", "grad_ratio_final": "after training"})
        frame = _finite(long, "value")
        frame = frame[frame["value"] > 0]
        y = alt.Y(
            "value:Q",
            title=tr.gettext(N_("first ÷ last hidden layer (gradient norm)")),
            scale=alt.Scale(type="log"),
            axis=_log_axis(frame["value"]),
        )
        title = tr.gettext(N_("Gradient ratio against depth"))
        tip = alt.Tooltip("value:Q", format=".3g", title=tr.gettext(N_("first ÷ last hidden")))
    chart = (
        alt.Chart(frame.sort_values(["run", "depth"]), title=title)
        .mark_line(point=alt.OverlayMarkDef(size=50))
        .encode(
            x=x,
            y=y,
            color=color,
            strokeDash=alt.StrokeDash(
                "when:N",
                scale=alt.Scale(domain=["at initialisation", "after training"], range=[[1, 0], [4, 3]]),
                legend=None,
            )
            if metric != "test_acc"
            else alt.value([1, 0]),
            detail=alt.Detail("when:N"),
            tooltip=[alt.Tooltip("run:N"), alt.Tooltip("depth:Q"), alt.Tooltip("when:N"), tip],
        )
        .properties(height=260)
    )
    return _fit_x(chart)
