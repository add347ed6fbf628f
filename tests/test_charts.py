"""vg_core.charts (Altair, pre-binned, shared scales) and vg_core.presets (the page's data and URL form)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import altair as alt
import numpy as np
import pandas as pd
import pytest
import vl_convert as vlc
from hypothesis import given, settings
from hypothesis import strategies as st

from vg_core import charts
from vg_core.i18n import ENGLISH, translator
from vg_core.presets import MAX_RUNS, PER_RUN_FIELDS, PRESETS, SHARED_FIELDS, Comparison, Preset
from vg_core.probes import PERCENTILES
from vg_core.reproductions import REPRODUCTIONS
from vg_core.results import RunResult
from vg_core.spec import ARTICLE_SPEC, RunSpec
from vg_core.sweep import SWEEP_COLUMNS
from vg_core.train import train

ROW_LIMIT = 5000  # Altair's default max_rows: no chart may need it lifted


@pytest.fixture(scope="module")
def runs() -> list[tuple[str, RunResult]]:
    """Two tiny real runs: a vanishing sigmoid and a ReLU."""
    base = RunSpec(dataset="mnist-sample", n_train=300, depth=4, width=16, epochs=2, batch_size=50, lr=0.05)
    specs = [base.replace(activation="sigmoid"), base.replace(activation="relu")]
    return list(zip(charts.run_names(specs), (train(spec) for spec in specs)))


@pytest.fixture(scope="module")
def diverged() -> RunResult:
    spec = RunSpec(dataset="mnist-sample", n_train=200, activation="relu", depth=8, width=32, init="normal")
    result = train(spec.replace(init_std=1.0, epochs=1, batch_size=50, lr=0.01))
    assert result.diverged_at_step is not None
    return result


def rows(chart: alt.TopLevelMixin) -> int:
    """Rows of data the chart carries, over all its layers."""
    spec = chart.to_dict()
    return sum(len(values) for values in spec.get("datasets", {}).values())


def every_chart(runs, step=None) -> list[alt.TopLevelMixin]:
    names = [name for name, _ in runs]
    made = [
        charts.gradient_flow(runs, step),
        charts.learning_curve(runs, "loss", step),
        charts.learning_curve(runs, "acc", step),
    ]
    grad = charts.ridge_domain(runs, "weight_grad", step)
    act = charts.ridge_domain(runs, "activation", step)
    heat = charts.heatmap_domain(runs)
    peak = charts.article_max(runs, step)
    trace = charts.activation_trace_domain(runs)
    ratio = charts.ratio_domain(runs)
    acts = charts.activation_domains(runs, step)
    percentiles = charts.percentile_domain(runs)
    made.append(charts.activation_std(runs, step))
    for name, result in runs:
        color = charts.run_color(names, name)
        made += [
            charts.activation_trace(result, trace, step, name),
            charts.percentile_trace(result, percentiles, step, name),
            charts.ratio_chart(result, ratio, step, name),
            charts.ridgeline(result, "activation", step, acts[result.spec.activation], color, name),
            charts.ridgeline(result, "weight_grad", step, grad, color, name),
            charts.ridgeline(result, "grad_out", step, grad, color, name),
            charts.ridgeline(result, "activation", step, act, color, name),
            charts.gradient_heatmap(result, heat, step, name),
            charts.article_histogram(result, step, peak, color, name),
        ]
    return made


def test_a_curve_made_once_and_marked_at_a_step_is_the_curve_made_at_that_step(runs):
    """The page keeps each learning curve's spec and adds the step's marker (charts.with_step_rule) as it scrubs."""
    for metric in ("loss", "acc"):
        unmarked = charts.learning_curve(runs, metric).to_dict(validate=False)
        for step in runs[0][1].snapshot_steps:
            made = charts.learning_curve(runs, metric, step).to_dict(validate=False)
            assert charts.with_step_rule(unmarked, {"values": [{"step": step}]}) == made


def _scaled(result: RunResult, factor: float, nan_layer: int | None = None) -> RunResult:
    """A copy of `result` with every recorded value times `factor` and, optionally, one layer's values NaN."""
    stats = result.layer_stats.assign(value=result.layer_stats["value"] * factor)
    layer_steps = result.layer_steps.assign(weight_grad_norm=result.layer_steps["weight_grad_norm"] * factor)
    if nan_layer is not None:
        stats.loc[stats["layer"] == nan_layer, "value"] = np.nan
        layer_steps.loc[layer_steps["layer"] == nan_layer, "weight_grad_norm"] = np.nan
    history = result.history.assign(train_loss=result.history["train_loss"] * factor)
    return RunResult(result.spec, result.meta, history, result.steps, layer_steps, stats, result.histograms)


