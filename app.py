"""Vanishing Gradient Explorer: `streamlit run app.py`. Layout and widgets only; the charts are in vg_core.charts.

The sidebar's state lives in the URL query string, so a link restores the page exactly:
    preset=<key>                                    the preset the controls were filled from: activations, article,
                                                    init, rescue, scale, or a paper reproduction (glorot-init,
                                                    glorot-saturation, he-init, swish-depth, he-resnet, ioffe-bn)
    dataset, n_train, depth, width, epochs, batch_size, optimizer, lr, momentum, seed, device
                                                    shared by every run; names and ranges are RunSpec's
    run1..run4=<activation>                         one per run shown (1 to 4)
    runN_init, runN_std, runN_residual, runN_norm    run N's init, normal-init σ, residual skips, normalisation;
                                                    runN=off drops the preset's run N, unnamed runs are the preset's
    runN_model, runN_clip                           run N's model (mlp, cnn, rnn, lstm, gru) and gradient clipping;
    runN_seq, runN_rinit, runN_rgain, runN_fbias    a recurrent run's time steps, recurrent init, gain, forget bias
    step, grad=weights|backprop                     the training step scrubbed to and the gradients shown
e.g. ?preset=activations&depth=8&run1=sigmoid&run2=relu. A bad value is replaced by the preset's, with a
warning; see vg_core.presets.Comparison.from_params and vg_core.pagestate.View.

Environment: VG_CACHE_DIR / VG_CACHE_MAX_MB (the on-disk result cache), VG_TORCH_THREADS (default 1),
VG_MAX_TRAININGS (trainings at once across all visitors, default 1), VG_MEMORY_RUNS (results kept in memory,
default 12), VG_RUNS_DIR (saved runs offered under "Your runs", see vg_page.your_runs), VG_PAGE_BUDGET_S
(estimated seconds a visitor's comparison or sweep may train, default 900).
"""

from __future__ import annotations

import functools
import gc
import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
import torch
from streamlit.delta_generator import DeltaGenerator

from vg_core import budget, charts, time_charts, turns
from vg_core import pagestate as ps
from vg_core.cache import ResultCache, cache_dir, env_number
from vg_core.data import DataError
from vg_core.i18n import N_, message, plural_message
from vg_core.presets import DEFAULT_PRESET, MAX_RUNS, PRESETS, Comparison
from vg_core.results import RunResult
from vg_core.spec import CHOICES, RANGES, RECURRENT, SEQ_LENS, RunSpec, SpecError
from vg_core.sweep import Sweep, run_sweep
from vg_core.train import Progress
from vg_page import language, widgets, your_runs
from vg_page import tour as tour_page
from vg_page.drawn import Drawn, Marked, Slot

torch.set_num_threads(int(env_number("VG_TORCH_THREADS", 1, 1, 256)))  # small nets: threads only contend

REDRAW_S = 2.0  # at most one chart redraw every two seconds while training, page-wide (the browser redraws too)
MEMO_ITEMS = 64  # charts and verdicts kept (a few pages' worth; each holds only its own small frames)
PROGRESS_S = 0.25  # progress-bar updates (each is also where a changed page stops the training)
# Between snapshots (a late epoch can take minutes), a run's charts not redrawn for LIVE_S show a probe of the
# model as it is now, shown and not recorded: at most every LIVE_S, and never more than LIVE_SHARE of the time.
LIVE_S = 3.0
LIVE_SHARE = 0.1
OFF = ps.OFF
PER_RUN_VIEWS = ("grad_dist", "act_dist", "ratio", "heatmap", "article", "act_trace", "percentiles")
TIME_VIEWS = ("time_dist", "time_heatmap")  # per run, in the through-time section (recurrent runs only)
BROWSER_DRAW_S = 1.0  # a browser's first visit: drawn, idle this long, then trained (let_the_browser_draw)
BROWSER_DREW, TIMER_ARMED = "browser_drew", "training_timer_armed"  # session state of let_the_browser_draw
SWEEP_ASKED = "sweep_asked"  # session state: the key of the comparison whose sweep's button was pressed
RECURRENT_HELP = N_("The hidden-to-hidden matrix: PyTorch's default, orthogonal × gain, or identity × gain (IRNN, rnn)")


def _(text: str) -> str:
    """`text` in the language shown (vg_core.i18n; the extractor finds every _("..."))."""
    return language.tr().gettext(text)


def say(item: object) -> str:
    """A Message (or msgid) rendered in the language shown."""
    return language.tr().render(item)


def reason(err: Exception) -> str:
    """Why `err` was raised, in the language shown (a SpecError carries a Message; other errors their text)."""
    if isinstance(err, SpecError):
        return say(err.message)
    return say(err.args[0]) if err.args else str(err)


# ---------------------------------------------------------------- process-wide resources (bounded)


@st.cache_resource(max_entries=4)
def _result_cache(root: str) -> ResultCache:
    return ResultCache(root)


def result_cache() -> ResultCache:
    """The on-disk cache at $VG_CACHE_DIR (one object per folder, shared by every visitor)."""
    return _result_cache(str(cache_dir()))


@st.cache_resource(max_entries=4)
def _memory(root: str) -> ps.ResultMemory:
    return ps.ResultMemory(_result_cache(root), int(env_number("VG_MEMORY_RUNS", 12, 1, 1000)))


