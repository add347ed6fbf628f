"""The guided tour on the page (`?tour=N`): its panel, its navigation, Play, and where each chart section goes.

The stops and their texts are vg_core.tour's. A stop shows its preset, with the shared settings (dataset, width,
epochs, ...) a link gave in place of the preset's; the stop's "look here" section comes first, highlighted, and
the others are folded below. Applying anything else in the sidebar leaves the tour.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from vg_core import tour
from vg_core.glossary import tooltip
from vg_core.i18n import Message, message
from vg_core.presets import PRESETS, SHARED_FIELDS, Comparison
from vg_core.results import RunResult
from vg_page.language import tr

STOP_KEY = "tour"  # session state: the stop shown (1-based), absent outside the tour
SHOWS_KEY = "tour_comparison"  # session state: the comparison the stop loaded (another one leaves the tour)
OVERRIDES_KEY = "tour_overrides"  # session state: the shared settings the link gave in place of the presets'
PLAY_KEY = "tour_playing"  # session state: Play is on
FRAME_KEY = "tour_frame_t"  # session state: when Play last moved the step (time.monotonic)
PLAY_S = 1.5  # seconds per snapshot while playing

FIRST_ROW = ("flow", "curves")  # the sections drawn open outside the tour; the others fold (drawn when opened)


def shown_stops() -> tuple[tour.Stop, ...]:
    return tour.stops(PRESETS)


def from_link(params: Mapping[str, Any]) -> tuple[dict[str, Any], Message | None]:
    """A link's parameters with the stop's preset in place of ?preset= when it asks for a stop (`?tour=N`),
    and the warning for a bad stop number. Remembers the stop and the shared settings the link overrides."""
    params = dict(params)
    if "tour" not in params:
        return params, None
    value = params.pop("tour")
    value = value[-1] if isinstance(value, (list, tuple)) and value else value
    stops = shown_stops()
    number, warning = tour.stop_number(value, len(stops))
    preset = PRESETS[stops[number - 1].preset]
    theirs = preset.base.to_params()
    overrides = {
        name: params[name] for name in SHARED_FIELDS if name in params and str(params[name]).strip() != theirs[name]
    }
    st.session_state.update({STOP_KEY: number, OVERRIDES_KEY: overrides})
    return {**params, "preset": stops[number - 1].preset}, warning


def started(comparison: Comparison) -> None:
    """The comparison the stop shows (a link's, once loaded): another one applied later leaves the tour."""
    if STOP_KEY in st.session_state:
        st.session_state[SHOWS_KEY] = comparison


def active(applied: Comparison) -> tuple[int, tour.Stop] | None:
    """(number, stop) while the tour shows `applied`; a comparison applied from the sidebar leaves the tour."""
    number = st.session_state.get(STOP_KEY)
    if number is None:
        return None
    if st.session_state.get(SHOWS_KEY) != applied:
        leave()
        return None
    return number, shown_stops()[number - 1]


def leave() -> None:
    for key in (STOP_KEY, SHOWS_KEY, PLAY_KEY):
        st.session_state.pop(key, None)


def params() -> dict[str, str]:
    """?tour=N while on the tour."""
    number = st.session_state.get(STOP_KEY)
    return {"tour": str(number)} if number is not None else {}


def go(number: int, show: Callable[[Comparison], None]) -> None:
    """Button callback: show stop `number` (its preset, with the link's shared settings)."""
    stop = shown_stops()[number - 1]
    comparison, _ = Comparison.from_params({**st.session_state.get(OVERRIDES_KEY, {}), "preset": stop.preset})
    show(comparison)
    st.session_state.update({STOP_KEY: number, SHOWS_KEY: comparison, PLAY_KEY: False, "notices": []})
    st.session_state.pop("linked_step", None)


# ---------------------------------------------------------------- the panel


def panel(
    box: DeltaGenerator,
    number: int,
    stop: tour.Stop,
    names: Sequence[str],
    results: Sequence[RunResult | None],
    slider_key: str,
    show: Callable[[Comparison], None],
) -> None:
    """The tour's box at the top: where we are, the stop's sentences, the chain rule with the factors measured
    on each run, and the buttons (previous, next, Play, leave)."""
    t = tr()
    count = len(shown_stops())
    part = t.gettext(tour.PARTS[stop.part])
    with box.container(border=True):
        st.caption(
            t.render(
                message("Guided tour · {part} · stop {number:d} of {count:d}", part=part, number=number, count=count)
            )
        )
        text, formula = st.columns([1, 1]) if stop.chain_rule else (st.container(), None)
        text.subheader(t.gettext(stop.title), anchor=False)
        text.markdown(t.gettext(stop.text))
        if formula is not None:
            with formula:
                chain_rule(names, results)
        back, forward, play_box, out = st.columns(4)
        previous, following = tour.previous_stop(number), tour.next_stop(number, count)
        back.button(
            t.gettext("← Previous"),
            disabled=previous is None,
            width="stretch",
            key="tour-previous",
            on_click=go,
            args=(previous or 1, show),
        )
        forward.button(
            t.gettext("Next →"),
            disabled=following is None,
            width="stretch",
            type="primary",
            key="tour-next",
            on_click=go,
            args=(following or count, show),
        )
        out.button(t.gettext("Leave the tour"), width="stretch", key="tour-leave", on_click=leave)
        steps = sorted({step for result in results if result is not None for step in result.snapshot_steps})
        if len(steps) > 1 and all(result is not None for result in results):
            with play_box:
                play(steps, slider_key)


def chain_rule(names: Sequence[str], results: Sequence[RunResult | None]) -> None:
    """The chain rule for ∂L/∂W₁, and beside it each run's per-layer factors ‖∂L/∂z_k‖ ÷ ‖∂L/∂z_{k+1}‖ at the
    last snapshot (vg_core.tour.layer_factors)."""
    t = tr()
    for part in tour.CHAIN_RULE.split(r"\qquad"):  # two lines: the column is half the page wide
        st.latex(part)
    ready = [(name, result) for name, result in zip(names, results) if result is not None]
    if not ready:
        return
    st.caption(
        t.gettext("The factor by which each layer scaled the back-propagated gradient ∂L/∂z, measured on these runs:"),
        help=tooltip("dL/dz", t),
    )
    for name, result in ready:  # one compact line per run: the chart it explains must stay in view
        lines = [t.render(line) for line in tour.factor_messages(tour.layer_factors(result.stat("grad_out_norm")))]
        st.markdown(f"**{name}** — " + " · ".join(lines))


# ---------------------------------------------------------------- Play


def _play_pressed(steps: Sequence[int], slider_key: str) -> None:
    playing = not st.session_state.get(PLAY_KEY, False)
    st.session_state[PLAY_KEY] = playing
    st.session_state[FRAME_KEY] = time.monotonic() - PLAY_S  # the next snapshot at once
    if playing and tour.next_snapshot(steps, st.session_state.get(slider_key)) is None:
        _move(steps[0], slider_key)  # at the last snapshot: play from the start, shown for PLAY_S
        st.session_state[FRAME_KEY] = time.monotonic()


def _move(step: int, slider_key: str) -> None:
    """Scrub to `step`: the slider takes the step a link would ask for (vg_core.pagestate.nearest_step)."""
    comparison = st.session_state["applied"]
    st.session_state["linked_step"] = (comparison.key(), step)
    st.session_state.pop(slider_key, None)


def play(steps: Sequence[int], slider_key: str) -> None:
    """Play/Pause, and while playing a fragment that moves the step scrubber one snapshot on every PLAY_S."""
    playing = st.session_state.get(PLAY_KEY, False)
    st.button(
        tr().gettext("⏸ Pause") if playing else tr().gettext("▶ Play"),
        width="stretch",
        key="tour-play",
        on_click=_play_pressed,
        args=(steps, slider_key),
        help=tooltip("snapshot", tr()),
    )
    if playing:
        ticker(tuple(steps), slider_key)


@st.fragment(run_every=PLAY_S / 3)
def ticker(steps: tuple[int, ...], slider_key: str) -> None:
    """Every PLAY_S while playing: the next snapshot, and the page redrawn; Play stops after the last."""
    if not st.session_state.get(PLAY_KEY) or time.monotonic() - st.session_state.get(FRAME_KEY, 0.0) < PLAY_S:
        return
    following = tour.next_snapshot(steps, st.session_state.get(slider_key))
    st.session_state[FRAME_KEY] = time.monotonic()
    if following is None:
        st.session_state[PLAY_KEY] = False
    else:
        _move(following, slider_key)
    st.rerun()


# ---------------------------------------------------------------- where the sections go


class Places:
    """Where each chart section is drawn, and whether folded (an expander that draws its charts only once opened).
    Outside the tour: in page order, the first row (gradient flow, learning curves) open, the rest folded. On a
    stop: its "look here" section open in a highlighted box with the one-line summary where Places is made (right
    under the tour panel, so that it is in view on a laptop screen), and the others folded, in page order where
    `fold_here` is called (below the runs' headers and the step scrubber)."""

    def __init__(self, stop: tour.Stop | None) -> None:
        self.stop = stop
        self.folded: dict[str, DeltaGenerator] = {}
        if stop is None:
            return
        t = tr()
        look = st.container(border=True)
        here, seen = t.gettext("Look here"), t.gettext("What you just saw:")
        look.markdown(f":blue-background[:material/visibility: **{here}**]")
        self.look = look.container()
        look.success(f"**{seen}** {t.gettext(stop.seen)}", icon=":material/lightbulb:")

    def fold_here(self) -> None:
        """Make the places of the folded sections, in page order, at this point of the page."""
        if self.stop is not None:
            self.folded = {view: st.container() for view in tour.view_order(self.stop)[1]}

    def looks_at(self, view: str) -> bool:
        return self.stop is not None and self.stop.look == view

    def folds(self, view: str) -> bool:
        """Whether section `view` is folded."""
        return view not in FIRST_ROW if self.stop is None else view != self.stop.look

    def place(self, view: str) -> contextlib.AbstractContextManager:
        """The container section `view` is drawn in (`with places.place("flow"): ...`)."""
        if self.stop is None:
            return contextlib.nullcontext()
        if view == self.stop.look:
            return self.look
        return self.folded.get(view) or st.container()
