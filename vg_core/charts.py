"""Altair charts of RunResults for the page (no streamlit here): every builder takes the engine's tidy
frames, filters and pre-aggregates them in pandas, and hands Altair a few hundred rows at most.

Runs are passed as `(name, result)` pairs; a run keeps its colour (by position) in every chart, and
charts that sit side by side take a shared domain (`*_domain` helpers) so their columns compare honestly.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd
import vl_convert as vlc

from .i18n import ENGLISH, N_, Translator, message
from .probes import PERCENTILES, POOLED_LAYER
from .results import RunResult
from .spec import RECURRENT, RunSpec
from .spec import _init_label as init_label
from .summary import run_stuck_word

Runs = Sequence[tuple[str, RunResult]]

# Run 1..4, then the visitor's own runs (vg_page.your_runs); a run keeps its colour in every chart.
RUN_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#eeca3b")
HEATMAP_SCHEME = "viridis"
ROW_HEIGHT = 26  # pixels per layer in the ridgelines and the heatmap
RIDGE_OVERLAP = 1.6  # a ridge may reach this many rows up
HEATMAP_COLUMNS = 100  # steps are averaged into at most this many columns
LABEL_GUTTER = 0.25  # ridgelines leave this share of their x range free on the right for the layer labels
TRACE_LAYERS = 6  # the activations-over-training chart follows at most this many layers (first and last always)
LAYER_SCHEME = "viridis"  # layers coloured along one ramp: the first layer dark, the last light
MAX_LAYER_LABELS = 8  # a horizontal layer axis names at most this many layers (the first and last always)
RATIO_GUIDE = 1e-3  # update ÷ weight per step: Karpathy's rule of thumb for a healthy learning rate
SIGMOID_SLOPE = 0.25  # sigmoid's largest derivative: a plain sigmoid layer shrinks the gradient at least this much
NOTE_COLOR = "#666"
# ReLU's activation std per layer under two inits (He et al. 2015): ×1/√2 under N(0, 1/n), ×1 under Kaiming.
HE_FACTORS = {"lecun_normal": 2**-0.5, "kaiming_normal": 1.0, "kaiming_uniform": 1.0}
# Tick labels: plain numbers between 1e-3 and 1e4, otherwise one significant digit and an exponent ("1e-10").
NUMBER_LABEL = (
    "datum.value == 0 || (abs(datum.value) >= 1e-3 && abs(datum.value) < 1e4) ? format(datum.value, '.4~g') "
    ": replace(format(datum.value, '.1~e'), 'e+', 'e')"
)

# Two lines per view: what it shows, and what to look for.
CAPTIONS = {
    "flow": N_(
        "Each layer's gradient norm at the chosen step (log scale), the input side on the left; the toggle above "
        "picks weight gradients ∂L/∂W or back-propagated ∂L/∂z.  \n"
        "A line falling towards the input is the vanishing gradient. Dotted, for plain sigmoid runs: ×1/4 per layer "
        "from the last hidden layer, sigmoid's steepest slope (the weights scale it further)."
    ),
    "curves": N_(
        "Loss and accuracy at each epoch end, dashed on the training set, solid on the test set; thin: batch loss.  \n"
        "A run stuck at 10% accuracy (chance for 10 digits) is not learning at all."
    ),
    "grad_dist": N_(
        "One row per layer: how many gradient entries fall at each order of magnitude (log₁₀|g|) at that step.  \n"
        "Rows sliding left towards the input mean smaller gradients there; the share of exact zeros is on the right."
    ),
    "act_dist": N_(
        "One row per hidden layer: how its outputs on the fixed held-out probe digits spread at the chosen step; "
        "runs with the same activation share an x axis, each activation has its own (sigmoid 0…1, ReLU 0…).  \n"
        "Sigmoid piled up at 0 or 1 is saturated (its slope ≈ 0); a ReLU unit that is 0 for every input is dead."
    ),
    "heatmap": N_(
        "Each training step's weight-gradient norm per layer, one log colour scale for all runs; red: chosen step.  \n"
        "Dark rows at the top (the first layers) that stay dark mean they never get a useful gradient."
    ),
    "article": N_(
        "The seed article's plot: all parameter gradients pooled, -1..1 in 100 bins, log counts, at that step.  \n"
        "A tall spike at 0 and nothing else means almost every gradient is tiny. Values beyond ±1 are not drawn."
    ),
    "act_std": N_(
        "Each hidden layer's activation standard deviation at the chosen step (log scale), one line per run.  \n"
        "A straight line falling to the right is a signal shrinking by the same factor per layer. Dotted, for plain "
        "ReLU runs: He et al.'s prediction, ×1/√2 per layer under a √(1/n) init, ×1 under Kaiming's √(2/n)."
    ),
    "ratio": N_(
        "Per layer over training: update ÷ weight ‖ΔW‖/‖W‖ of one step (solid) and gradient ÷ weight, the std of "
        "∂L/∂W over the std of W (dashed); log scale, symlog steps.  \n"
        "The grey line is the rule of thumb 1e-3 for the update: far below, a layer barely learns; far above, "
        "training is unstable."
    ),
    "act_trace": N_(
        "Each hidden layer's mean activation over training (line) ± one standard deviation (band); symlog steps.  \n"
        "A sigmoid layer whose mean sinks to 0 with a thin band is saturated; bands narrowing with depth: signal dies."
    ),
    "percentiles": N_(
        "The last hidden layer's activation input over training: its 15th, 50th and 85th percentiles on the probe "
        "digits, all its units pooled; symlog steps (Ioffe & Szegedy 2015, figure 1).  \n"
        "Lines that move or spread apart: the layers above chase a changing input; lines that stay level: the input "
        "holds steady, as batch norm keeps it."
    ),
    "sweep_acc": N_(
        "Final test accuracy of each run's network trained at every depth (points already in the cache).  \n"
        "A line that drops to 10% at large depth: that network no longer trains at all when it is that deep."
    ),
    "sweep_grad": N_(
        "The first layer's weight-gradient norm over the last hidden layer's, solid at initialisation, dashed after "
        "training.  \n"
        "A line falling by orders of magnitude with depth is the vanishing gradient; about 1 means a healthy flow."
    ),
}


def run_names(specs: Sequence[RunSpec]) -> list[str]:
    """Each run's name in legends and column headers: its number, activation and whatever else tells it apart
    ('2 · sigmoid residual'); a single run gets its full label ('1 · sigmoid 5x128 default-init')."""
    if len(specs) == 1:
        return [f"1 · {specs[0].label}"]
    parts = [_label_parts(spec) for spec in specs]
    differing = [k for k in range(len(parts[0])) if len({p[k] for p in parts}) > 1]
    return [
        " ".join([f"{index} · {spec.activation}", *(p[k] for k in differing if p[k])]).strip()
        for index, (spec, p) in enumerate(zip(specs, parts), 1)
    ]


def _label_parts(spec: RunSpec) -> tuple[str, ...]:
    """The per-run parts of a spec's label beyond the activation ('' where one does not apply): model, init,
    normalisation, residual, time steps, recurrent init, forget bias and clipping."""
    recurrent = spec.model in RECURRENT
    return (
        spec.model if spec.model != "mlp" else "",
        init_label(spec),
        f"{spec.norm}-norm" if spec.norm != "none" else "",
        "residual" if spec.residual else "",
        f"T={spec.seq_len}" if recurrent else "",
        f"{spec.recurrent_init}(g={spec.recurrent_gain:g})" if spec.recurrent_init != "default" else "",
        f"forget-bias {spec.forget_bias:g}" if spec.model == "lstm" else "",
        f"clip {spec.clip_norm:g}" if spec.clip_norm > 0 else "",
    )


def color_scale(names: Sequence[str]) -> alt.Scale:
    return alt.Scale(domain=list(names), range=list(RUN_COLORS[: len(names)]))


def run_color(names: Sequence[str], name: str) -> str:
    return RUN_COLORS[list(names).index(name) % len(RUN_COLORS)]


def layer_count(result: RunResult, quantity: str) -> int:
    """How many layers have a histogram of `quantity` (a built-in MLP: depth + 1 gradients, depth activations)."""
    layers = result.histograms.loc[result.histograms["quantity"] == quantity, "layer"]
    return int(layers.max()) if len(layers) else len(result.layer_names)


def _plain(result: RunResult, activation: str) -> int | None:
    """The hidden-layer count of a built-in run with `activation`, no skips and no norm (a theory guide applies),
    else None (a watched run has no spec)."""
    spec = result.spec
    if spec is None or spec.activation != activation or spec.residual or spec.norm != "none":
        return None
    return layer_count(result, "activation")


def layer_names(runs: Runs) -> list[str]:
    """The layer names of a chart shared by `runs`: the longest run's, where every run's names are a prefix of it;
    else plain layer numbers (a built-in MLP's fc3 and a watched model's layer1.0.conv1 are not one axis label)."""
    lists = [result.layer_names for _, result in runs]
    longest = max(lists, key=len, default=[])
    if all(names == longest[: len(names)] for names in lists):
        return longest
    return [str(layer) for layer in range(1, len(longest) + 1)]


def layer_label(names: Sequence[str], layer: int) -> str:
    """Layer `layer` (1 = the first) by name: the one place charts turn a layer number into a label."""
    return names[layer - 1] if 1 <= layer <= len(names) else f"layer {layer}"


def layer_ticks(n_layers: int, most: int = MAX_LAYER_LABELS) -> list[int]:
    """At most `most` evenly spaced layers to label, the first and the last always."""
    if n_layers <= most:
        return list(range(1, n_layers + 1))
    stride = int(np.ceil((n_layers - 1) / (most - 1)))
    ticks = list(range(1, n_layers, stride))
    if n_layers - ticks[-1] < stride:  # too close to the last label to stand beside it
        ticks.pop()
    return [*ticks, n_layers]


def _names_expr(names: Sequence[str]) -> str:
    """A Vega expression naming layer `datum.value` (1-based)."""
    return f"{json.dumps(list(names), ensure_ascii=False)}[datum.value - 1] || 'layer ' + datum.value"


def snapshot_at(result: RunResult, step: int | None) -> int:
    """The latest recorded snapshot at or before `step` (None: the last one); the first if none is."""
    steps = result.snapshot_steps
    if not steps:
        return 0
    if step is None:
        return steps[-1]
    earlier = [s for s in steps if s <= step]
    return earlier[-1] if earlier else steps[0]


def step_label(step: int, steps_per_epoch: int | None, tr: Translator = ENGLISH) -> str:
    if step == 0:
        return tr.gettext(N_("initialisation"))
    if not steps_per_epoch:
        return tr.render(message("step {step:d}", step=step))
    return tr.render(message("step {step:d} (epoch {epoch:.2f})", step=step, epoch=step / steps_per_epoch))


def _layer_axis(names: Sequence[str], title: str | None = "layer", most: int = MAX_LAYER_LABELS) -> alt.Axis:
    return alt.Axis(
        values=layer_ticks(len(names), most),
        labelExpr=_names_expr(names),
        labelOverlap=False,
        title=title,
        grid=False,
        domain=False,
    )


def _fit_x(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Stretch to the container's width but keep the plot's own height (Streamlit's theme would fit both,
    squeezing the plot by the height of its axes, title and legend)."""
    return chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def _number_axis(**kwargs) -> alt.Axis:
    """A value axis with human tick labels (no '10000000000', '6e+23' or '4.000000000000…')."""
    return alt.Axis(labelExpr=NUMBER_LABEL, **kwargs)