def memory() -> ps.ResultMemory:
    return _memory(str(cache_dir()))


@st.cache_resource
def built() -> ps.Memo:
    """Charts and verdicts built for the page, by what they show (Page.memo)."""
    return ps.Memo(MEMO_ITEMS)


@st.cache_resource(show_spinner=False)
def heap_frozen() -> bool:
    """Once per server: what is alive after the first run's imports (torch, pandas, Altair, Streamlit: about
    280,000 objects, nearly all of them for good) moved out of the garbage collector's sight (gc.freeze).
    Streamlit collects garbage after every script run, and each full collection walked all of them: 0.1-0.3 s
    of held GIL after every scrub, switch and visit, during which the finished run's last messages waited."""
    gc.freeze()
    return True


@st.cache_resource
def training_queue() -> turns.TrainingQueue:
    return turns.TrainingQueue(int(env_number("VG_MAX_TRAININGS", 1, 1, 64)))


def wait_for_turn(say: Callable[[str], object]) -> int:
    """A ticket in the training queue, once it is this visitor's turn; `say` shows the place in line."""
    queue = training_queue()
    ticket = queue.join()
    try:
        while not queue.turn(ticket):
            say(turns.ahead_text(queue.ahead(ticket)))
            time.sleep(0.5)
    except BaseException:  # the visitor left or changed the page while waiting
        queue.leave(ticket)
        raise
    return ticket


# ---------------------------------------------------------------- sidebar: preset, form, URL state


def show(comparison: Comparison, grad_kind: str | None = None) -> None:
    """Make `comparison` the applied one: sidebar, URL and the charts follow."""
    st.session_state.update(ps.widget_values(comparison))
    st.session_state["applied"] = comparison
    st.session_state["grad_kind"] = grad_kind or PRESETS[comparison.preset].grad_kind


def pick_preset() -> None:
    if st.session_state["w_preset"] is not None:
        show(Comparison.from_preset(st.session_state["w_preset"]))
    st.session_state.update(notices=[], form_error=None)


def apply_form() -> None:
    """Apply: the sidebar's values become the applied comparison, or an error says why not."""
    comparison, problems = from_widgets()
    if comparison is None:
        st.session_state["form_error"] = say(
            message("Not applied: {problems}", problems=ps.plain(" ".join(say(p) for p in problems)))
        )
    else:
        st.session_state.update(applied=comparison, notices=[], form_error=None)
        st.session_state["w_preset"] = ps.widget_values(comparison)["w_preset"]


def from_widgets() -> tuple[Comparison | None, list[str]]:
    params = ps.widget_params(st.session_state, st.session_state["applied"].preset)
    comparison, problems = Comparison.from_params(params, ps.available_devices())
    return (None, problems) if problems else (comparison, [])


def number(label: str, name: str, key: str, step: float | None = None, help: str | None = None) -> None:
    kind, low, high = RANGES[name]
    if kind is int:
        widgets.number_input(label, int(low), int(high), key, step=int(step or 1), help=help)
    else:
        widgets.number_input(label, float(low), float(high), key, step=step, format="%g", help=help)


def sidebar() -> None:
    """The preset picker, then the settings in a form with its Apply button at the top (always in reach):
    edits are sent only with Apply, in one rerun of the page, so nothing trains or stops while a value is
    changed, and Apply stops a training in progress at once."""
    with st.sidebar:
        language.picker()
        widgets.selectbox(
            _("Preset"),
            list(PRESETS),
            "w_preset",
            format_func={key: language.preset_title(key, language.tr()) for key in PRESETS}.get,
            on_change=pick_preset,
            placeholder=_("Your own comparison"),  # the page says how to start again from a preset
        )
        with st.form("settings", border=False):
            st.form_submit_button(
                _("Apply and train"), type="primary", width="stretch", on_click=apply_form, key="apply"
            )
            if st.session_state.get("form_error"):
                st.error(st.session_state["form_error"])
            settings()
        st.caption(_("The address bar holds these settings, the step and the gradients shown: copy it to share."))
    your_runs.sidebar_section()


def settings() -> None:
    """Every setting of the comparison (inside the sidebar's form: sent with Apply)."""
    st.markdown(_("**Shared by every run**"))
    widgets.selectbox(
        _("Dataset"),
        CHOICES["dataset"],
        "w_dataset",
        format_func={key: _(label) for key, label in ps.DATASET_LABELS.items()}.get,
    )
    left, right = st.columns(2)
    with left:
        number(_("Training samples"), "n_train", "w_n_train", 1000, _("0 = the whole training set"))
        number(_("Hidden layers"), "depth", "w_depth")
        number(_("Epochs"), "epochs", "w_epochs", help=language.glossary("epoch"))
        widgets.selectbox(_("Optimizer"), CHOICES["optimizer"], "w_optimizer")
        number(_("Momentum"), "momentum", "w_momentum", 0.05, _("SGD only"))
    with right:
        number(_("Units per layer"), "width", "w_width", 16)
        number(_("Batch size"), "batch_size", "w_batch_size", 16, help=language.glossary("batch"))
        number(_("Seed"), "seed", "w_seed")
        number(_("Learning rate"), "lr", "w_lr", 0.005)
        widgets.selectbox(_("Device"), ps.available_devices(), "w_device")
    for index in range(1, MAX_RUNS + 1):
        active = st.session_state.get(f"w_run{index}_activation", OFF) != OFF
        with st.expander(say(message("Run {index:d}", index=index)), expanded=active):
            options = CHOICES["activation"] if index == 1 else (OFF, *CHOICES["activation"])
            widgets.selectbox(_("Activation"), options, f"w_run{index}_activation", help=language.glossary("sigma"))
            left, right = st.columns(2)
            init_help = language.glossary(*CHOICES["init"])
            widgets.selectbox(_("Init"), CHOICES["init"], f"w_run{index}_init", left, help=init_help)
            with right:
                number(_("σ (normal init)"), "init_std", f"w_run{index}_init_std", 0.01, language.glossary("normal"))
            model_settings(index)


