"""Altair charts of RunResults for the page (no streamlit here): every builder takes the engine's tidy
frames, filters and pre-aggregates them in pandas, and hands Altair a few hundred rows at most.

Runs are passed as `(name, result)` pairs; a run keeps its colour (by position) in every chart, and
charts that sit side by side take a shared domain (`*_domain` helpers) so their columns compare honestly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd
import vl_convert as vlc

from .probes import POOLED_LAYER, stuck_word
from .results import RunResult
from .spec import RunSpec

Runs = Sequence[tuple[str, RunResult]]

RUN_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2")  # run 1..4, the same in every chart
HEATMAP_SCHEME = "viridis"
ROW_HEIGHT = 26  # pixels per layer in the ridgelines and the heatmap
RIDGE_OVERLAP = 1.6  # a ridge may reach this many rows up
HEATMAP_COLUMNS = 100  # steps are averaged into at most this many columns
LABEL_GUTTER = 0.25  # ridgelines leave this share of their x range free on the right for the layer labels
TRACE_LAYERS = 6  # the activations-over-training chart follows at most this many layers (first and last always)
LAYER_SCHEME = "viridis"  # layers coloured along one ramp: fc1 dark, the last hidden layer light

# Two lines per view: what it shows, and what to look for.
CAPTIONS = {
    "flow": (
        "Each layer's weight-gradient norm at the chosen step (log scale), fc1 (input side) on the left.  \n"
        "A line falling towards fc1 is the vanishing gradient: the first layers barely learn."
    ),
    "curves": (
        "Loss and accuracy at each epoch end, dashed on the training set, solid on the test set; thin: batch loss.  \n"
        "A run stuck at 10% accuracy (chance for 10 digits) is not learning at all."
    ),
    "grad_dist": (
        "One row per layer: how many gradient entries fall at each order of magnitude (log₁₀|g|) at that step.  \n"
        "Rows sliding left towards fc1 mean smaller gradients there; the share of exact zeros is printed on the right."
    ),
    "act_dist": (
        "One row per hidden layer: how its outputs on the fixed held-out probe digits spread at the chosen step.  \n"
        "Sigmoid piled up at 0 or 1 is saturated (its slope ≈ 0); a ReLU unit that is 0 for every input is dead."
    ),
    "heatmap": (
        "Each training step's weight-gradient norm per layer, one log colour scale for all runs; red: chosen step.  \n"
        "Dark rows at the top (fc1) that stay dark mean the first layers never get a useful gradient."
    ),
    "article": (
        "The seed article's plot: all parameter gradients pooled, -1..1 in 100 bins, log counts, at that step.  \n"
        "A tall spike at 0 and nothing else means almost every gradient is tiny. Values beyond ±1 are not drawn."
    ),
    "act_std": (
        "Each hidden layer's activation standard deviation at the chosen step (log scale), one line per run.  \n"
        "A straight line falling to the right is a signal shrinking by the same factor per layer (√2 for He's √(1/n))."
    ),
    "act_trace": (
        "Each hidden layer's mean activation over training (line) ± one standard deviation (band); symlog steps.  \n"
        "A sigmoid layer whose mean sinks to 0 with a thin band is saturated; bands narrowing with depth: signal dies."
    ),
    "sweep_acc": (
        "Final test accuracy of each run's network trained at every depth (points already in the cache).  \n"
        "A line that drops to 10% at large depth: that network no longer trains at all when it is that deep."
    ),
    "sweep_grad": (
        "fc1's weight-gradient norm over the last hidden layer's, solid at initialisation, dashed after training.  \n"
        "A line falling by orders of magnitude with depth is the vanishing gradient; about 1 means a healthy flow."
    ),
}


def run_name(index: int, spec: RunSpec) -> str:
    """'1 · sigmoid 5x128 default-init': a run's name in legends and column headers."""
    return f"{index} · {spec.label}"


def color_scale(names: Sequence[str]) -> alt.Scale:
    return alt.Scale(domain=list(names), range=list(RUN_COLORS[: len(names)]))


def run_color(names: Sequence[str], name: str) -> str:
    return RUN_COLORS[list(names).index(name) % len(RUN_COLORS)]


def layer_names(runs: Runs) -> list[str]:
    """The runs' layer names where they agree (same family and depth), else 'layer N' for each number."""
    named = [result.layer_names for _, result in runs]
    longest = max(named, key=len) if named else []
    if all(names == longest[: len(names)] for names in named):
        return longest
    return [f"layer {number}" for number in range(1, len(longest) + 1)]