@pytest.fixture(scope="module")
def extremes() -> dict[str, RunResult]:
    """1 and 100 layers, 0 and 100 epochs."""
    spec = RunSpec(dataset="mnist-sample", n_train=20, depth=1, width=4, epochs=0, batch_size=20, probe_size=10)
    return {
        "1 layer, 0 epochs": train(spec),
        "100 layers, 0 epochs": train(spec.replace(depth=100, width=2)),
        "1 layer, 100 epochs": train(spec.replace(epochs=100)),
    }


def test_builders_give_valid_non_empty_specs_at_every_size(extremes) -> None:
    trained = extremes["1 layer, 100 epochs"]
    cases = {name: [(f"1 · {name}", result)] for name, result in extremes.items()}
    cases["huge, tiny and NaN values"] = [
        ("1 · huge", _scaled(trained, 1e30)),
        ("2 · tiny", _scaled(trained, 1e-30, nan_layer=1)),
        ("3 · zero", _scaled(trained, 0.0)),
        ("4 · 100 layers", extremes["100 layers, 0 epochs"]),
    ]
    for name, runs in cases.items():
        for step in (None, 0) if name == "1 layer, 100 epochs" else (None,):  # 0 epochs: None is step 0
            for chart in every_chart(runs, step):
                spec = chart.to_dict()
                json.dumps(spec, allow_nan=False)
                assert rows(chart) > 0, name  # something drawn, or a note saying why not
    extreme = cases["huge, tiny and NaN values"]
    assert charts.to_svg(every_chart(extreme)[:4], 200).startswith("<svg")  # and Vega draws them


def test_layer_labels_are_named_and_thinned(extremes) -> None:
    for n in (1, 5, 12, 21, 30, 100):
        ticks = charts.layer_ticks(n)
        assert ticks[0] == 1 and ticks[-1] == n and len(ticks) <= charts.MAX_LAYER_LABELS
        assert ticks == sorted(set(ticks))
    deep = extremes["100 layers, 0 epochs"]
    assert deep.layer_names[0] == "fc1" and deep.layer_names[-1] == "fc101"
    spec = charts.gradient_flow([("1 · deep", deep)], None).to_dict()
    axis = spec["layer"][0]["encoding"]["x"]["axis"]
    assert len(axis["values"]) <= charts.MAX_LAYER_LABELS and "fc101" in axis["labelExpr"]
    svg = vlc.vegalite_to_svg(spec)
    assert ">fc1<" in svg and ">fc101<" in svg and ">fc2<" not in svg


def test_tick_labels_are_human(runs) -> None:
    for factor in (1e20, 1e-12, 1.0):
        svg = vlc.vegalite_to_svg(charts.gradient_flow([("1 · x", _scaled(runs[0][1], factor))], None).to_dict())
        labels = [t for t in re.findall(r">([^<]+)</text>", svg) if re.fullmatch(r"[-0-9.e]+", t)]
        assert labels and all(re.fullmatch(r"-?\d{1,4}(\.\d{1,3})?|-?[1-9](\.\d)?e-?\d{1,2}", t) for t in labels)
        assert len(labels) <= 12  # labels of the powers of ten only, not of every minor tick


def test_run_names_keep_what_tells_the_runs_apart() -> None:
    names = charts.run_names(Comparison.from_preset("rescue").specs)
    assert names == ["1 · sigmoid", "2 · sigmoid residual", "3 · sigmoid batch-norm"]
    assert charts.run_names(Comparison.from_preset("scale").specs)[0] == "1 · relu normal(σ=0.01)"
    assert charts.run_names(Comparison.from_preset("article").specs) == ["1 · sigmoid 5x1000 default-init"]


