"""Charts as the page hands them to Streamlit: each one's Vega-Lite spec made once and kept with the chart, and
drawn where the same chart was before, so that the browser updates its data instead of building it anew."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd
from streamlit import dataframe_util
from streamlit.delta_generator import DeltaGenerator

from vg_core import charts

STEP_DATASET = "vg-step"  # a learning curve's step marker: its one row, the only data a scrub changes


def _arrow_dataset(data: Any, datasets: dict[str, bytes], names: dict[str, str]) -> dict[str, str]:
    """An Altair data transformer: a chart's frame as Streamlit's Arrow bytes, kept in `datasets` with the spec
    that names them. Named in the order the chart first uses them (a frame used twice is sent once), not by
    their content: the same chart at another step is then the same spec with other data, and the browser's
    Vega view swaps the data in place (Streamlit rebuilds a chart only when its spec changes)."""
    payload = dataframe_util.convert_anything_to_arrow_bytes(data)
    name = names.setdefault(hashlib.sha256(payload).hexdigest(), f"vg-{len(names)}")
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
            with alt.data_transformers.enable("vg_arrow", datasets=found, names={}):
                spec = self.view.to_dict(validate=False)
            self._spec = {**spec, "datasets": {**spec.get("datasets", {}), **found}}
        return self._spec

    def to_dict(self, *args: Any, **kwargs: Any) -> dict:
        spec = self.spec()
        return {**spec, "datasets": dict(spec["datasets"])}


@functools.lru_cache(maxsize=256)
def _step_rows(step: int) -> bytes:
    return dataframe_util.convert_anything_to_arrow_bytes(pd.DataFrame({"step": [step]}))


@dataclass(frozen=True)
class Marked:
    """A learning curve drawn at `step`: its Drawn spec made once, the step's marker added (charts.with_step_rule)
    with its row in a dataset of its own, so that the spec is the same at every step."""

    curve: Drawn
    step: int

    def to_dict(self, *args: Any, **kwargs: Any) -> dict:
        spec = charts.with_step_rule(self.curve.spec(), {"name": STEP_DATASET})
        return {**spec, "datasets": {**spec["datasets"], STEP_DATASET: _step_rows(int(self.step))}}


class Slot:
    """Where one chart goes, drawn again in place: the first draw of a script run puts the chart there, each
    later draw of the run (a training's live redraws) replaces it. A slot that `keeps` its chart holds it in a
    container, whose chart the browser keeps from one rerun to the next until it is replaced: the same element,
    so that a chart whose spec is unchanged (another step: only its data differ) gets its data swapped by Vega
    instead of being built anew. One that does not keep it is an st.empty(), which clears the old chart at once,
    for a page about to train, whose old charts would otherwise stand for runs they are not."""

    def __init__(self, parent: Any, keeps: bool) -> None:
        self._at: DeltaGenerator = parent.container() if keeps else parent.empty()

    def draw(self, view: alt.TopLevelMixin | Drawn | Marked) -> None:
        chart = Drawn(view) if isinstance(view, alt.TopLevelMixin) else view
        self._at = self._at.altair_chart(chart, width="stretch")  # the chart's own place: drawing there replaces it