def model_settings(index: int) -> None:
    """Run `index`'s model, clipping, and the fields its model has (pagestate.family_widgets)."""
    key = f"w_run{index}_{{}}".format
    left, right = st.columns(2)
    model_help = _("mlp, cnn, or a recurrent net (rnn, lstm, gru)")
    widgets.selectbox(_("Model"), CHOICES["model"], key("model"), left, help=model_help)
    with right:
        number(_("Clip gradient norm"), "clip_norm", key("clip_norm"), 0.5, _("The gradient's global norm; 0 = off"))
    shown = ps.family_widgets(st.session_state, index)
    for name in shown:  # a widget drawn again after being hidden starts from RunSpec's default
        st.session_state.setdefault(key(name), getattr(RunSpec, name))
    if "norm" in shown:  # full width: in half the sidebar both labels were cut ("Normalisatio n", "Resid...")
        widgets.selectbox(_("Normalisation"), CHOICES["norm"], key("norm"), help=language.glossary("batch norm"))
        widgets.checkbox(_("Residual skips"), key("residual"), help=language.glossary("skip"))
        return
    left, right = st.columns(2)
    steps_help = _("784 / steps pixels per step; 28 = a row each")
    widgets.selectbox(_("Time steps"), SEQ_LENS, key("seq_len"), left, help=steps_help)
    widgets.selectbox(
        _("Recurrent init"), CHOICES["recurrent_init"], key("recurrent_init"), right, help=_(RECURRENT_HELP)
    )
    left, right = st.columns(2)
    if "recurrent_gain" in shown:
        with left:
            number(_("Recurrent gain"), "recurrent_gain", key("recurrent_gain"), 0.1, _("Scales the recurrent matrix"))
    if "forget_bias" in shown:
        with right:
            number(_("Forget-gate bias"), "forget_bias", key("forget_bias"), 0.5, _("LSTM: b_f; > 0 keeps memory"))


# ---------------------------------------------------------------- main area


Slots = dict[str, list[Slot]]  # a view's key -> where each of its charts goes


