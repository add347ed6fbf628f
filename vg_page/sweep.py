"""The depth sweep's section: accuracy and gradient ratio against depth, drawn from the cache, and its button that
trains the missing points."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from vg_core import budget, charts
from vg_core import pagestate as ps
from vg_core.data import DataError
from vg_core.i18n import message, plural_message
from vg_core.presets import PRESETS, Comparison
from vg_core.spec import RunSpec, SpecError
from vg_core.sweep import Sweep, run_sweep
from vg_page import language
from vg_page.drawn import Slot
from vg_page.language import _, reason, say
from vg_page.resources import result_cache, training_queue, wait_for_turn

SWEEP_ASKED = "sweep_asked"  # session state: the key of the comparison whose sweep's button was pressed


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
