"""Export: charts side by side as one SVG, with a title that says what they show."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import vl_convert as vlc

from ..i18n import ENGLISH, N_, Translator, message
from .common import (
    step_label,
)


def side_by_side(views: Sequence[alt.TopLevelMixin], width: int = 360, title: str = "") -> alt.HConcatChart:
    """The page's charts of one view next to each other at a fixed width, for an SVG/PNG export
    (a concatenated chart cannot carry its parts' fit-to-container autosize); `title`'s lines head it."""
    parts = []
    for view in views:
        part = view.properties(width=width)
        part.autosize = alt.Undefined
        parts.append(part)
    lines = title.split("\n")
    heading = alt.TitleParams(lines[0], subtitle=lines[1:], anchor="start") if title else alt.Undefined
    return alt.hconcat(*parts, title=heading)


def to_svg(views: Sequence[alt.TopLevelMixin], width: int = 360, title: str = "") -> str:
    """`views` side by side as one SVG document (vl-convert, no browser), headed by `title` (lines)."""
    return vlc.vegalite_to_svg(side_by_side(views, width, title).to_dict())


def export_title(
    section: str, step: int | None, steps_per_epoch: int | None, grad_kind: str, tr: Translator = ENGLISH
) -> str:
    """The heading of an exported view: what it is, at which step, and which gradients."""
    if grad_kind == "weight_grad":
        gradients = tr.gettext(N_("weight gradients ∂L/∂W"))
    else:
        gradients = tr.gettext(N_("back-propagated gradients ∂L/∂z"))
    when = tr.gettext(N_("each run's last snapshot")) if step is None else step_label(step, steps_per_epoch, tr)
    return section + "\n" + tr.render(message("at {when} · {gradients}", when=when, gradients=gradients))