def _log_axis(values: pd.Series | np.ndarray) -> alt.Axis:
    """A log axis with human tick labels; over more than two decades only the powers of ten are labelled."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if len(finite) and np.log10(finite.max() / finite.min()) > 2:
        power = "abs(log(datum.value) / LN10 - round(log(datum.value) / LN10)) < 1e-6"
        return alt.Axis(labelExpr=f"{power} ? ({NUMBER_LABEL}) : ''")
    return _number_axis()


def _note(lines: Sequence[str]) -> alt.Chart:
    """Text in the top-left corner of a panel: why it is empty, or what it does not draw."""
    return (
        alt.Chart(pd.DataFrame({"text": ["\n".join(lines)]}))
        .mark_text(align="left", baseline="top", fontSize=12, color=NOTE_COLOR, lineBreak="\n", dx=6, dy=6)
        .encode(x=alt.value(0), y=alt.value(0), text=alt.Text("text:N"))
    )


def _finite(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[np.isfinite(frame[column].to_numpy(dtype=float))]


# ---------------------------------------------------------------- gradient flow (all runs, one chart)


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


def _no_steps(tr: Translator, untrained: str, *results: RunResult) -> str:
    """Why no training step is drawn: `untrained` for 0-epoch runs; a run still in its first steps says so."""
    if any(result.meta.get("total_steps") for result in results):
        return tr.gettext(N_("Training has just started: no training step recorded yet."))
    return tr.gettext(untrained)


def _step_rule(step: int) -> alt.Chart:
    """The chosen step's marker on a chart over training steps (its one row inline, in the spec)."""
    return (
        alt.Chart(alt.Data(values=[{"step": int(step)}]))
        .mark_rule(color="#d62728", strokeDash=[2, 2])
        .encode(x=alt.X("step:Q"))
    )


