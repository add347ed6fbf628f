"""The seed article's view: all of one run's parameter gradients pooled in one signed histogram."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ..i18n import ENGLISH, N_, Translator
from ..results import RunResult
from .common import (
    Runs,
    _fit_x,
    _log_axis,
    _note,
    empty_reason,
    snapshot_at,
)


def article_frame(result: RunResult, step: int | None) -> pd.DataFrame:
    frame = result.histograms
    at = snapshot_at(result, step)
    part = frame[(frame["quantity"] == "weight_grad_signed") & (frame["step"] == at)]
    return part[["bin_start", "bin_end", "count"]].assign(base=0.5)


def article_max(runs: Runs, step: int | None) -> float:
    """The largest bin count among the runs at `step`: one y range for every column."""
    peaks = [article_frame(result, step)["count"].max() for _, result in runs]
    peaks = [float(p) for p in peaks if pd.notna(p)]
    return max([*peaks, 1.0])


def signed_outside(result: RunResult, step: int | None) -> int:
    """How many pooled gradients fell outside -1..1 at `step` (the article's plt.hist drops them)."""
    value = result.stat_rows("signed_outside", snapshot_at(result, step))["value"]
    return int(value.iloc[0]) if len(value) else 0


def article_histogram(
    result: RunResult, step: int | None, y_max: float, color: str, title: str | None = None, tr: Translator = ENGLISH
) -> alt.Chart:
    frame = article_frame(result, step)
    frame = frame[frame["count"] > 0]
    bars = (
        alt.Chart(frame)
        .mark_rect(color=color, opacity=0.7)
        .encode(
            x=alt.X("bin_start:Q", title=tr.gettext(N_("gradient value")), scale=alt.Scale(domain=[-1, 1], nice=False)),
            x2=alt.X2("bin_end:Q"),
            y=alt.Y(
                "count:Q",
                title=tr.gettext(N_("frequency (log)")),
                scale=alt.Scale(type="log", domain=[0.5, y_max * 2]),
                axis=_log_axis([0.5, y_max * 2]),
            ),
            y2=alt.Y2("base:Q"),
            tooltip=[
                alt.Tooltip("bin_start:Q", format=".2f", title=tr.gettext(N_("from"))),
                alt.Tooltip("bin_end:Q", format=".2f", title=tr.gettext(N_("to"))),
                alt.Tooltip("count:Q", format=",", title=tr.gettext(N_("count"))),
            ],
        )
    )
    parts: list[alt.Chart] = [bars]
    if frame.empty:
        parts.append(_note([empty_reason(result, "weight_grad", step, tr)]))
    return _fit_x(alt.layer(*parts, title=title or "").properties(height=200))