@dataclass
class Page:
    """The placeholders of one page, filled from whatever results exist (complete or still training)."""

    names: list[str]
    results: list[RunResult | None]
    keeps: bool = False  # its charts stay in place from one rerun to the next (Slot): no run left to train
    step: int | None = None  # None: each run's latest snapshot
    grad_kind: str = "weight_grad"
    status: list[DeltaGenerator] = field(default_factory=list)
    verdicts: list[DeltaGenerator] = field(default_factory=list)
    slots: dict[str, list[Slot]] = field(default_factory=dict)
    exports: dict[str, DeltaGenerator] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # each section's heading, for its export
    redraws: ps.Throttle = field(default_factory=lambda: ps.Throttle(REDRAW_S))  # by every run that trains

    @property
    def ready(self) -> list[tuple[str, RunResult]]:
        return [(name, result) for name, result in zip(self.names, self.results) if result is not None]

    def section(
        self, key: str, title: str, folded: bool, slots: Callable[[], Slots], caption: str | None = None
    ) -> None:
        """A chart section: heading, SVG button, caption, and the `slots()` its charts are drawn in. A `folded`
        section is an expander that makes its slots, so that its charts are built and drawn, only while open."""
        terms = language.glossary(*language.SECTION_TERMS.get(key, ()))
        caption = caption or _(charts.CAPTIONS[key])
        self.titles[key] = title
        if not folded:
            head, button = st.columns([5, 1], vertical_alignment="bottom")
            head.subheader(title, help=terms)
            self.exports[key] = button.empty()
            st.caption(caption)
            self.slots.update(slots())
            return
        box = st.expander(title, key=f"section-{key}", on_change="rerun")  # lazy: closed, it costs nothing
        if box.open:
            with box:
                text, button = st.columns([5, 1], vertical_alignment="bottom")
                text.caption(caption, help=terms)
                self.exports[key] = button.empty()
                self.slots.update(slots())

    def slot(self, parent: Any = st) -> Slot:
        return Slot(parent, self.keeps)

    def run_slots(self) -> list[Slot]:
        """One slot per run, side by side."""
        return [self.slot(column) for column in run_columns(len(self.names))]

    def curve_slots(self) -> Slots:
        """Loss and accuracy, side by side."""
        return {"curves": [self.slot(column) for column in st.columns(2)]}

    def activation_slots(self) -> Slots:
        """He's per-layer std (all runs) first, then each run's activations over training, in one row."""
        columns = st.columns(1 + len(self.names))
        return {"act_std": [self.slot(columns[0])], "act_trace": [self.slot(column) for column in columns[1:]]}

    def time_slots(self) -> Slots:
        """Through time (a comparison with a recurrent run): ‖∂L/∂h_t‖ over t for all runs, then per run its
        ridgelines over time steps and its time step × training step heatmap."""
        return {"time_flow": [self.slot()], **{key: self.run_slots() for key in TIME_VIEWS}}

    def memo(self, view: str, build: Callable[[], Any], at_step: bool = True) -> Any:
        """`build()`, or what it gave before for this view of the same results, gradients, language and step
        (any step unless `at_step`): scrubbing back, a revisit and every other visitor build nothing again."""
        step = self.step if at_step else None
        return built().get((view, self.grad_kind, step, ps.results_key(self.ready), language.current()), build)

    def draw_shared(self) -> None:
        """The charts of all runs together, in the sections drawn."""
        ready, step, tr = self.ready, self.step, language.tr()
        if not ready:
            return

        def curve(metric: str) -> Drawn | Marked:  # its lines do not change with the step: only the marker
            made = functools.partial(charts.learning_curve, ready, metric, None, tr)
            drawn = self.memo(f"curve-{metric}", lambda: Drawn(made()), at_step=False)
            return drawn if step is None else Marked(drawn, step)

        shared = {
            "time_flow": lambda: [time_charts.time_flow(ready, step, tr)],
            "flow": lambda: [charts.gradient_flow(ready, step, f"{self.grad_kind}_norm", tr)],
            "curves": lambda: [curve("loss"), curve("acc")],
            "act_std": lambda: [charts.activation_std(ready, step, tr)],
        }
        for key, build in shared.items():
            if key in self.slots:
                views = build() if key == "curves" else self.memo(key, lambda build=build: [Drawn(v) for v in build()])
                for slot, view in zip(self.slots[key], views):
                    slot.draw(view)

    def per_run_charts(self, only: int | None = None) -> dict[str, list[Drawn | None]]:
        """Each per-run view drawn (its section open): its chart for every run (None where a run has no result,
        or is not `only`), on axes and colour scales shared by all the runs that have results."""
        drawn = [key for key in (*PER_RUN_VIEWS, *TIME_VIEWS) if key in self.slots]
        makers = {key: per_run_maker(key, self.ready, self.grad_kind, self.step) for key in drawn}
        built: dict[str, list[Drawn | None]] = {key: [] for key in drawn}
        for index, (name, result) in enumerate(zip(self.names, self.results)):
            skip = result is None or (only is not None and index != only)
            color = charts.run_color(self.names, name)
            for key, make in makers.items():
                made = functools.partial(make, name, result, color)
                view = None if skip else self.memo(f"{key}-{index}", lambda made=made: Drawn(made()))
                built[key].append(view)
        return built

    def draw_runs(self, only: int | None = None) -> dict[str, list[Drawn | None]]:
        built = self.per_run_charts(only)
        for key, views in built.items():
            for index, view in enumerate(views):
                if view is not None:
                    self.slots[key][index].draw(view)
        return built

    def redraw(self, index: int, since: float | None = None) -> None:
        """Run `index`'s new state drawn while training (the shared charts, its own and its verdicts); `since`:
        when the work for it began (its partial result made), for `redraws`."""
        since = time.monotonic() if since is None else since
        self.draw_shared()
        self.draw_runs(only=index)
        self.draw_verdicts(index)
        self.redraws.done(since)

    def draw_verdicts(self, index: int) -> None:
        result = self.results[index]
        if result is None:
            return
        lines = self.memo(
            f"verdicts-{index}", lambda: ps.verdict_lines(result, self.grad_kind, self.step, language.tr())
        )
        self.verdicts[index].markdown("  \n".join(lines))

    def draw_exports(self, built: dict[str, list[Drawn | None]]) -> None:
        """One SVG button per section (made on click, with vl-convert); PNG is in each chart's own menu."""
        ready, step, tr = self.ready, self.step, language.tr()
        per_epoch = next((result.meta.get("steps_per_epoch") for _, result in ready), None)
        views: dict[str, Callable[[], list[alt.TopLevelMixin]]] = {
            "flow": lambda: [charts.gradient_flow(ready, step, f"{self.grad_kind}_norm", tr)],
            "curves": lambda: [charts.learning_curve(ready, metric, step, tr) for metric in ("loss", "acc")],
            "act": lambda: [
                charts.activation_std(ready, step, tr),
                *(drawn.view for drawn in built["act_trace"] if drawn is not None),
            ],
        }
        for key in PER_RUN_VIEWS:
            views[key] = lambda key=key: [drawn.view for drawn in built[key] if drawn is not None]
        views["time"] = lambda: [
            time_charts.time_flow(ready, step, tr),
            *(drawn.view for key in TIME_VIEWS for drawn in built.get(key, []) if drawn is not None),
        ]
        for key, slot in self.exports.items():
            title = charts.export_title(self.titles[key], step, per_epoch, self.grad_kind, tr)
            slot.download_button(
                "SVG",
                data=lambda key=key, title=title: charts.to_svg(views[key](), 520 if key == "flow" else 360, title),
                file_name=ps.svg_name(key, step, self.grad_kind),
                mime="image/svg+xml",
                on_click="ignore",
                key=f"svg-{key}",
                help=_("These charts as one SVG file (for a PNG: the ⋯ menu on a chart)"),
            )


def run_columns(count: int) -> list[DeltaGenerator]:
    """One column per run, the page's full width shared among them."""
    return st.columns(count)


