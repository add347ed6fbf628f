"""The chart sections: one Page of placeholders, a column per run, each section's charts built from whatever
results exist (complete or still training) and drawn into its slots; then the CSV exports."""

from __future__ import annotations

import functools
import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from vg_core import charts
from vg_core import pagestate as ps
from vg_core.charts import through_time
from vg_core.i18n import message
from vg_core.presets import Comparison
from vg_core.results import RunResult
from vg_core.spec import RECURRENT
from vg_page import language
from vg_page import tour as tour_page
from vg_page.drawn import Drawn, Marked, Slot
from vg_page.language import _, say
from vg_page.resources import chart_memo, memory

REDRAW_S = 2.0  # at most one chart redraw every two seconds while training, page-wide (the browser redraws too)
PER_RUN_VIEWS = ("grad_dist", "act_dist", "ratio", "heatmap", "article", "act_trace", "percentiles")
TIME_VIEWS = ("time_dist", "time_heatmap")  # per run, in the through-time section (recurrent runs only)


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
        """He's per-layer std (all runs) first, then each run's activations over training: in one row for up to
        two runs; beyond, the std on a row of its own, as wide as the gradient flow above (in a column of four or
        five, its legend and axis title were cut)."""
        if len(self.names) <= 2:
            first, *rest = st.columns(1 + len(self.names))
        else:
            first, rest = st.columns([2, 3])[0], run_columns(len(self.names))
        return {"act_std": [self.slot(first)], "act_trace": [self.slot(column) for column in rest]}

    def time_slots(self) -> Slots:
        """Through time (a comparison with a recurrent run): ‖∂L/∂h_t‖ over t for all runs, then per run its
        ridgelines over time steps and its time step × training step heatmap."""
        return {"time_flow": [self.slot()], **{key: self.run_slots() for key in TIME_VIEWS}}

    def memo(self, view: str, build: Callable[[], Any], at_step: bool = True) -> Any:
        """`build()`, or what it gave before for this view of the same results, gradients, language and step
        (any step unless `at_step`): scrubbing back, a revisit and every other visitor build nothing again."""
        step = self.step if at_step else None
        return chart_memo().get((view, self.grad_kind, step, ps.results_key(self.ready), language.current()), build)

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
            "time_flow": lambda: [through_time.time_flow(ready, step, tr)],
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
            through_time.time_flow(ready, step, tr),
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
        time_grad = through_time.time_ridge_domain(ready, step)
        return lambda name, result, color: through_time.time_ridgeline(name, result, step, time_grad, color, tr)
    time_heat = through_time.time_heatmap_domain(ready)
    return lambda name, result, color: through_time.time_heatmap(name, result, time_heat, step, tr)


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
    caption = say(message("**All runs:** {left}  \n**Per run:** {right}", left=_(left), right=_(right)))
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
            title, caption = _("Through time: the gradient at each time step"), _(through_time.CAPTIONS["time"])
            page.section("time", title, places.folds("time"), page.time_slots, caption)


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