def test_empty_panels_say_why(runs, diverged) -> None:
    zero = _scaled(runs[1][1], 0.0)
    flow = json.dumps(
        charts.gradient_flow([("1 · zero", zero), ("2 · diverged", diverged)], None).to_dict(), ensure_ascii=False
    )
    assert "1 · zero: no layer drawn" in flow and "exactly 0, which a log scale cannot show" in flow
    assert "2 · diverged: no layer drawn" in flow and f"NaN: diverged at step {diverged.diverged_at_step:,}" in flow
    at_init = [(name, result) for name, result in runs]
    assert "not drawn" not in json.dumps(charts.gradient_flow(at_init, 0).to_dict())
    ridge = json.dumps(
        charts.ridgeline(diverged, "weight_grad", None, (-10.0, 1.0), "#000").to_dict(), ensure_ascii=False
    ).replace("\\n", " ")  # a note's lines joined again (wrapped to fit a narrow panel)
    assert f"diverged at step {diverged.diverged_at_step:,}" in ridge


def test_theory_guides(runs) -> None:
    guide = charts.sigmoid_guide(runs, 0, "weight_grad_norm", 0.0)
    assert set(guide["run"]) == {runs[0][0]}  # the sigmoid run only
    values = guide.sort_values("layer")["value"].to_numpy()
    assert np.allclose(values[:-1] / values[1:], charts.SIGMOID_SLOPE)
    last = runs[0][1].stat("weight_grad_norm", 0)[runs[0][1].spec.depth]
    assert values[-1] == pytest.approx(last)
    spec = RunSpec(dataset="mnist-sample", n_train=50, activation="relu", depth=6, width=64, epochs=0, probe_size=50)
    he = [
        (f"{i} · {init}", train(spec.replace(init=init)))
        for i, init in enumerate(("lecun_normal", "kaiming_normal"), 1)
    ]
    guide = charts.he_guide(he, 0)
    for (name, result), factor in zip(he, (2**-0.5, 1.0)):
        part = guide[guide["run"] == name].sort_values("layer")["value"].to_numpy()
        assert len(part) == 6 and np.allclose(part[1:] / part[:-1], factor)
        assert part[0] == pytest.approx(result.stat("act_std", 0)[1])


def test_ratio_view_shows_both_ratios_and_the_guide(runs) -> None:
    _, result = runs[1]
    frame = charts.ratio_frame(result)
    assert set(frame["kind"]) == set(charts.RATIO_KINDS.values())
    update = frame[(frame["kind"] == "update ÷ weight") & (frame["layer"] == 1)].set_index("step")["value"]
    assert update.to_dict() == pytest.approx(
        result.layer_stats.query("quantity == 'update_ratio' and layer == 1").set_index("step")["value"].to_dict()
    )
    low, high = charts.ratio_domain(runs)
    assert low < charts.RATIO_GUIDE < high
    spec = charts.ratio_chart(result, (low, high), 3, "x").to_dict()
    guide, lines, _ = spec["layer"]
    assert guide["mark"]["type"] == "rule" and lines["encoding"]["y"]["scale"]["type"] == "log"


def test_activation_axes_are_per_activation(runs) -> None:
    domains = charts.activation_domains(runs, None)
    assert set(domains) == {"sigmoid", "relu"}
    assert domains["sigmoid"][1] < 1.5 < domains["relu"][1]  # sigmoid keeps its own 0…1


def test_charts_speak_the_pages_language(runs, diverged) -> None:
    """Titles, axes, tooltips and notes in Indonesian, numbers written the Indonesian way; English by default."""
    indonesian = translator("id")
    flow = json.dumps(
        charts.gradient_flow([("2 · diverged", diverged)], None, tr=indonesian).to_dict(), ensure_ascii=False
    )
    assert "lapisan (masukan → keluaran)" in flow and "tidak ada lapisan yang digambar" in flow
    assert "layer (input → output)" not in flow and "no layer drawn" not in flow
    curve = json.dumps(charts.learning_curve(runs, "acc", tr=indonesian).to_dict(), ensure_ascii=False)
    assert '"Akurasi"' in curve and "langkah pelatihan" in curve
    assert charts.step_label(12, 5, indonesian) == "langkah 12 (epoch 2,40)" and charts.step_label(12, 5) == (
        "step 12 (epoch 2.40)"
    )
    title = charts.export_title("Aliran gradien", None, 6, "weight_grad", indonesian)
    assert title == "Aliran gradien\npada cuplikan terakhir setiap jaringan · gradien bobot ∂L/∂W"