def _label_expr(names: Sequence[str]) -> str:
    """A Vega expression naming layer number datum.value (1-based) by `names`."""
    return f"{json.dumps(list(names))}[datum.value - 1]"


def snapshot_at(result: RunResult, step: int | None) -> int:
    """The latest recorded snapshot at or before `step` (None: the last one); the first if none is."""
    steps = result.snapshot_steps
    if not steps:
        return 0
    if step is None:
        return steps[-1]
    earlier = [s for s in steps if s <= step]
    return earlier[-1] if earlier else steps[0]


def step_label(step: int, steps_per_epoch: int | None) -> str:
    if step == 0:
        return "initialisation"
    if not steps_per_epoch:
        return f"step {step}"
    return f"step {step} (epoch {step / steps_per_epoch:.2f})"


def _layer_axis(names: Sequence[str], title: str | None = "layer") -> alt.Axis:
    return alt.Axis(
        values=list(range(1, len(names) + 1)),
        labelExpr=_label_expr(names),
        labelOverlap=False,
        title=title,
        grid=False,
        domain=False,
    )


def _fit_x(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Stretch to the container's width but keep the plot's own height (Streamlit's theme would fit both,
    squeezing the plot by the height of its axes, title and legend)."""
    return chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def _finite(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[np.isfinite(frame[column].to_numpy(dtype=float))]


# ---------------------------------------------------------------- gradient flow (all runs, one chart)


def gradient_flow_frame(runs: Runs, step: int | None, quantity: str = "weight_grad_norm") -> pd.DataFrame:
    rows = []
    for name, result in runs:
        at = snapshot_at(result, step)
        stats = result.layer_stats
        part = stats[(stats["quantity"] == quantity) & (stats["step"] == at) & (stats["layer"] > 0)]
        named = part.assign(run=name, layer_name=part["layer"].map(result.layer_name))
        rows.append(named[["run", "layer", "layer_name", "value"]])
    frame = (
        pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["run", "layer", "layer_name", "value"])
    )
    frame = _finite(frame, "value")
    return frame[frame["value"] > 0]


def gradient_flow(runs: Runs, step: int | None, quantity: str = "weight_grad_norm") -> alt.Chart:
    """Per-layer gradient norm, log scale, one line per run."""
    title = "weight-gradient norm ‖∂L/∂W‖" if quantity == "weight_grad_norm" else "back-propagated norm ‖∂L/∂z‖"
    frame = gradient_flow_frame(runs, step, quantity)
    return _layer_lines(frame, runs, "layer (input → output)", title, ".0e", ("norm", ".3e"), point_size=50)


def _layer_lines(
    frame: pd.DataFrame,
    runs: Runs,
    x_title: str,
    y_title: str,
    y_format: str,
    tooltip: tuple[str, str],
    point_size: int,
) -> alt.Chart:
    """One value per layer on a log y scale, one line per run (gradient flow, activation std)."""
    names = [name for name, _ in runs]
    n_layers = int(frame["layer"].max()) if len(frame) else 1
    shown = (layer_names(runs) + [f"layer {n}" for n in range(1, n_layers + 1)])[:n_layers]
    chart = (
        alt.Chart(frame, title="")
        .mark_line(point=alt.OverlayMarkDef(size=point_size))
        .encode(
            x=alt.X("layer:Q", axis=_layer_axis(shown, x_title), scale=alt.Scale(nice=False)),
            y=alt.Y("value:Q", scale=alt.Scale(type="log"), title=y_title, axis=alt.Axis(format=y_format)),
            color=alt.Color(
                "run:N",
                scale=color_scale(names),
                legend=alt.Legend(orient="bottom", direction="vertical", title=None, labelLimit=0),
            ),
            tooltip=["run", "layer_name", alt.Tooltip("value:Q", format=tooltip[1], title=tooltip[0])],
        )
        .properties(height=250)
    )
    return _fit_x(chart)


# ---------------------------------------------------------------- learning curves (all runs)


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


def learning_curve(runs: Runs, metric: str, step: int | None = None) -> alt.Chart:
    """metric 'loss' (log y, with the smoothed batch loss) or 'acc'; train dashed, test solid."""
    names = [name for name, _ in runs]
    history, batches = _curve_frames(runs)
    if len(history):
        history = history[history["metric"] == metric]
    color = alt.Color("run:N", scale=color_scale(names), legend=None)
    is_loss = metric == "loss"
    y = alt.Y(
        "value:Q",
        title="loss (cross-entropy)" if is_loss else "accuracy",
        scale=alt.Scale(type="log") if is_loss else alt.Scale(domain=[0, 1]),
        axis=alt.Axis(format="~g" if is_loss else "%"),
    )
    x = alt.X("step:Q", title="training step")
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
            tooltip=["run", "split", "epoch", alt.Tooltip("value:Q", format=".4g", title=metric)],
        )
    )
    layers: list[alt.Chart] = []
    if is_loss and len(batches):
        layers.append(
            alt.Chart(batches).mark_line(strokeWidth=1, opacity=0.35).encode(x=x, y=y, color=color, detail="run:N")
        )
    layers.append(lines)
    if step is not None:
        layers.append(_step_rule(step))
    title = "Loss" if is_loss else "Accuracy"
    return _fit_x(alt.layer(*layers, title=title).properties(height=200))


def _step_rule(step: int) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"step": [step]})).mark_rule(color="#d62728", strokeDash=[2, 2]).encode(x="step:Q")


# ---------------------------------------------------------------- ridgelines (one chart per run)


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


def _side_labels(result: RunResult, step: int | None, quantity: str, kind: str) -> pd.DataFrame:
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
        texts = share.map(lambda v: f"{v:.0%} zero" if np.isfinite(v) and v >= 0.005 else "")
    else:
        word = stuck_word(result.spec.activation)
        stuck = at_step[at_step["quantity"] == "saturated_or_dead"].set_index("layer")["value"]
        texts = stuck.map(lambda v: f"{v:.0%} {word}" if np.isfinite(v) and word else "")
    frame = texts.rename("text").reset_index()
    return frame.assign(y=frame["layer"].astype(float) - 0.35)


def ridgeline(
    result: RunResult,
    quantity: str,
    step: int | None,
    x_domain: tuple[float, float],
    color: str,
    title: str | None = None,
) -> alt.LayerChart:
    """One row per layer (fc1 on top) of the distribution of `quantity` at `step`.

    quantity: 'weight_grad' or 'grad_out' (x = log10|g|) or 'activation' / 'pre_activation' (x = value).
    """
    frame = ridge_frame(result, quantity, step)
    is_grad = quantity in ("weight_grad", "grad_out")
    # weight gradients: every layer; activations: the layers before the head
    n_layers = len(result.layer_names) if is_grad else len(result.layer_names) - 1
    x_title = {
        "weight_grad": "log₁₀ |∂L/∂W|",
        "grad_out": "log₁₀ |∂L/∂z| (back-propagated)",
        "activation": "activation value",
        "pre_activation": "pre-activation value",
    }[quantity]
    x = alt.X("bin_start:Q", title=x_title, scale=alt.Scale(domain=list(x_domain), nice=False, clamp=True))
    y_axis = _layer_axis(result.layer_names[:n_layers], None)
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
            y2="top:Q",
            detail="layer:N",
            tooltip=[
                alt.Tooltip("layer:Q", title="layer (fc)"),
                alt.Tooltip("bin_start:Q", format=".2f", title="from"),
                alt.Tooltip("bin_end:Q", format=".2f", title="to"),
                alt.Tooltip("count:Q", format=","),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
    )
    labels = _side_labels(result, step, quantity, "zeros" if is_grad else "stuck")
    text = (
        alt.Chart(labels)
        .mark_text(align="right", baseline="middle", dx=-2, fontSize=11, color="#555")
        .encode(
            x=alt.value("width"), y=alt.Y("y:Q", axis=y_axis, scale=y_scale), text="text:N"
        )  # pinned to the right edge
    )
    height = ROW_HEIGHT * (n_layers + RIDGE_OVERLAP - 0.75)
    return _fit_x(alt.layer(ridges, text, title=title or "").properties(height=height))


# ---------------------------------------------------------------- over training: layer x step heatmap


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
    values = [heatmap_frame(result)["log_norm"] for _, result in runs]
    values = [v for v in values if len(v)]
    if not values:
        return (-6.0, 0.0)
    joined = pd.concat(values)
    low, high = float(joined.min()), float(joined.max())
    return (low, high) if high > low else (low - 1, high + 1)


def gradient_heatmap(
    result: RunResult, color_domain: tuple[float, float], step: int | None = None, title: str | None = None
) -> alt.LayerChart:
    frame = heatmap_frame(result)
    n_layers = len(result.layer_names)
    total = int(result.meta.get("total_steps") or (frame["step_end"].max() if len(frame) else 1))
    cells = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("step_start:Q", title="training step", scale=alt.Scale(domain=[0, max(total, 1)], nice=False)),
            x2="step_end:Q",
            y=alt.Y(
                "layer:O",
                sort="ascending",
                title=None,
                scale=alt.Scale(domain=list(range(1, n_layers + 1))),
                axis=alt.Axis(labelExpr=_label_expr(result.layer_names)),
            ),
            color=alt.Color(
                "log_norm:Q",
                title="log₁₀ ‖∂L/∂W‖",
                scale=alt.Scale(scheme=HEATMAP_SCHEME, domain=list(color_domain), clamp=True),
                legend=alt.Legend(orient="bottom", gradientLength=160),
            ),
            tooltip=[
                alt.Tooltip("layer:O", title="layer (fc)"),
                alt.Tooltip("step_start:Q", title="from step"),
                alt.Tooltip("step_end:Q", title="to step"),
                alt.Tooltip("log_norm:Q", format=".2f"),
            ],
        )
    )
    layers: list[alt.Chart] = [cells]
    if step is not None and step > 0:
        layers.append(_step_rule(step).mark_rule(color="#d62728", strokeWidth=2))
    return _fit_x(alt.layer(*layers, title=title or "").properties(height=ROW_HEIGHT * n_layers))


# ---------------------------------------------------------------- the article's pooled signed histogram


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
    stats = result.layer_stats
    at = snapshot_at(result, step)
    value = stats[(stats["quantity"] == "signed_outside") & (stats["step"] == at)]["value"]
    return int(value.iloc[0]) if len(value) else 0


def article_histogram(
    result: RunResult, step: int | None, y_max: float, color: str, title: str | None = None
) -> alt.Chart:
    frame = article_frame(result, step)
    frame = frame[frame["count"] > 0]
    chart = (
        alt.Chart(frame, title=title or "")
        .mark_rect(color=color, opacity=0.7)
        .encode(
            x=alt.X("bin_start:Q", title="gradient value", scale=alt.Scale(domain=[-1, 1], nice=False)),
            x2="bin_end:Q",
            y=alt.Y("count:Q", title="frequency (log)", scale=alt.Scale(type="log", domain=[0.5, y_max * 2])),
            y2="base:Q",
            tooltip=[
                alt.Tooltip("bin_start:Q", format=".2f", title="from"),
                alt.Tooltip("bin_end:Q", format=".2f", title="to"),
                alt.Tooltip("count:Q", format=","),
            ],
        )
        .properties(height=200)
    )
    return _fit_x(chart)


# ---------------------------------------------------------------- activations: per layer, and over training


def activation_std(runs: Runs, step: int | None) -> alt.Chart:
    """Each hidden layer's activation std at `step`, log y, one line per run (He et al. 2015, figure 2's view)."""
    frame = gradient_flow_frame(runs, step, "act_std")
    return _layer_lines(frame, runs, "hidden layer (input → output)", "activation std", "~g", ("std", ".3g"), 40)


def trace_layers(depth: int, most: int = TRACE_LAYERS) -> list[int]:
    """Up to `most` hidden layers spread evenly from fc1 to fc{depth}, both ends included."""
    if depth <= most:
        return list(range(1, depth + 1))
    return sorted({round(float(v)) for v in np.linspace(1, depth, most)})


def activation_trace_frame(result: RunResult) -> pd.DataFrame:
    """Per snapshot step and traced hidden layer: mean, std, mean ± std (finite rows only)."""
    stats = result.layer_stats
    layers = trace_layers(len(result.layer_names) - 1)
    part = stats[stats["quantity"].isin(["act_mean", "act_std"]) & stats["layer"].isin(layers)]
    columns = ["step", "layer", "layer_name", "epoch", "mean", "std", "low", "high"]
    if part.empty:
        return pd.DataFrame(columns=columns)
    wide = part.pivot_table(index=["step", "layer"], columns="quantity", values="value").reset_index()
    wide = wide.rename(columns={"act_mean": "mean", "act_std": "std"}).dropna(subset=["mean", "std"])
    wide = wide[np.isfinite(wide["mean"]) & np.isfinite(wide["std"])]
    per_epoch = result.meta.get("steps_per_epoch") or 0
    wide["epoch"] = wide["step"] / per_epoch if per_epoch else np.nan
    wide["layer_name"] = wide["layer"].map(result.layer_name)
    wide["low"], wide["high"] = wide["mean"] - wide["std"], wide["mean"] + wide["std"]
    return wide[columns].reset_index(drop=True)


def activation_trace_domain(runs: Runs) -> tuple[float, float]:
    """One y range (mean ± std over every traced layer and step) for every run's panel."""
    frames = [activation_trace_frame(result) for _, result in runs]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return (-1.0, 1.0)
    low = min(float(frame["low"].min()) for frame in frames)
    high = max(float(frame["high"].max()) for frame in frames)
    return (low, high) if high > low else (low - 1, high + 1)