def heatmap_step_rule(step: int) -> alt.Chart:
    """The chosen step's marker on a heatmap over training steps: solid and wider, to stand out of the cells."""
    return _step_rule(step).mark_rule(color="#d62728", strokeWidth=2)


@functools.cache
def _step_rule_layer() -> dict:
    """_step_rule as a Vega-Lite layer (its step set by with_step_rule)."""
    spec = _step_rule(0).to_dict(validate=False)
    return {key: value for key, value in spec.items() if key not in ("$schema", "config")}


def with_step_rule(spec: dict, marker: dict) -> dict:
    """A layered chart's Vega-Lite `spec` (made without a step) with the step's marker as one more layer: what
    learning_curve(..., step) draws, without building the chart again for every step scrubbed to. `marker` is
    the Vega-Lite data of its one row: inline ({"values": [{"step": s}]}) or a named dataset ({"name": ...})."""
    rule = {**_step_rule_layer(), "data": marker}
    shared = {key: value for key, value in spec.items() if key != "data"}
    if "data" not in spec:
        return {**shared, "layer": [*spec["layer"], rule]}
    # Altair puts data its layers share at the top; with the marker's own row they keep it each, as here
    layers = [layer if "data" in layer else {"data": spec["data"], **layer} for layer in spec["layer"]]
    return {**shared, "layer": [*layers, rule]}


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