def test_svg_export_names_the_view_step_and_gradients(runs) -> None:
    title = charts.export_title("Gradient flow", 12, 6, "grad_out")
    svg = charts.to_svg([charts.gradient_flow(runs, 12, "grad_out_norm")], 400, title)
    assert "Gradient flow" in svg and "step 12 (epoch 2.00)" in svg and "back-propagated gradients ∂L/∂z" in svg


def test_every_chart_is_valid_vega_lite_with_few_rows(runs) -> None:
    for step in (None, 0, 3):
        for chart in every_chart(runs, step):
            spec = chart.to_dict()  # validates against the Vega-Lite schema
            assert spec["autosize"]["type"] == "fit-x"
            assert 0 < rows(chart) < ROW_LIMIT
            json.dumps(spec, allow_nan=False)  # strict JSON: no NaN or inf reaches the browser


def test_histograms_reach_altair_prebinned(runs) -> None:
    _, result = runs[0]
    chart = charts.ridgeline(result, "weight_grad", None, (-12, 2), "#000")
    spec = json.dumps(chart.to_dict())
    assert '"bin"' not in spec  # Altair does no binning: the engine's fixed bins are used as they are
    frame = charts.ridge_frame(result, "weight_grad", None)
    assert set(frame.columns) >= {"layer", "bin_start", "bin_end", "count", "base", "top"}
    at = charts.snapshot_at(result, None)
    source = result.histograms
    source = source[(source["quantity"] == "weight_grad") & (source["step"] == at)]
    assert frame["count"].sum() == source["count"].sum()  # trimming drops only empty bins


def test_ridge_heights_are_per_layer_shapes(runs) -> None:
    _, result = runs[0]
    frame = charts.ridge_frame(result, "activation", 0)
    for layer, part in frame.groupby("layer"):
        heights = part["base"] - part["top"]
        assert heights.max() == pytest.approx(charts.RIDGE_OVERLAP)
        assert (heights >= 0).all() and (part["base"] == layer).all()


def test_sigmoid_gradients_sit_left_of_relus_in_the_first_layer(runs) -> None:
    """The picture the page exists for: fc1's gradients are orders of magnitude smaller under sigmoid."""
    medians = []
    for _, result in runs:
        frame = charts.histogram_at(result, "weight_grad", 0)
        first = frame[frame["layer"] == 1]
        cumulative = first["count"].cumsum() / first["count"].sum()
        medians.append(float(first.loc[cumulative >= 0.5, "bin_start"].iloc[0]))
    sigmoid, relu = medians
    assert sigmoid < relu - 1  # more than a decade apart


def test_shared_domains_cover_every_run(runs) -> None:
    low, high = charts.ridge_domain(runs, "weight_grad", None)
    for _, result in runs:
        frame = charts.histogram_at(result, "weight_grad", None)
        filled = frame[frame["count"] > 0]
        assert low <= filled["bin_start"].min() and filled["bin_end"].max() <= high
    low, high = charts.heatmap_domain(runs)
    for _, result in runs:
        values = charts.heatmap_frame(result)["log_norm"]
        assert low <= values.min() and values.max() <= high
    assert charts.article_max(runs, None) == max(
        charts.article_frame(result, None)["count"].max() for _, result in runs
    )


def test_flow_frame_has_one_row_per_run_and_layer(runs) -> None:
    frame = charts.gradient_flow_frame(runs, 0)
    assert len(frame) == 2 * 5  # 4 hidden layers + the output layer, per run
    assert (frame["value"] > 0).all()
    sigmoid = frame[frame["run"] == runs[0][0]].set_index("layer")["value"]
    assert sigmoid[1] < sigmoid[4]  # vanishing towards the input