def per_run_maker(
    key: str, ready: list[tuple[str, RunResult]], grad_kind: str, step: int | None
) -> Callable[[str, RunResult, str], alt.TopLevelMixin]:
    """View `key`'s chart maker, (name, result, colour) -> chart, on the domain the `ready` runs share."""
    tr = language.tr()
    if key in ("grad_dist", "act_dist"):
        grad = charts.ridge_domain(ready, grad_kind, step) if key == "grad_dist" else None
        act = charts.activation_domains(ready, step) if key == "act_dist" else {}
        quantity = grad_kind if key == "grad_dist" else "activation"
        return lambda name, result, color: charts.ridgeline(
            result, quantity, step, grad or act[charts.activation_of(result)], color, name, tr
        )
    if key == "ratio":
        ratio = charts.ratio_domain(ready)
        return lambda name, result, color: charts.ratio_chart(result, ratio, step, name, tr)
    if key == "heatmap":
        heat = charts.heatmap_domain(ready)
        return lambda name, result, color: charts.gradient_heatmap(result, heat, step, name, tr)
    if key == "article":
        peak = charts.article_max(ready, step)
        return lambda name, result, color: charts.article_histogram(result, step, peak, color, name, tr)
    if key == "act_trace":
        trace = charts.activation_trace_domain(ready)
        return lambda name, result, color: charts.activation_trace(result, trace, step, name, tr)
    if key == "percentiles":
        percentiles = charts.percentile_domain(ready)
        return lambda name, result, color: charts.percentile_trace(result, percentiles, step, name, tr)
    if key == "time_dist":
        time_grad = time_charts.time_ridge_domain(ready, step)
        return lambda name, result, color: time_charts.time_ridgeline(name, result, step, time_grad, color, tr)
    time_heat = time_charts.time_heatmap_domain(ready)
    return lambda name, result, color: time_charts.time_heatmap(name, result, time_heat, step, tr)


def layout(comparison: Comparison, yours: list[tuple[str, RunResult]]) -> Page:
    """The comparison's runs, then the visitor's own runs (`yours`: name, result) as more columns."""
    specs = comparison.specs
    names = charts.run_names(specs) + [name for name, _ in yours]
    results = [memory().get(spec) for spec in specs] + [result for _, result in yours]
    page = Page(names, results, keeps=None not in results)
    labels = [spec.label for spec in specs] + [result.label for _, result in yours]
    for column, name, label in zip(run_columns(len(names)), names, labels):
        with column:
            color = charts.run_color(names, name)
            st.markdown(
                f"<span style='color:{color};font-size:1.15rem;font-weight:600'>■ {html.escape(name)}</span>",
                unsafe_allow_html=True,
            )
            if len(names) > 1:
                st.caption(label)  # the whole run; the name above keeps what tells the runs apart
            page.status.append(st.empty())
            page.verdicts.append(st.empty())
    return page


def controls(page: Page, comparison: Comparison) -> None:
    """The step scrubber (over every run's recorded snapshots) and the gradient kind."""
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    steps = sorted({step for _, result in page.ready for step in result.snapshot_steps})
    with right:
        kind = widgets.segmented_control(
            _("Gradients shown"),
            ["weight_grad", "grad_out"],
            "grad_kind",  # its value is set with the preset (see show)
            format_func={"weight_grad": _("weights ∂L/∂W"), "grad_out": _("back-propagated ∂L/∂z")}.get,
        )
        page.grad_kind = kind or "weight_grad"
    with left:
        if all(result is not None for result in page.results) and len(steps) > 1:
            per_epoch = next(iter(r.meta.get("steps_per_epoch") for _, r in page.ready), None)
            linked_key, linked_step = st.session_state.get("linked_step", (None, None))
            wanted = linked_step if linked_key == comparison.key() else None  # the step a link asked for
            page.step = st.select_slider(
                _("Training step (snapshots; initialisation first)"),
                options=steps,
                value=ps.nearest_step(steps, wanted) if wanted is not None else steps[-1],
                format_func=functools.partial(charts.step_label, steps_per_epoch=per_epoch, tr=language.tr()),
                key=f"step-{comparison.key()}",
            )
        elif all(result is not None for result in page.results):
            st.caption(_("Recorded at initialisation only (0 epochs): every chart shows the untrained networks."))
        else:
            st.caption(
                _("Training: the charts follow each run's latest snapshot; the step scrubber appears when done.")
            )
    view = ps.View(page.step, page.grad_kind)
    if page.step is None:  # no scrubber yet: keep the step a link asked for until there is one
        linked_key, linked_step = st.session_state.get("linked_step", (None, None))
        view = ps.View(linked_step if linked_key == comparison.key() else None, page.grad_kind)
    params = {**comparison.to_params(), **view.to_params(), **language.params(), **tour_page.params()}
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def train_missing(page: Page, comparison: Comparison) -> bool:
    """Train the runs not yet cached, redrawing as snapshots arrive; True if any was trained."""
    trained = False
    for index, spec in enumerate(comparison.specs):
        if page.results[index] is not None:
            continue
        bar = page.status[index]
        ticket = wait_for_turn(bar.info)
        try:
            result, _ = result_cache().get_or_train(spec, live_callback(page, index))
        except (SpecError, DataError, OSError) as err:
            bar.error(say(message("Cannot train this run: {error}", error=ps.plain(reason(err)))))
            continue
        except (MemoryError, RuntimeError) as err:  # e.g. torch cannot allocate: say so, keep the page
            bar.error(
                say(
                    message(
                        "This run ran out of resources ({error}); try a smaller width, depth or batch.",
                        error=type(err).__name__,
                    )
                )
            )
            continue
        finally:
            training_queue().leave(ticket)
        memory().put(result)
        ps.release_memory()
        page.results[index] = result
        page.status[index].caption(ps.status_line(result, language.tr()))
        if any(other is None for other in page.results):  # more to train: show this run finished meanwhile
            page.redraw(index)
        trained = True
    return trained


