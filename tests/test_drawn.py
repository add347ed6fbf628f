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


def as_drawn(proto) -> dict:
    """A chart element's spec with its datasets decoded, every dataset name replaced by its rows."""
    spec = proto.spec
    datasets = {}
    for dataset in proto.datasets:
        rows = pa.ipc.open_stream(io.BytesIO(dataset.data.data)).read_all().to_pandas()
        datasets[dataset.name] = json.dumps(rows.to_dict("records"), sort_keys=True, default=str)
    for name, rows in datasets.items():
        spec = spec.replace(json.dumps(name), json.dumps(rows))
    return json.loads(spec)


def test_a_drawn_chart_is_the_chart_streamlit_would_draw() -> None:
    app = AppTest.from_function(draw_each_chart_twice, default_timeout=120)
    app.run()
    assert not app.exception
    elements = [element for element in app.main if element.type == "vega_lite_chart"]
    assert len(elements) == 12
    for index in range(0, 12, 3):
        altair, made, kept = (as_drawn(element.proto) for element in elements[index : index + 3])
        assert made == altair and kept == altair
