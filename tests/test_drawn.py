"""vg_page.drawn: a chart whose spec is made once gives Streamlit the same chart, spec and data, as the chart."""

from __future__ import annotations

import io
import json

import pyarrow as pa
from streamlit.testing.v1 import AppTest


def draw_each_chart_twice() -> None:
    """Each chart drawn as Altair hands it to Streamlit, then through vg_page.drawn (Drawn twice: made, then kept)."""
    import streamlit as st
    from engine_helpers import tiny_spec

    from vg_core import charts
    from vg_core.train import train
    from vg_page.drawn import Drawn, Marked

    specs = [tiny_spec(activation="sigmoid"), tiny_spec(activation="relu")]
    runs = list(zip(charts.run_names(specs), (train(spec) for spec in specs)))
    step = runs[0][1].snapshot_steps[3]
    for view in (charts.gradient_flow(runs, step), charts.ridgeline(runs[0][1], "weight_grad", step, (-8, 0), "#000")):
        drawn = Drawn(view)
        st.altair_chart(view)
        st.altair_chart(drawn)
        st.altair_chart(drawn)
    for metric in ("loss", "acc"):
        st.altair_chart(charts.learning_curve(runs, metric, step))
        curve = Drawn(charts.learning_curve(runs, metric))
        st.altair_chart(Marked(curve, step))
        st.altair_chart(Marked(curve, step))


def rows(data: list[dict]) -> str:
    return json.dumps(data, sort_keys=True, default=str)


def inline(spec: object) -> object:
    """`spec` with every inline `{"values": rows}` written as the named datasets are in as_drawn."""
    if isinstance(spec, list):
        return [inline(item) for item in spec]
    if not isinstance(spec, dict):
        return spec
    if set(spec) == {"values"} and isinstance(spec["values"], list):
        return {"name": rows(spec["values"])}
    return {key: inline(value) for key, value in spec.items()}


def as_drawn(proto) -> dict:
    """A chart element's spec with its datasets decoded: every dataset name, and every inline dataset, replaced
    by its rows."""
    spec = proto.spec
    datasets = {}
    for dataset in proto.datasets:
        frame = pa.ipc.open_stream(io.BytesIO(dataset.data.data)).read_all().to_pandas()
        datasets[dataset.name] = rows(frame.to_dict("records"))
    for name, data in datasets.items():
        spec = spec.replace(json.dumps(name), json.dumps(data))
    return inline(json.loads(spec))


def test_a_drawn_chart_is_the_chart_streamlit_would_draw() -> None:
    app = AppTest.from_function(draw_each_chart_twice, default_timeout=120)
    app.run()
    assert not app.exception
    elements = [element for element in app.main if element.type == "vega_lite_chart"]
    assert len(elements) == 12
    for index in range(0, 12, 3):
        altair, made, kept = (as_drawn(element.proto) for element in elements[index : index + 3])
        assert made == altair and kept == altair


def draw_two_steps() -> None:
    """The gradient flow and a learning curve, each drawn at two steps, as the page draws them."""
    import streamlit as st
    from engine_helpers import tiny_spec

    from vg_core import charts
    from vg_core.train import train
    from vg_page.drawn import Drawn, Marked

    specs = [tiny_spec(activation="sigmoid"), tiny_spec(activation="relu")]
    runs = list(zip(charts.run_names(specs), (train(spec) for spec in specs)))
    steps = runs[0][1].snapshot_steps[1:3]
    for step in steps:
        st.altair_chart(Drawn(charts.gradient_flow(runs, step)))
    curve = Drawn(charts.learning_curve(runs, "loss"))
    for step in steps:
        st.altair_chart(Marked(curve, step))


def test_a_chart_at_another_step_is_the_same_spec_with_other_data() -> None:
    """What lets the browser swap a chart's data in place as the step is scrubbed (Streamlit builds the chart
    anew when its spec changes): dataset names that do not depend on the data."""
    app = AppTest.from_function(draw_two_steps, default_timeout=120)
    app.run()
    assert not app.exception
    flow, flow_later, curve, curve_later = (e.proto for e in app.main if e.type == "vega_lite_chart")
    for before, after in ((flow, flow_later), (curve, curve_later)):
        assert before.spec == after.spec
        assert [d.name for d in before.datasets] == [d.name for d in after.datasets]
        assert [d.data.data for d in before.datasets] != [d.data.data for d in after.datasets]
    assert as_drawn(flow) != as_drawn(flow_later) and as_drawn(curve) != as_drawn(curve_later)
