"""Charts as the page hands them to Streamlit: each one's Vega-Lite spec made once and kept with the chart."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import altair as alt
from streamlit import dataframe_util
from streamlit.delta_generator import DeltaGenerator

from vg_core import charts


def _arrow_dataset(data: Any, datasets: dict[str, bytes]) -> dict[str, str]:
    """An Altair data transformer: a chart's frame as Streamlit's Arrow bytes, named by their content (as
    Streamlit's own transformer does), kept in `datasets` with the spec that names them."""
    payload = dataframe_util.convert_anything_to_arrow_bytes(data)
    name = "vg-" + hashlib.sha256(payload).hexdigest()[:24]
    datasets[name] = payload
    return {"name": name}


alt.data_transformers.register("vg_arrow", _arrow_dataset)


class Drawn:
    """A chart as Streamlit draws it: its Vega-Lite spec with its data as Arrow bytes, made at its first draw
    and kept, so that drawing it again (a revisit, a step scrubbed back to, every other visitor: Page.memo keeps
    these) costs no Altair and no serialising. Made without Altair's JSON-schema validation, two thirds of the
    cost of a spec: every chart builder's output is validated against the Vega-Lite schema in tests
    (tests/test_charts.py). Streamlit asks a chart for nothing but to_dict(), under its lock on Altair's
    global settings, and changes only the returned dict's top level."""

    def __init__(self, view: alt.TopLevelMixin) -> None:
        self.view = view
        self._spec: dict | None = None

    def spec(self) -> dict:
        if self._spec is None:
            found: dict[str, bytes] = {}
            with alt.data_transformers.enable("vg_arrow", datasets=found):
                spec = self.view.to_dict(validate=False)
            self._spec = {**spec, "datasets": {**spec.get("datasets", {}), **found}}
        return self._spec

    def to_dict(self, *args: Any, **kwargs: Any) -> dict:
        spec = self.spec()
        return {**spec, "datasets": dict(spec["datasets"])}


@dataclass(frozen=True)
class Marked:
    """A learning curve drawn at `step`: its Drawn spec made once, the step's marker added (charts.with_step_rule)."""

    curve: Drawn
    step: int

    def to_dict(self, *args: Any, **kwargs: Any) -> dict:
        return charts.with_step_rule(self.curve.spec(), self.step)


def chart(slot: DeltaGenerator, view: alt.TopLevelMixin | Drawn | Marked) -> None:
    slot.altair_chart(view if isinstance(view, (Drawn, Marked)) else Drawn(view), width="stretch")
