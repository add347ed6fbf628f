"""What every chart shares: the runs' names and colours, the captions, the layers' names and ticks, the axes,
the snapshot at a step and the step's marker, the x axis over training, shared ranges, and why a panel is empty."""

from __future__ import annotations

import functools
import json
import textwrap
from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from ..i18n import ENGLISH, N_, Translator, message
from ..results import RunResult
from ..spec import RECURRENT, RunSpec
from ..spec import _init_label as init_label

Runs = Sequence[tuple[str, RunResult]]

# Run 1..4, then the visitor's own runs (vg_page.your_runs); a run keeps its colour in every chart.
RUN_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#eeca3b")
HEATMAP_SCHEME = "viridis"
ROW_HEIGHT = 26  # pixels per layer in the ridgelines and the heatmap
RIDGE_OVERLAP = 1.6  # a ridge may reach this many rows up
TRACE_LAYERS = 6  # the activations-over-training chart follows at most this many layers (first and last always)
LAYER_SCHEME = "viridis"  # layers coloured along one ramp: the first layer dark, the last light
MAX_LAYER_LABELS = 8  # a horizontal layer axis names at most this many layers (the first and last always)
NOTE_COLOR = "#666"
NOTE_CHARS = 24  # a note's lines wrap here: four runs side by side in a 1,400-pixel window hold about 28 a line
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


def note_lines(lines: Sequence[str]) -> list[str]:
    """`lines` wrapped at NOTE_CHARS characters (Vega neither wraps a text mark nor shows what passes its panel)."""
    return [part for line in lines for part in textwrap.wrap(line, NOTE_CHARS) or [""]]


def _note(lines: Sequence[str]) -> alt.Chart:
    """Text in the top-left corner of a panel: why it is empty, or what it does not draw (wrapped to fit)."""
    return (
        alt.Chart(pd.DataFrame({"text": ["\n".join(note_lines(lines))]}))
        .mark_text(align="left", baseline="top", fontSize=12, color=NOTE_COLOR, lineBreak="\n", dx=6, dy=6)
        .encode(x=alt.value(0), y=alt.value(0), text=alt.Text("text:N"))
    )


def _finite(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[np.isfinite(frame[column].to_numpy(dtype=float))]


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


def shared_range(values: Sequence[pd.Series], empty: tuple[float, float]) -> tuple[float, float]:
    """(lowest, highest) over every run's values, widened by 1 each way when they are all equal; `empty` if none."""
    values = [part for part in values if len(part)]
    if not values:
        return empty
    low, high = min(float(part.min()) for part in values), max(float(part.max()) for part in values)
    return (low, high) if high > low else (low - 1, high + 1)


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


def trace_layers(depth: int, most: int = TRACE_LAYERS) -> list[int]:
    """Up to `most` hidden layers spread evenly from fc1 to fc{depth}, both ends included."""
    if depth <= most:
        return list(range(1, depth + 1))
    return sorted({round(float(v)) for v in np.linspace(1, depth, most)})


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


def heatmap_x(total: int, tr: Translator) -> dict[str, alt.X | alt.X2]:
    """A heatmap's x encodings: each cell from its step_start to its step_end, over the run's `total` steps."""
    scale = alt.Scale(domain=[0, max(total, 1)], nice=False)
    return {"x": alt.X("step_start:Q", title=tr.gettext(N_("training step")), scale=scale), "x2": alt.X2("step_end:Q")}


def heatmap_color(title: str, domain: tuple[float, float]) -> alt.Color:
    """A heatmap's colour: log_norm on one scale shared by the runs (`domain`), its legend below."""
    return alt.Color(
        "log_norm:Q",
        title=title,
        scale=alt.Scale(scheme=HEATMAP_SCHEME, domain=list(domain), clamp=True),
        legend=alt.Legend(orient="bottom", gradientLength=120),  # in a column of four runs 160 cut its last label
    )