def live_callback(page: Page, index: int) -> Callable[[Progress], None]:
    """Progress bar at every step (throttled); charts at snapshots when the page's redraw is due (a run that
    starts right after another has finished and been drawn joins the charts at the next one), and between
    snapshots at a live probe when the run's charts are LIVE_S old, so that they keep up with the bar."""
    bar = page.status[index].progress(0.0, text=_("Starting…"))
    reports = ps.Throttle(PROGRESS_S)
    lives = ps.Throttle(LIVE_S, share=LIVE_SHARE, at=time.monotonic())  # this run's redraws; its start: dense snapshots

    def callback(progress: Progress) -> None:
        now = time.monotonic()
        if reports.due(now) or progress.step == progress.total_steps:  # the bar first: the charts follow it
            text = say(
                message(
                    "Training: step {step:,d} of {total:,d} (epoch {epoch:.1f})",
                    step=progress.step,
                    total=progress.total_steps,
                    epoch=progress.epoch,
                )
            )
            bar.progress(min(progress.fraction, 1.0), text=text)
            reports.done(now, now)
        partial = progress.partial or (progress.live if lives.due(now) else None)
        if partial is not None and page.redraws.due(now):
            page.results[index] = partial()
            page.redraw(index, since=now)
            lives.done(now)
            ps.trim_heap()  # what the last snapshot's frames and charts freed, back to the OS: a lower peak

    return callback


def export_buttons(page: Page) -> None:
    st.subheader(_("Export"))
    st.caption(
        _(
            "Each run's recorded frames as CSV: per-epoch history, per-layer statistics, histogram counts (and a "
            "recurrent run's through-time statistics and histograms). The first line of each file is `# spec: {...}`, "
            "the run's full settings as JSON (pandas: `read_csv(path, comment='#')`)."
        )
    )
    for index, (column, name, result) in enumerate(zip(run_columns(len(page.names)), page.names, page.results)):
        if result is None:
            continue
        with column:
            st.caption(name)
            stem = ps.export_stem(result.label)
            frames = ("history", "layer_stats", "histograms")
            if len(result.time_stats):  # a recurrent run
                frames += ("time_stats", "time_histograms")
            for frame in frames:
                st.download_button(
                    f"{frame}.csv",
                    data=lambda result=result, frame=frame: ps.csv_export(result, frame),
                    file_name=f"{stem}-{frame}.csv",
                    mime="text/csv",
                    on_click="ignore",
                    key=f"csv-{index}-{result.key}-{frame}",  # two runs may be the same
                    icon=":material/download:",
                )


@dataclass
class SweepView:
    """The depth-sweep section as drawn: its sweeps, what the cache holds, and whether to train the rest."""

    sweeps: list[Sweep]
    table: pd.DataFrame
    missing: list[RunSpec]
    progress: DeltaGenerator


def sweep_section(comparison: Comparison, names: list[str], open_first: bool = False) -> SweepView | None:
    """Accuracy and gradient ratio against depth from the cache (nothing trains here); None while closed.
    Open at first on a sweep preset or when `open_first` (a tour stop about it)."""
    main_view = bool(PRESETS[comparison.preset].depths) or open_first
    box = st.expander(
        _("Depth sweep: every run at several depths"),
        expanded=main_view,
        key=f"sweep-open-{comparison.preset}-{main_view}",
        on_change="rerun",  # lazy: a closed section reads nothing from the cache
        icon=":material/stacked_line_chart:",
    )
    if not box.open:
        return None
    with box:
        st.caption(
            _(
                "Each run of this comparison, with its own settings, trained once per depth; points already in the "
                "cache are drawn, the button trains the others (each is cached, so an interrupted sweep resumes)."
            )
        )
        text = st.text_input(
            _("Depths (hidden layers, comma-separated)"),
            ps.default_depths(comparison),
            key=f"depths-{comparison.key()}",
        )
        try:
            sweeps = ps.comparison_sweeps(comparison, text)
        except SpecError as err:
            st.error(
                say(message("Cannot sweep these depths: {error}", error=ps.plain(reason(err).removeprefix("depths: "))))
            )
            return None
        table, missing = ps.sweep_table(sweeps, names, result_cache())
        if len(table):
            left, right = st.columns(2)
            with left:
                Slot(st, keeps=True).draw(charts.sweep_chart(table, names, "test_acc", language.tr()))
                st.caption(_(charts.CAPTIONS["sweep_acc"]))
            with right:
                Slot(st, keeps=True).draw(charts.sweep_chart(table, names, "grad_ratio", language.tr()))
                st.caption(_(charts.CAPTIONS["sweep_grad"]))
        else:
            st.info(_("No point of this sweep is in the cache yet."))
        if missing:
            label = say(plural_message("Run {n:d} missing point", "Run {n:d} missing points", len(missing)))
            st.button(
                label,
                key=f"sweep-run-{comparison.key()}",
                icon=":material/play_arrow:",
                on_click=st.session_state.__setitem__,
                args=(SWEEP_ASKED, comparison.key()),
            )
        else:
            st.caption(say(message("All {count:d} points are in the cache.", count=len(table))))
        return SweepView(sweeps, table, missing, st.empty())


