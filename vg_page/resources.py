"""The page's process-wide resources, bounded and shared by every visitor: the result cache on disk, the results
and the charts kept in memory, and the training queue."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import streamlit as st

from vg_core import pagestate as ps
from vg_core import turns
from vg_core.cache import ResultCache, cache_dir, env_number

MEMO_ITEMS = 64  # charts and verdicts kept (a few pages' worth; each holds only its own small frames)


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
def chart_memo() -> ps.Memo:
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
