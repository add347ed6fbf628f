"""The page's language: `?lang=en|id` and the sidebar's picker, kept in the session (vg_core.i18n translates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from vg_core.glossary import GLOSSARY, tooltip
from vg_core.i18n import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, Message, Translator, language, message, translator
from vg_core.presets import PRESETS
from vg_core.reproductions import find
from vg_core.spec import SpecError
from vg_page import widgets

LANG_KEY = "lang"  # session state: the language shown
PICK_KEY = "w_lang"  # the picker widget


def from_link(params: Mapping[str, Any]) -> Message | None:
    """Take the language a link asks for (default English); a warning for a value that is no language."""
    value = params.get("lang")
    value = value[-1] if isinstance(value, (list, tuple)) and value else value
    chosen = language(value)
    st.session_state[LANG_KEY] = st.session_state[PICK_KEY] = chosen
    if value is None or str(value).strip().lower() == chosen:
        return None
    return message(
        "lang: {value} is not one of {choices}; showing English.", value=str(value)[:60], choices=", ".join(LANGUAGES)
    )


def current() -> str:
    return st.session_state.get(LANG_KEY, DEFAULT_LANGUAGE)


def tr() -> Translator:
    """The translator of the language shown."""
    return translator(current())


def params() -> dict[str, str]:
    """?lang=..., kept in the URL beside the other settings."""
    return {"lang": current()}


def _picked() -> None:
    st.session_state[LANG_KEY] = st.session_state[PICK_KEY]


def picker() -> None:
    """The language picker (each language named in its own words); changing it keeps everything else."""
    st.session_state.setdefault(PICK_KEY, current())
    widgets.selectbox("Language · Bahasa", LANGUAGES, PICK_KEY, format_func=LANGUAGE_NAMES.get, on_change=_picked)


# The glossary entries (vg_core.glossary) each chart section's title explains in its tooltip.
SECTION_TERMS = {
    "flow": ("dL/dW", "dL/dz", "norm", "fc"),
    "curves": ("epoch", "batch"),
    "act": ("sigma", "symlog", "snapshot"),
    "grad_dist": ("log10|g|", "dL/dW", "dL/dz"),
    "act_dist": ("saturated", "dead", "near-zero slope"),
    "ratio": ("update ratio", "symlog"),
    "heatmap": ("dL/dW", "norm"),
    "article": ("dL/dW",),
}


def glossary(*keys: str) -> str | None:
    """The tooltips of glossary entries `keys` in the language shown, one paragraph each (None for none)."""
    return "\n\n".join(tooltip(key, tr()) for key in keys if key in GLOSSARY) or None


def preset_title(key: str, t: Translator) -> str:
    """A preset's name in the picker: its title, or 'Paper: <reproduction>' (`t` bound when the widget is made:
    Streamlit calls a format_func again outside the script run)."""
    preset = PRESETS[key]
    if preset.reproduction:
        return t.render(message("Paper: {title}", title=t.gettext(find(preset.reproduction).title)))
    return t.gettext(preset.title)


def _(text: str) -> str:
    """`text` in the language shown (vg_core.i18n; the extractor finds every _("..."))."""
    return tr().gettext(text)


def say(item: object) -> str:
    """A Message (or msgid) rendered in the language shown."""
    return tr().render(item)


def reason(err: Exception) -> str:
    """Why `err` was raised, in the language shown (a SpecError carries a Message; other errors their text)."""
    if isinstance(err, SpecError):
        return say(err.message)
    return say(err.args[0]) if err.args else str(err)