def test_heatmap_aggregates_steps_into_columns() -> None:
    result = _fake_result(steps=10_000, layers=3)
    frame = charts.heatmap_frame(result, columns=50)
    assert frame["step_start"].nunique() == 50 and len(frame) == 150
    assert np.isfinite(frame["log_norm"]).all()
    assert rows(charts.gradient_heatmap(result, (-3.0, 1.0), 5000)) < ROW_LIMIT


def test_snapshot_at_picks_the_latest_recorded_step(runs) -> None:
    _, result = runs[0]
    steps = result.snapshot_steps
    assert charts.snapshot_at(result, None) == steps[-1]
    assert charts.snapshot_at(result, steps[1] + 0) == steps[1]
    assert charts.snapshot_at(result, 10**9) == steps[-1]
    assert charts.step_label(0, 6) == "initialisation"
    assert charts.step_label(12, 6) == "step 12 (epoch 2.00)"


def test_a_diverged_run_charts_without_nan(diverged) -> None:
    runs = [("1 · diverged", diverged)]
    for chart in every_chart(runs):
        json.dumps(chart.to_dict(), allow_nan=False)
    assert charts.signed_outside(diverged, None) >= 0


def test_article_histogram_is_the_articles_binning(runs) -> None:
    _, result = runs[0]
    frame = charts.article_frame(result, None)
    assert len(frame) == 100
    assert frame["bin_start"].min() == pytest.approx(-1) and frame["bin_end"].max() == pytest.approx(1)
    spec = charts.article_histogram(result, None, 1000, "#000").to_dict()
    assert spec["layer"][0]["encoding"]["y"]["scale"]["type"] == "log"


def test_a_view_exports_as_one_svg(runs) -> None:
    import vl_convert as vlc

    views = [charts.ridgeline(result, "weight_grad", None, (-12.0, 2.0), "#000", name) for name, result in runs]
    svg = vlc.vegalite_to_svg(charts.side_by_side(views, 300).to_dict())
    assert svg.startswith("<svg") and "fc1" in svg and runs[1][0] in svg


def test_activation_std_is_hes_per_layer_view(runs) -> None:
    spec = charts.activation_std(runs, 0).to_dict()
    lines = spec["layer"][0]
    assert lines["encoding"]["y"]["scale"]["type"] == "log" and lines["encoding"]["color"]["field"] == "run"
    values = next(rows for rows in spec["datasets"].values() if rows and "layer_name" in rows[0])
    assert len(values) == 2 * 4  # the hidden layers only: the output layer has no activation
    assert {row["layer_name"] for row in values} == {"fc1", "fc2", "fc3", "fc4"}


def test_activation_trace_is_mean_and_spread_per_layer_over_training(runs) -> None:
    _, result = runs[0]
    frame = charts.activation_trace_frame(result)
    assert sorted(frame["step"].unique()) == result.snapshot_steps
    assert sorted(frame["layer"].unique()) == [1, 2, 3, 4]
    first = frame[(frame["step"] == 0) & (frame["layer"] == 1)].iloc[0]
    assert first["mean"] == pytest.approx(result.stat("act_mean", 0)[1])
    assert first["high"] - first["low"] == pytest.approx(2 * result.stat("act_std", 0)[1])
    assert 0.3 < first["mean"] < 0.7  # sigmoid around 1/2 at initialisation
    low, high = charts.activation_trace_domain(runs)
    for _, each in runs:  # one y range for every run's panel
        part = charts.activation_trace_frame(each)
        assert low <= part["low"].min() and part["high"].max() <= high
    spec = charts.activation_trace(result, (low, high), 3, "run").to_dict()
    band, line, rule = spec["layer"]
    assert band["mark"]["type"] == "area" and band["encoding"]["y2"]["field"] == "high"
    assert line["encoding"]["x"]["scale"]["type"] == "symlog"
    assert band["encoding"]["y"]["scale"]["domain"] == line["encoding"]["y"]["scale"]["domain"] == [low, high]
    assert rule["mark"]["type"] == "rule"