def activation_trace(
    result: RunResult, y_domain: tuple[float, float], step: int | None = None, title: str | None = None
) -> alt.LayerChart:
    """One run's hidden-layer activations over training: mean (line) and ± std (band), one colour per layer
    (Glorot & Bengio 2010, figure 2's view); x is the training step on a symlog axis, so the early snapshots show."""
    frame = activation_trace_frame(result)
    layers = trace_layers(len(result.layer_names) - 1)
    color = alt.Color(
        "layer:O",
        scale=alt.Scale(domain=layers, scheme=LAYER_SCHEME),
        legend=alt.Legend(orient="bottom", title=None, labelExpr="'fc' + datum.value", columns=3, symbolOpacity=1),
    )
    total = int(result.meta.get("total_steps") or (frame["step"].max() if len(frame) else 0))
    x = alt.X(
        "step:Q",
        title="training step (symlog)",
        scale=alt.Scale(type="symlog", domain=[0, max(total, 1)], nice=False),
        axis=alt.Axis(values=[0, *(10**k for k in range(7) if 10**k < total), max(total, 1)], format="~s"),
    )
    y_scale = alt.Scale(domain=list(y_domain), nice=False)
    y = alt.Y("mean:Q", title="activation mean ± std", scale=y_scale)
    base = alt.Chart(frame)
    band = base.mark_area(opacity=0.15).encode(
        x=x, y=alt.Y("low:Q", scale=y_scale, title="activation mean ± std"), y2="high:Q", color=color
    )
    lines = base.mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=x,
        y=y,
        color=color,
        tooltip=[
            "layer_name",
            "step",
            alt.Tooltip("epoch:Q", format=".2f"),
            alt.Tooltip("mean:Q", format=".3g"),
            alt.Tooltip("std:Q", format=".3g"),
        ],
    )
    layers_drawn: list[alt.Chart] = [band, lines]
    if step is not None and step > 0:
        layers_drawn.append(_step_rule(step))
    return _fit_x(alt.layer(*layers_drawn, title=title or "").properties(height=220))