def empty_reason(result: RunResult, quantity: str, step: int | None, tr: Translator = ENGLISH) -> str:
    """Why `result` has nothing to draw for `quantity` at `step`, in a few words."""
    at, diverged = snapshot_at(result, step), result.diverged_at_step
    if diverged is not None and at >= diverged:
        return tr.render(
            message("Nothing to draw: the values are NaN (diverged at step {step:,d}).", step=int(diverged))
        )
    if not result.snapshot_steps:
        return tr.gettext(N_("Nothing recorded yet."))
    stats = result.layer_stats
    at_step = stats[(stats["step"] == at) & (stats["layer"] > 0)]
    zeros = at_step[at_step["quantity"] == f"{quantity}_zeros"]["value"]
    bad = at_step[at_step["quantity"].isin([f"{quantity}_nan", f"{quantity}_inf", "act_nan"])]["value"]
    if quantity != "activation" and len(zeros) and zeros.sum() > 0 and not bad.sum():
        return tr.gettext(N_("Nothing to draw: every value is exactly 0 (no gradient reaches these layers)."))
    if bad.sum() > 0:
        return tr.gettext(N_("Nothing to draw: the values are NaN or infinite."))
    return tr.gettext(N_("Nothing to draw at this step."))


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
    return shared_range([heatmap_frame(result)["log_norm"] for _, result in runs], (-6.0, 0.0))