def test_percentile_trace_is_the_last_hidden_layers_input_over_training(runs) -> None:
    _, result = runs[0]
    frame = charts.percentile_frame(result)
    assert sorted(frame["step"].unique()) == result.snapshot_steps
    assert set(frame["layer_name"]) == {"fc4"} and sorted(frame["percentile"].unique()) == list(PERCENTILES)
    for q in PERCENTILES:
        at_start = frame[(frame["step"] == 0) & (frame["percentile"] == q)]["value"].iloc[0]
        assert at_start == pytest.approx(result.stat(f"pre_act_p{q}", 0)[4])
    low, high = charts.percentile_domain(runs)
    for _, each in runs:  # one y range for every run's panel
        values = charts.percentile_frame(each)["value"]
        assert low <= values.min() and values.max() <= high
    spec = charts.percentile_trace(result, (low, high), 3, "run").to_dict()
    lines, rule = spec["layer"]
    assert lines["encoding"]["x"]["scale"]["type"] == "symlog" and lines["encoding"]["y"]["scale"]["domain"] == [
        low,
        high,
    ]
    assert lines["encoding"]["strokeDash"]["scale"]["range"][1] == charts.PERCENTILE_DASHES[50]
    assert rule["mark"]["type"] == "rule"
    rows_drawn = next(rows for rows in spec["datasets"].values() if rows and "percentile" in rows[0])
    assert len(rows_drawn) == 3 * len(result.snapshot_steps)


def test_a_run_without_percentiles_says_why(runs) -> None:
    """A recurrent net (no separate pre-activation) records no percentiles: the panel says so."""
    _, result = runs[0]
    stats = result.layer_stats[~result.layer_stats["quantity"].str.startswith("pre_act_p")]
    bare = RunResult(
        result.spec, result.meta, result.history, result.steps, result.layer_steps, stats, result.histograms
    )
    assert charts.percentile_frame(bare).empty and charts.percentile_domain([("1 · bare", bare)]) == (-1.0, 1.0)
    spec = charts.percentile_trace(bare, (-1.0, 1.0)).to_dict()
    json.dumps(spec, allow_nan=False)
    assert any(layer["mark"]["type"] == "text" for layer in spec["layer"])


def test_a_deep_run_traces_a_few_layers_ends_included() -> None:
    assert charts.trace_layers(5) == [1, 2, 3, 4, 5]
    layers = charts.trace_layers(30)
    assert layers[0] == 1 and layers[-1] == 30 and len(layers) == charts.TRACE_LAYERS
    assert charts.trace_layers(1) == [1]


def _sweep_table(names: list[str]) -> pd.DataFrame:
    rows = []
    for name, activation, accuracy, ratio in zip(names, ("relu", "swish"), ((0.9, 0.1), (0.9, 0.8)), (1e-6, 0.5)):
        for depth, acc in zip((2, 50), accuracy):
            rows.append(
                {"depth": depth, "activation": activation, "init": "kaiming_normal", "test_acc": acc}
                | {"grad_ratio_init": ratio, "grad_ratio_final": np.nan, "epochs_to_90pct": 1.0}
                | {"diverged": False, "key": f"{activation}{depth}", "run": name}
            )
    return pd.DataFrame(rows, columns=[*SWEEP_COLUMNS, "run"])