def train_sweep(view: SweepView) -> None:
    """Train the sweep's missing points, with one progress bar over all of them."""
    bar = view.progress.progress(0.0, text=_("Starting…"))
    on_point = ps.sweep_progress(
        view.missing, lambda fraction, text: bar.progress(min(fraction, 1.0), text=text), translate=language.tr()
    )
    try:
        budget.check(view.missing, budget.page_budget())
    except SpecError as err:
        view.progress.warning(say(message("Not trained: {error}", error=ps.plain(reason(err)))))
        return
    for sweep in view.sweeps:
        ticket = wait_for_turn(lambda text: bar.progress(0.0, text=text))
        try:
            run_sweep(sweep, result_cache(), on_point)
        except (SpecError, DataError, OSError) as err:
            view.progress.error(say(message("Cannot train this sweep: {error}", error=ps.plain(reason(err)))))
            return
        finally:
            training_queue().leave(ticket)
            ps.release_memory()


@dataclass
class Body:
    """What the page's body drew, for the training that follows it in a full run."""

    page: Page
    sweep: SweepView | None  # the depth-sweep section, open
    refused: bool  # over the page's budget: not trained here


@st.fragment
def body(comparison: Comparison, on_tour: tuple[int, Any] | None) -> Body:
    """Everything under the title and the tour's panel. A fragment: the step scrubber, the gradient view, a
    section opened and the sweep's depths rerun only this (cached results, the charts drawn), never the page."""
    places = tour_page.Places(on_tour[1] if on_tour else None)  # on the tour: its chart first, the rest folded
    preset = PRESETS.get(comparison.preset, PRESETS[DEFAULT_PRESET])
    reproduction = ps.reproduction_of(comparison)
    introduction(comparison, on_tour is None, reproduction is None)
    claim = st.empty()
    data_notes = st.container()  # e.g. "MNIST could not be loaded; using mnist-sample": said up front
    page = layout(comparison, your_runs.columns(st.session_state))
    built_in = slice(0, len(comparison.specs))  # the comparison's columns; the visitor's own runs follow
    sweep = sweep_section(comparison, page.names[built_in]) if preset.depths else None  # a sweep preset: its main view
    controls(page, comparison)
    sections(page, comparison, places)
    refused = notes(page, comparison, data_notes)
    for index, result in enumerate(page.results):
        if result is not None:
            page.status[index].caption(ps.status_line(result, language.tr()))
            page.draw_verdicts(index)
        else:
            page.status[index].caption(_("Not in the cache: trains in a moment, live…"))
    page.draw_shared()
    built = page.draw_runs()
    if not preset.depths:
        with places.place("sweep"):  # the section folds itself
            sweep = sweep_section(comparison, page.names[built_in], open_first=places.looks_at("sweep"))
    if reproduction is not None:
        table, missing = (sweep.table, len(sweep.missing)) if sweep else (None, 0)
        text = ps.claim_text(reproduction, comparison, page.results[built_in], table, missing, language.tr())
        claim.info(text, icon=":material/menu_book:")
    page.draw_exports(built)
    if st.session_state.get(SWEEP_ASKED) == comparison.key():  # the sweep's button, in this fragment: the
        st.rerun()  # training is the whole page's (its sidebar can stop it)
    return Body(page, sweep, refused)


def introduction(comparison: Comparison, off_tour: bool, no_reproduction: bool) -> None:
    """What the page is, the link's warnings, and the preset's caption (or that the comparison is the visitor's)."""
    if off_tour:
        st.markdown(
            _(
                "Backpropagation multiplies the gradient by each layer's weights and activation slope on its way from "
                "the loss back to the input. In a deep sigmoid network those factors are small, so the first layers "
                "get almost no gradient and barely learn. Each column below is one network trained on handwritten "
                "digits; change the activation, depth, initialisation, skips or normalisation in the sidebar and "
                "compare."
            )
        )
    for notice in st.session_state.get("notices", []):
        st.warning(say(message("Ignored part of the link: {notice}", notice=ps.plain(say(notice)))), icon="⚠️")
    preset = PRESETS.get(comparison.preset, PRESETS[DEFAULT_PRESET])
    if off_tour and comparison.runs_match_preset and no_reproduction:
        changed = comparison.changed_settings(language.tr())
        note = "  \n" + say(message("*Changed here:* {changes}.", changes=", ".join(changed))) if changed else ""
        st.info(say(message("**{title}.** {caption}", title=_(preset.title), caption=_(preset.caption))) + note)
    elif off_tour and no_reproduction:
        st.info(_("**Your own comparison.** Pick a preset in the sidebar to start again from one."))


