"""The sidebar's "Your runs": saved runs a visitor opens (an uploaded .zip, or one from $VG_RUNS_DIR), drawn as
extra columns beside the built-in runs. They live in that visitor's st.session_state only, never in the
process-wide memory or the result cache; a run that cannot be opened leaves a message and changes nothing."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from vg_core import pagestate as ps
from vg_core.charts import RUN_COLORS
from vg_core.i18n import message
from vg_core.presets import MAX_RUNS
from vg_core.results import RunResult
from vg_core.runfiles import LIMITS, RunFileError, list_runs, load_zip, open_listed, runs_dir
from vg_page.language import tr

MAX_YOUR_RUNS = len(RUN_COLORS) - MAX_RUNS  # one colour each, after the built-in runs'
RUNS_KEY = "your_runs"  # session state: list[YourRun], in the order opened
MESSAGE_KEY = "your_runs_message"  # session state: why the last run could not be opened, or None
UPLOADS_KEY = "your_runs_uploads"  # session state: uploads handled so far (a fresh, empty uploader after each)
PICK_KEY = "your_runs_pick"
NO_PICK = "—"


@dataclass(frozen=True)
class YourRun:
    """One opened run: where it came from, and what it recorded."""

    source: str  # "my-net.zip (uploaded)" or "my-net (VG_RUNS_DIR)"
    result: RunResult


def your_runs(state: MutableMapping[str, Any]) -> list[YourRun]:
    return list(state.get(RUNS_KEY, []))


def columns(state: MutableMapping[str, Any]) -> list[tuple[str, RunResult]]:
    """(column name, result) of each run opened, for the page's extra columns: 'Y1 · my-net', ..."""
    return [(f"Y{index} · {run.result.label}", run.result) for index, run in enumerate(your_runs(state), 1)]


def add(state: MutableMapping[str, Any], source: str, open_result: Callable[[], RunResult]) -> None:
    """Open a run into the session, or leave one message saying why not (the runs shown stay as they were)."""
    runs = your_runs(state)
    try:
        result = open_result()
    except RunFileError as err:
        state[MESSAGE_KEY] = message("Could not open {source}: {error}", source=source, error=str(err))
        return
    if any(run.result.key == result.key for run in runs):
        state[MESSAGE_KEY] = message("{source} is already shown.", source=source)
    elif len(runs) >= MAX_YOUR_RUNS:
        state[MESSAGE_KEY] = message("At most {count:d} of your runs at once: remove one first.", count=MAX_YOUR_RUNS)
    else:
        state[RUNS_KEY] = [*runs, YourRun(source, result)]
        state[MESSAGE_KEY] = None


def remove(state: MutableMapping[str, Any], key: str) -> None:
    state[RUNS_KEY] = [run for run in your_runs(state) if run.result.key != key]
    state[MESSAGE_KEY] = None


def _upload_key() -> str:
    return f"your_runs_upload_{st.session_state.get(UPLOADS_KEY, 0)}"


def _on_upload() -> None:
    upload = st.session_state.get(_upload_key())
    if upload is None:
        return
    add(st.session_state, f"{upload.name} (uploaded)", lambda: load_zip(upload))
    st.session_state[UPLOADS_KEY] = st.session_state.get(UPLOADS_KEY, 0) + 1


def _on_pick() -> None:
    root, name = runs_dir(), st.session_state.get(PICK_KEY, NO_PICK)
    if root is not None and name != NO_PICK:
        add(st.session_state, f"{name} (VG_RUNS_DIR)", lambda: open_listed(root, name))
    st.session_state[PICK_KEY] = NO_PICK


def sidebar_section() -> None:
    """Upload, pick from $VG_RUNS_DIR, the runs shown with a remove button each, and the last message."""
    with st.sidebar:
        st.markdown(tr().gettext("**Your runs**"))
        st.caption(
            tr().gettext(
                "A run saved by `vg_core.watch` or `RunResult.save`, as a .zip of its folder: it is drawn beside the "
                "runs above and stays in this browser session only."
            )
        )
        st.file_uploader(
            tr().render(message("Open a saved run (.zip, up to {size:d} MB)", size=LIMITS.max_archive_bytes // 2**20)),
            type=["zip"],
            key=_upload_key(),
            on_change=_on_upload,
        )
        root = runs_dir()
        if root is not None:
            st.selectbox(
                tr().render(message("…or one from {folder}/", folder=root.name)),
                [NO_PICK, *list_runs(root)],
                key=PICK_KEY,
                on_change=_on_pick,
            )
        if st.session_state.get(MESSAGE_KEY):
            st.error(ps.plain(tr().render(st.session_state[MESSAGE_KEY])), icon=":material/block:")
        for (name, result), run in zip(columns(st.session_state), your_runs(st.session_state)):
            text, button = st.columns([3, 2], vertical_alignment="center")
            text.caption(f"**{ps.plain(name)}** — {ps.plain(run.source)}")
            button.button(
                tr().gettext("Remove"),
                key=f"your_runs_remove_{result.key}",
                icon=":material/close:",
                on_click=remove,
                args=(st.session_state, result.key),
            )