def test_sweep_charts_draw_one_line_per_run_against_depth() -> None:
    names = ["1 · relu", "2 · swish"]
    table = _sweep_table(names)
    accuracy = charts.sweep_chart(table, names, "test_acc").to_dict()
    assert accuracy["encoding"]["x"]["field"] == "depth" and accuracy["encoding"]["x"]["axis"]["values"] == [2, 50]
    assert accuracy["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert accuracy["encoding"]["color"]["scale"]["domain"] == names
    assert rows(charts.sweep_chart(table, names, "test_acc")) == 4
    ratio = charts.sweep_chart(table, names, "grad_ratio")
    spec = ratio.to_dict()
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    assert rows(ratio) == 4  # the NaN after-training ratios are left out, never sent as NaN
    json.dumps(spec, allow_nan=False)
    empty = pd.DataFrame(columns=[*SWEEP_COLUMNS, "run"])
    for metric in ("test_acc", "grad_ratio"):
        json.dumps(charts.sweep_chart(empty, names, metric).to_dict(), allow_nan=False)


def test_a_note_wraps_to_fit_a_narrow_panel() -> None:
    """Vega neither wraps a text mark nor shows what passes its panel's edge (a note in a column of four was cut
    mid-word): a note's lines are at most NOTE_CHARS long, and every word is kept, in order."""
    sentence = "A fused recurrent layer's activation has no separate input to take percentiles of."
    note = charts.common._note([sentence, "Short."])
    lines = note.data["text"][0].split("\n")
    assert len(lines) > 2 and all(len(line) <= charts.common.NOTE_CHARS for line in lines)
    assert " ".join(lines) == f"{sentence} Short."


def test_new_views_export_as_svg(runs) -> None:
    trace = charts.activation_trace_domain(runs)
    views = [charts.activation_std(runs, None), *(charts.activation_trace(r, trace, None, n) for n, r in runs)]
    views += [charts.percentile_trace(r, charts.percentile_domain(runs), None, n) for n, r in runs]
    assert charts.to_svg(views, 300).startswith("<svg")


def test_the_engine_never_imports_streamlit() -> None:
    """Every module of vg_core (the charts' among them) imported in a fresh interpreter: streamlit is not loaded."""
    code = (
        "import importlib, pkgutil, sys, vg_core\n"
        "for module in pkgutil.walk_packages(vg_core.__path__, 'vg_core.'):\n"
        "    if not module.name.endswith('__main__'):\n"
        "        importlib.import_module(module.name)\n"
        "assert 'vg_core.charts.through_time' in sys.modules\n"
        "sys.exit(3 if 'streamlit' in sys.modules else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:] or "streamlit was imported"


def _fake_result(steps: int, layers: int) -> RunResult:
    spec = RunSpec(dataset="mnist-sample", depth=layers - 1, width=4, epochs=1)
    step = np.repeat(np.arange(1, steps + 1), layers)
    layer = np.tile(np.arange(1, layers + 1), steps)
    layer_steps = pd.DataFrame({"step": step, "layer": layer, "weight_grad_norm": 10.0 ** -layer.astype(float)})
    empty = {name: pd.DataFrame() for name in ("history", "steps", "layer_stats", "histograms")}
    return RunResult(spec=spec, meta={"total_steps": steps}, layer_steps=layer_steps, **empty)


# ---------------------------------------------------------------- presets and the URL form


def test_presets_are_valid_and_round_trip_through_the_url() -> None:
    assert "activations" in PRESETS and PRESETS["article"].specs() == [ARTICLE_SPEC]
    for key, preset in PRESETS.items():
        comparison = Comparison.from_preset(key)
        assert 1 <= len(comparison.specs) <= MAX_RUNS and comparison.is_preset
        assert Comparison.from_params(comparison.to_params()) == (comparison, [])
        assert preset.caption and preset.title


def test_reproductions_are_presets_built_from_their_specs() -> None:
    for reproduction in REPRODUCTIONS:
        preset = PRESETS[reproduction.slug]
        assert preset.reproduction == reproduction.slug and preset.base == reproduction.base
        assert preset.specs() == [reproduction.base.replace(**run) for run in reproduction.runs]
        assert preset.caption.lower() == reproduction.claim.lower() and preset.depths == reproduction.depths
    assert PRESETS["glorot-init"].grad_kind == "grad_out" and PRESETS["swish-depth"].depths[-1] == 50
    # Their shared settings differ from the quick presets' (lr, momentum, batch size): the URL keeps them.
    saturation = Comparison.from_preset("glorot-saturation")
    params = saturation.to_params()
    assert (params["lr"], params["momentum"], params["batch_size"]) == ("0.1", "0.0", "10")
    shrunk, warnings = Comparison.from_params({**params, "width": "16"})
    assert not warnings and shrunk.specs[0].lr == 0.1 and shrunk.specs[0].width == 16
    assert shrunk.runs_match_preset and not shrunk.is_preset
    assert shrunk.changed_settings() == ["width 16 (preset: 1000)"]
    other, _ = Comparison.from_params({"preset": "he-init", "run1": "tanh", "run2": "relu"})
    assert not other.runs_match_preset


def test_the_default_preset_is_quick_and_offline() -> None:
    specs = PRESETS["activations"].specs()
    assert [s.activation for s in specs] == ["sigmoid", "relu", "swish"]
    assert {s.dataset for s in specs} == {"mnist-sample"} and {s.depth for s in specs} == {5}


def test_a_preset_is_data() -> None:
    """A later preset (a paper reproduction, say) is one more entry: no page code changes."""
    preset = Preset("demo", "Demo", "caption", RunSpec(dataset="mnist-sample"), ({"activation": "tanh"}, {}))
    assert [s.activation for s in preset.specs()] == ["tanh", "sigmoid"]
    with pytest.raises(ValueError):
        Preset("bad", "Bad", "caption", RunSpec(), ({"depth": 3},))  # depth is shared, not per run
    assert set(SHARED_FIELDS).isdisjoint(PER_RUN_FIELDS)


def test_url_parsing_names_each_bad_value() -> None:
    comparison, warnings = Comparison.from_params(
        {"preset": "init", "depth": "0", "width": "12", "run1": "relu", "run1_init": "bogus", "run2": "tanh"}
    )
    assert [s.depth for s in comparison.specs] == [20, 20, 20]  # the preset's depth
    assert [s.width for s in comparison.specs] == [12, 12, 12]
    assert comparison.specs[0].init == "default" and comparison.specs[1].activation == "tanh"
    english = [ENGLISH.render(w) for w in warnings]
    assert any(w.startswith("depth:") for w in english) and any(w.startswith("run1_init:") for w in english)
    assert comparison.specs[2] == PRESETS["init"].specs()[2].replace(width=12)  # run 3 is the preset's


def test_a_partial_link_keeps_the_presets_other_runs_and_off_drops_one() -> None:
    comparison, warnings = Comparison.from_params({"preset": "rescue", "run1": "tanh"})
    rescue = PRESETS["rescue"].specs()
    assert not warnings and comparison.specs == (rescue[0].replace(activation="tanh"), *rescue[1:])
    tweaked, warnings = Comparison.from_params({"preset": "rescue", "run2_norm": "layer", "run3": "off"})
    assert not warnings and tweaked.specs == (rescue[0], rescue[1].replace(norm="layer"))
    assert tweaked.to_params()["run3"] == "off" and Comparison.from_params(tweaked.to_params()) == (tweaked, [])
    kept, warnings = Comparison.from_params({"preset": "rescue", "run1": "off"})
    assert kept.specs == tuple(rescue) and ENGLISH.render(warnings[0]).startswith("run1:")
    view_only, warnings = Comparison.from_params({"preset": "rescue", "step": "12", "grad": "backprop"})
    assert view_only == Comparison.from_preset("rescue") and not warnings  # the page's view: not a setting


def test_unavailable_device_falls_back_to_auto() -> None:
    comparison, warnings = Comparison.from_params({"device": "cuda"}, devices=("auto", "cpu"))
    assert comparison.specs[0].device == "auto" and "device" in ENGLISH.render(warnings[0])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=40) | st.lists(st.text(max_size=8)), max_size=12))
def test_url_parsing_never_raises(params) -> None:
    comparison, warnings = Comparison.from_params(params)
    assert 1 <= len(comparison.specs) <= MAX_RUNS
    assert all(len(ENGLISH.render(w)) < 600 for w in warnings)


@settings(max_examples=60, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "depth": st.integers(1, 30).map(str),
            "width": st.integers(1, 300).map(str),
            "lr": st.floats(1e-5, 1.0).map(repr),
            "run1": st.sampled_from(["sigmoid", "relu", "tanh"]),
            "run2_init": st.sampled_from(["normal", "xavier_uniform"]),
            "run2": st.sampled_from(["swish", "gelu"]),
            "run2_std": st.floats(0.001, 2.0).map(repr),
        }
    ).map(lambda p: p if p["run2_init"] == "normal" else {k: v for k, v in p.items() if k != "run2_std"})
)
def test_a_written_url_restores_exactly(params) -> None:
    comparison, warnings = Comparison.from_params(params)
    assert not warnings
    again, more = Comparison.from_params(comparison.to_params())
    assert again == comparison and not more