def sections(page: Page, comparison: Comparison, places: tour_page.Places) -> None:
    """The chart sections in page order (placed and folded as `places` says), their slots in `page`."""
    places.fold_here()
    flow_column, curves_column = st.columns([2, 3])
    with flow_column, places.place("flow"):
        shown = _(charts.FLOW_TITLES[f"{page.grad_kind}_norm"])  # the caption names the gradients on screen
        caption = say(message("**Shown: {shown}.** {caption}", shown=shown, caption=_(charts.CAPTIONS["flow"])))
        page.section("flow", _("Gradient flow"), places.folds("flow"), lambda: {"flow": [page.slot()]}, caption)
    with curves_column, places.place("curves"):
        page.section("curves", _("Learning curves"), places.folds("curves"), page.curve_slots)
    left, right = charts.CAPTIONS["act_std"], charts.CAPTIONS["act_trace"]
    caption = say(message("**Left:** {left}  \n**Per run:** {right}", left=_(left), right=_(right)))
    with places.place("act"):
        page.section("act", _("Activations over training"), places.folds("act"), page.activation_slots, caption)
    per_run = {
        "percentiles": _("The last hidden layer's input over training"),
        "grad_dist": _("Gradient distributions by layer"),
        "act_dist": _("Activation distributions by layer"),
        "ratio": _("Update and gradient size relative to the weights"),
        "heatmap": _("Over training: gradient norm per layer and step"),
        "article": _("The article's view: all gradients in one histogram"),
    }
    for key, title in per_run.items():
        with places.place(key):
            page.section(key, title, places.folds(key), lambda key=key: {key: page.run_slots()})
    if any(spec.model in RECURRENT for spec in comparison.specs):
        with places.place("time"):
            title, caption = _("Through time: the gradient at each time step"), _(time_charts.CAPTIONS["time"])
            page.section("time", title, places.folds("time"), page.time_slots, caption)


def notes(page: Page, comparison: Comparison, box: DeltaGenerator) -> bool:
    """The data's notices, a cache problem and a refusal over the page's budget, in `box`; True if refused."""
    notices = {say(note) for result in page.results if result is not None for note in result.data_notes}
    for notice in sorted(notices):
        box.info(ps.plain(notice), icon=":material/info:")
    if result_cache().problem:
        box.warning(
            say(message("Results are shown but not cached: {problem}", problem=ps.plain(result_cache().problem))),
            icon="⚠️",
        )
    missing = [spec for spec, result in zip(comparison.specs, page.results) if result is None]
    try:
        budget.check(missing, budget.page_budget())
    except SpecError as err:  # a preset over a private install's smaller budget: shown as far as cached
        box.warning(say(message("Not trained here: {error}", error=ps.plain(reason(err)))), icon="⚠️")
        return True
    return False


def let_the_browser_draw() -> bool:
    """True, and the run ends here, on a browser's first visit: Streamlit's "running" icon redraws every 0.2 s
    while a script runs, and the browser then keeps the widgets whose code it is still loading as grey
    placeholders, for a whole training, so that the sidebar could not change or stop it. So the first run only
    draws; a one-shot timer of the browser's starts the training BROWSER_DRAW_S later. (AppTest has no browser,
    hence no headers: it trains at once.)"""
    if st.session_state.get(BROWSER_DREW) or not st.context.headers:
        return False
    st.session_state[BROWSER_DREW] = True
    start_training_soon()
    return True


@st.fragment(run_every=BROWSER_DRAW_S)
def start_training_soon() -> None:
    """Drawn in the first run only; the browser reruns it BROWSER_DRAW_S later, and that reruns the whole page."""
    if st.session_state.pop(TIMER_ARMED, False):
        st.rerun(scope="app")
    st.session_state[TIMER_ARMED] = True


def main() -> None:
    st.set_page_config(page_title="Vanishing Gradient Explorer", page_icon="📉", layout="wide")
    if "applied" not in st.session_state:
        link, tour_notice = tour_page.from_link(st.query_params.to_dict())  # ?tour=N: the stop's preset
        link_notices = [notice for notice in (language.from_link(link), tour_notice) if notice is not None]
        comparison, notices = Comparison.from_params(link, ps.available_devices())
        view, view_notices = ps.View.from_params(link, PRESETS[comparison.preset].grad_kind)
        show(comparison, view.grad_kind)
        st.session_state["linked_step"] = (comparison.key(), view.step)
        st.session_state["notices"] = link_notices + notices + view_notices
        tour_page.started(comparison)
    comparison: Comparison = st.session_state["applied"]
    on_tour = tour_page.active(comparison)  # (number, stop) on the tour; applying another comparison leaves it
    sweep_asked = st.session_state.pop(SWEEP_ASKED, None) == comparison.key()

    st.title(_("Vanishing Gradient Explorer"))
    tour_box = st.container()
    drawn = body(comparison, on_tour)
    if on_tour is not None:
        tour_page.panel(tour_box, *on_tour, drawn.page.names, drawn.page.results, f"step-{comparison.key()}", show)
    sidebar()  # after the cached charts (they reach the browser first), before any training (to interrupt it)
    if drawn.sweep is not None and sweep_asked:
        train_sweep(drawn.sweep)
        st.rerun()  # draw the sweep from the cache, now complete
    if not drawn.refused and None in drawn.page.results and let_the_browser_draw():
        return  # the browser's timer starts the training in a moment
    if not drawn.refused and train_missing(drawn.page, comparison):
        st.rerun()  # everything is cached now: draw the finished page with its step scrubber
    export_buttons(drawn.page)


heap_frozen()
main()