def shared_range(values: Sequence[pd.Series], empty: tuple[float, float]) -> tuple[float, float]:
    """(lowest, highest) over every run's values, widened by 1 each way when they are all equal; `empty` if none."""
    values = [part for part in values if len(part)]
    if not values:
        return empty
    low, high = min(float(part.min()) for part in values), max(float(part.max()) for part in values)
    return (low, high) if high > low else (low - 1, high + 1)


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
            x=alt.X(
                "step_start:Q",
                title=tr.gettext(N_("training step")),
                scale=alt.Scale(domain=[0, max(total, 1)], nice=False),
            ),
            x2=alt.X2("step_end:Q"),
            y=alt.Y(
                "layer:O",
                sort="ascending",
                title=None,
                scale=alt.Scale(domain=list(range(1, n_layers + 1))),
                axis=alt.Axis(labelExpr=_names_expr(names)),
            ),
            color=alt.Color(
                "log_norm:Q",
                title="log₁₀ ‖∂L/∂W‖",
                scale=alt.Scale(scheme=HEATMAP_SCHEME, domain=list(color_domain), clamp=True),
                legend=alt.Legend(orient="bottom", gradientLength=160),
            ),
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


# ---------------------------------------------------------------- activations: per layer, and over training


def activation_std(runs: Runs, step: int | None, tr: Translator = ENGLISH) -> alt.LayerChart:
    """Each hidden layer's activation std at `step`, log y, one line per run (He et al. 2015, figure 2's view),
    with He's per-layer prediction dotted for plain ReLU runs."""
    frame = gradient_flow_frame(runs, step, "act_std")
    x_title, y_title = tr.gettext(N_("hidden layer (input → output)")), tr.gettext(N_("activation std"))
    return _layer_lines(
        frame, he_guide(runs, step), runs, x_title, y_title, (tr.gettext(N_("std")), ".3g"), 40, "act_std", step, tr
    )


def trace_layers(depth: int, most: int = TRACE_LAYERS) -> list[int]:
    """Up to `most` hidden layers spread evenly from fc1 to fc{depth}, both ends included."""
    if depth <= most:
        return list(range(1, depth + 1))
    return sorted({round(float(v)) for v in np.linspace(1, depth, most)})


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


def _training_steps(result: RunResult, frame: pd.DataFrame, tr: Translator) -> alt.X:
    """The x axis of a view over training: the step on a symlog scale, so the early snapshots show."""
    total = int(result.meta.get("total_steps") or (frame["step"].max() if len(frame) else 0))
    return alt.X(
        "step:Q",
        title=tr.gettext(N_("training step (symlog)")),
        scale=alt.Scale(type="symlog", domain=[0, max(total, 1)], nice=False),
        axis=alt.Axis(
            values=[0, *(10**k for k in range(7) if 10**k < total), max(total, 1)],
            labelExpr="format(datum.value, '~s')",  # an explicit format: Vega's own precision gave '0k 0k 1k'
        ),
    )


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
                legend=alt.Legend(orient="bottom", title=None, symbolOpacity=1),
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


# ---------------------------------------------------------------- update and gradient ratios over training

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


# ---------------------------------------------------------------- depth sweep (all runs, against depth)


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


# ---------------------------------------------------------------- export


def side_by_side(views: Sequence[alt.TopLevelMixin], width: int = 360, title: str = "") -> alt.HConcatChart:
    """The page's charts of one view next to each other at a fixed width, for an SVG/PNG export
    (a concatenated chart cannot carry its parts' fit-to-container autosize); `title`'s lines head it."""
    parts = []
    for view in views:
        part = view.properties(width=width)
        part.autosize = alt.Undefined
        parts.append(part)
    lines = title.split("\n")
    heading = alt.TitleParams(lines[0], subtitle=lines[1:], anchor="start") if title else alt.Undefined
    return alt.hconcat(*parts, title=heading)


def to_svg(views: Sequence[alt.TopLevelMixin], width: int = 360, title: str = "") -> str:
    """`views` side by side as one SVG document (vl-convert, no browser), headed by `title` (lines)."""
    return vlc.vegalite_to_svg(side_by_side(views, width, title).to_dict())


def export_title(
    section: str, step: int | None, steps_per_epoch: int | None, grad_kind: str, tr: Translator = ENGLISH
) -> str:
    """The heading of an exported view: what it is, at which step, and which gradients."""
    if grad_kind == "weight_grad":
        gradients = tr.gettext(N_("weight gradients ∂L/∂W"))
    else:
        gradients = tr.gettext(N_("back-propagated gradients ∂L/∂z"))
    when = tr.gettext(N_("each run's last snapshot")) if step is None else step_label(step, steps_per_epoch, tr)
    return section + "\n" + tr.render(message("at {when} · {gradients}", when=when, gradients=gradients))
