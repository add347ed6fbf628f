"""Vanishing Gradient Explorer: `streamlit run app.py`. The page in order; its parts are in vg_page (sidebar,
sections, training, sweep, tour, your_runs), its charts in vg_core.charts.

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
from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch
from streamlit.delta_generator import DeltaGenerator

from vg_core import budget, charts
from vg_core import pagestate as ps
from vg_core.cache import env_number
from vg_core.i18n import message
from vg_core.presets import DEFAULT_PRESET, PRESETS, Comparison
from vg_core.spec import SpecError
from vg_page import language, widgets, your_runs
from vg_page import tour as tour_page
from vg_page.language import _, reason, say
from vg_page.resources import heap_frozen, result_cache
from vg_page.sections import Page, export_buttons, layout, sections
from vg_page.sidebar import show, sidebar
from vg_page.sweep import SWEEP_ASKED, SweepView, sweep_section, train_sweep
from vg_page.training import let_the_browser_draw, train_missing

torch.set_num_threads(int(env_number("VG_TORCH_THREADS", 1, 1, 256)))  # small nets: threads only contend


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
