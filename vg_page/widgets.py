"""Keyed widgets whose default is their value now, so that a browser slow to draw them cannot reset them.

Streamlit sends a keyed widget's value to the browser only in the script run that set it through
st.session_state (a link, a preset, Apply); later runs send only the widget's default. A browser still loading a
widget's code during that run (a busy machine: seconds on a first visit) draws the widget later, from the
default, and sends that back as its value: every number of a shared link became its field's minimum, and the next
Apply trained a 1x1 net at the smallest learning rate. With the value now as the default, a widget drawn late
shows the right value. A keyed widget keeps its identity and its value when only its default changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st


def selectbox(label: str, options: Sequence[Any], key: str, parent: Any = st, **kwargs: Any) -> Any:
    """st.selectbox on `parent`; None shows the placeholder, a value no longer offered the first option."""
    value = st.session_state.get(key, options[0])
    index = list(options).index(value) if value in options else None if value is None else 0
    return parent.selectbox(label, options, index=index, key=key, **kwargs)


def number_input(label: str, low: float, high: float, key: str, parent: Any = st, **kwargs: Any) -> Any:
    """st.number_input on `parent` between `low` and `high` (both ints or both floats, as the value is)."""
    kind = type(low)
    value = kind(min(max(st.session_state.get(key, low), low), high))
    return parent.number_input(label, low, high, value=value, key=key, **kwargs)


def checkbox(label: str, key: str, parent: Any = st, **kwargs: Any) -> bool:
    return parent.checkbox(label, value=bool(st.session_state.get(key, False)), key=key, **kwargs)


def segmented_control(label: str, options: Sequence[Any], key: str, parent: Any = st, **kwargs: Any) -> Any:
    return parent.segmented_control(label, options, default=st.session_state.get(key), key=key, **kwargs)