# ---------------------------------------------------------------- depth sweep (all runs, against depth)


def sweep_chart(table: pd.DataFrame, names: Sequence[str], metric: str) -> alt.LayerChart:
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
        title="hidden layers",
        scale=alt.Scale(domain=[min(depths), max(depths)] if len(depths) > 1 else [0, depths[0] + 1], nice=False),
        axis=alt.Axis(values=depths, format="d"),
    )
    if metric == "test_acc":
        frame = _finite(table[["run", "depth", "test_acc"]].rename(columns={"test_acc": "value"}), "value")
        frame = frame.assign(when="after training")
        y = alt.Y("value:Q", title="test accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
        title, tip = "Test accuracy against depth", alt.Tooltip("value:Q", format=".1%", title="test accuracy")
    else:
        long = table.melt(id_vars=["run", "depth"], value_vars=["grad_ratio_init", "grad_ratio_final"], var_name="when")
        long["when"] = long["when"].map({"grad_ratio_init": "at initialisation", "grad_ratio_final": "after training"})
        frame = _finite(long, "value")
        frame = frame[frame["value"] > 0]
        y = alt.Y(
            "value:Q",
            title="fc1 ÷ last hidden (gradient norm)",
            scale=alt.Scale(type="log"),
            axis=alt.Axis(format="~g"),
        )
        title, tip = "Gradient ratio against depth", alt.Tooltip("value:Q", format=".3g", title="fc1 ÷ last hidden")
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
            detail="when:N",
            tooltip=["run:N", "depth:Q", "when:N", tip],
        )
        .properties(height=260)
    )
    return _fit_x(chart)


# ---------------------------------------------------------------- export


def side_by_side(views: Sequence[alt.TopLevelMixin], width: int = 360) -> alt.HConcatChart:
    """The page's charts of one view next to each other at a fixed width, for an SVG/PNG export
    (a concatenated chart cannot carry its parts' fit-to-container autosize)."""
    parts = []
    for view in views:
        part = view.properties(width=width)
        part.autosize = alt.Undefined
        parts.append(part)
    return alt.hconcat(*parts)


def to_svg(views: Sequence[alt.TopLevelMixin], width: int = 360) -> str:
    """`views` side by side as one SVG document (vl-convert, no browser)."""
    return vlc.vegalite_to_svg(side_by_side(views, width).to_dict())
