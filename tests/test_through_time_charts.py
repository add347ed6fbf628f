"""The through-time charts: valid, non-empty Vega-Lite for recurrent runs of 28 and 784 steps, honest notes for
zero or NaN gradients and for runs of other families."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from vg_core.charts import through_time
from vg_core.probes import LOG_GRAD_BINS
from vg_core.probes.through_time import histogram_steps
from vg_core.results import FRAME_COLUMNS, RunResult
from vg_core.spec import RunSpec

STEPS = (0, 10, 20)


def fake_recurrent(seq_len: int, norms=None, model: str = "rnn") -> RunResult:
    """A recurrent run's frames without training: ‖∂L/∂h_t‖ = 10^(-8 (T - t) / T) unless `norms` is given."""
    spec = RunSpec(model=model, activation="tanh", dataset="mnist-sample", depth=1, width=4, seq_len=seq_len)
    t = np.arange(1, seq_len + 1)
    values = 10.0 ** (-8.0 * (seq_len - t) / seq_len) if norms is None else np.asarray(norms, dtype=float)
    stats = pd.concat(
        pd.DataFrame({"step": step, "layer": 1, "t": t, "quantity": "hidden_grad_norm", "value": values})
        for step in STEPS
    )
    edges, hist_t = LOG_GRAD_BINS.edges, histogram_steps(seq_len)
    counts = np.zeros((len(hist_t), LOG_GRAD_BINS.count), dtype=np.int64)
    finite = np.isfinite(values) & (values > 0)
    for row, step_t in enumerate(hist_t):
        if finite[step_t - 1]:
            counts[row, np.searchsorted(edges, np.log10(values[step_t - 1])) - 1] = 16
    hists = pd.concat(
        pd.DataFrame(
            {
                "step": step,
                "layer": 1,
                "t": np.repeat(hist_t, LOG_GRAD_BINS.count),
                "quantity": "hidden_grad",
                "bin_start": np.tile(edges[:-1], len(hist_t)),
                "bin_end": np.tile(edges[1:], len(hist_t)),
                "count": counts.reshape(-1),
            }
        )
        for step in STEPS
    )
    layer_stats = pd.DataFrame({"step": list(STEPS), "layer": 1, "quantity": "weight_grad_norm", "value": 1.0})
    empty = {name: pd.DataFrame(columns=FRAME_COLUMNS[name]) for name in ("history", "steps", "layer_steps")}
    return RunResult(
        spec=spec,
        meta={"total_steps": STEPS[-1], "layers": [f"{model}1", "fc"]},
        layer_stats=layer_stats,
        histograms=pd.DataFrame(columns=FRAME_COLUMNS["histograms"]),
        time_stats=stats.reset_index(drop=True),
        time_histograms=hists.reset_index(drop=True),
        **empty,
    )


def fake_mlp() -> RunResult:
    result = fake_recurrent(28)
    empty = {name: pd.DataFrame(columns=FRAME_COLUMNS[name]) for name in ("time_stats", "time_histograms")}
    return dataclasses.replace(result, spec=RunSpec(dataset="mnist-sample", depth=1, width=4), **empty)


def datasets(chart) -> list[list[dict]]:
    spec = chart.to_dict()
    json.dumps(spec, allow_nan=False)  # strict JSON: what the browser receives
    return [rows for rows in spec.get("datasets", {}).values()]


def drawn_rows(chart) -> int:
    return max((len(rows) for rows in datasets(chart)), default=0)


@pytest.mark.parametrize("seq_len", [28, 784])
def test_views_of_a_recurrent_run_are_valid_and_not_empty(seq_len):
    runs = [("a", fake_recurrent(seq_len)), ("b", fake_recurrent(seq_len, model="lstm"))]
    flow = through_time.time_flow(runs, None)
    assert drawn_rows(flow) >= 2 * seq_len
    assert through_time.time_flow_frame(runs, None)["t"].max() == seq_len
    domain = through_time.time_ridge_domain(runs, None)
    assert domain[0] < -8 + 1 and domain[1] > -1  # 1e-8 .. 1 with padding: shared by both runs
    ridge = through_time.time_ridgeline("a", runs[0][1], None, domain, "#4c78a8")
    assert drawn_rows(ridge) > 0
    heat_domain = through_time.time_heatmap_domain(runs)
    assert heat_domain == pytest.approx((-8.0 * (seq_len - 1) / seq_len, 0.0))
    heat = through_time.time_heatmap("a", runs[0][1], heat_domain, 10)
    assert drawn_rows(heat) == len(STEPS) * seq_len


def test_zero_and_nan_gradients_are_left_out_and_said():
    norms = np.ones(28)
    norms[:5] = 0.0
    norms[5] = np.nan
    result = fake_recurrent(28, norms)
    frame = through_time.time_flow_frame([("a", result)], None)
    assert frame["t"].min() == 7 and len(frame) == 22
    notes = through_time.time_flow_notes([("a", result)], None, frame)
    assert notes == ["a: 6 time steps with ‖∂L/∂h_t‖ = 0 or not a number are not drawn."]
    assert len(through_time.time_heatmap_frame(result)) == len(STEPS) * 22
    everything_zero = fake_recurrent(28, np.zeros(28))
    for chart in (
        through_time.time_flow([("z", everything_zero)], None),
        through_time.time_ridgeline("z", everything_zero, None, (-10.0, 0.0), "#000"),
        through_time.time_heatmap("z", everything_zero, (-6.0, 0.0)),
    ):
        assert "Nothing to draw" in json.dumps(chart.to_dict()) or "No recurrent run" in json.dumps(chart.to_dict())


def test_a_run_of_another_family_gets_a_note_not_an_axis():
    runs = [("rnn", fake_recurrent(28)), ("mlp", fake_mlp())]
    frame = through_time.time_flow_frame(runs, None)
    assert set(frame["run"]) == {"rnn"}
    flow = json.dumps(through_time.time_flow(runs, None).to_dict())
    assert "mlp: mlp is not a recurrent net (it has no time steps)." in flow
    for chart in (
        through_time.time_ridgeline("mlp", runs[1][1], None, (-10.0, 0.0), "#000"),
        through_time.time_heatmap("mlp", runs[1][1], (-6.0, 0.0)),
    ):
        text = json.dumps(chart.to_dict()).replace("\\n", " ")  # a note's lines joined again
        assert "mlp is not a recurrent net (it has no time steps)." in text and "bin_start" not in text
