"""Training on the page: the runs not yet cached, one visitor at a time, drawn live as they train, and the first
visit's pause that lets the browser draw the page before."""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from vg_core import pagestate as ps
from vg_core.data import DataError
from vg_core.i18n import message
from vg_core.presets import Comparison
from vg_core.spec import SpecError
from vg_core.train import Progress
from vg_page import language
from vg_page.language import _, reason, say
from vg_page.resources import memory, result_cache, training_queue, wait_for_turn
from vg_page.sections import Page

PROGRESS_S = 0.25  # progress-bar updates (each is also where a changed page stops the training)
# Between snapshots (a late epoch can take minutes), a run's charts not redrawn for LIVE_S show a probe of the
# model as it is now, shown and not recorded: at most every LIVE_S, and never more than LIVE_SHARE of the time.
LIVE_S = 3.0
LIVE_SHARE = 0.1
BROWSER_DRAW_S = 1.0  # a browser's first visit: drawn, idle this long, then trained (let_the_browser_draw)
BROWSER_DREW, TIMER_ARMED = "browser_drew", "training_timer_armed"  # session state of let_the_browser_draw


def train_missing(page: Page, comparison: Comparison) -> bool:
    """Train the runs not yet cached, redrawing as snapshots arrive; True if any was trained."""
    trained = False
    for index, spec in enumerate(comparison.specs):
        if page.results[index] is not None:
            continue
        bar = page.status[index]
        ticket = wait_for_turn(bar.info)
        try:
            result = result_cache().get_or_train(spec, live_callback(page, index))[0]
        except (SpecError, DataError, OSError) as err:
            bar.error(say(message("Cannot train this run: {error}", error=ps.plain(reason(err)))))
            page.results[index] = None  # no result to export (its partial one stays drawn)
            continue
        except (MemoryError, RuntimeError) as err:  # e.g. torch cannot allocate: say so, keep the page
            page.results[index] = None
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
