"""The sidebar's "Your runs": a saved run opened into the visitor's session and drawn as one more column."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from engine_helpers import as_watched, tiny_spec, zipped_run
from streamlit.testing.v1 import AppTest
from test_app import APP, SECTIONS, TIMEOUT, TINY, assert_clean, charts, charts_per_page

from vg_core import charts as vg_charts
from vg_core.i18n import translator
from vg_core.results import RunResult
from vg_core.runfiles import RunFileError, load_zip
from vg_core.train import train
from vg_page import your_runs

LAYERS = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "fc"]
ONE_RUN = {**TINY, "run1": "sigmoid", "run2": "off", "run3": "off"}  # one built-in run: the page is quick


@pytest.fixture(scope="module")
def watched() -> RunResult:
    return as_watched(train(tiny_spec()), LAYERS)


@pytest.fixture(scope="module")
def upload(watched: RunResult, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return zipped_run(watched, tmp_path_factory.mktemp("upload") / "my-net")


def english(item) -> str:
    return translator("en").render(item)


def refuse(message: str):
    def opener() -> RunResult:
        raise RunFileError(message)

    return opener


def test_add_and_remove_keep_to_the_session(watched: RunResult, upload: bytes) -> None:
    state: dict = {}
    your_runs.add(state, "my-net.zip (uploaded)", lambda: load_zip(upload))
    assert your_runs.columns(state) == [("Y1 · my-net", your_runs.your_runs(state)[0].result)]
    assert state[your_runs.MESSAGE_KEY] is None
    your_runs.add(state, "bad.zip (uploaded)", refuse("Not a readable .zip archive."))
    assert english(state[your_runs.MESSAGE_KEY]) == "Could not open bad.zip (uploaded): Not a readable .zip archive."
    assert [name for name, _ in your_runs.columns(state)] == ["Y1 · my-net"]  # nothing else changed
    your_runs.add(state, "again.zip (uploaded)", lambda: load_zip(upload))
    assert english(state[your_runs.MESSAGE_KEY]) == "again.zip (uploaded) is already shown."
    assert len(your_runs.your_runs(state)) == 1
    your_runs.remove(state, watched.key)
    assert your_runs.columns(state) == [] and state[your_runs.MESSAGE_KEY] is None


def test_at_most_max_your_runs(watched: RunResult) -> None:
    state: dict = {}
    for index in range(your_runs.MAX_YOUR_RUNS + 1):
        your_runs.add(state, f"run {index}", lambda index=index: as_watched(watched, LAYERS, f"net-{index}"))
    assert len(your_runs.your_runs(state)) == your_runs.MAX_YOUR_RUNS
    assert "At most" in english(state[your_runs.MESSAGE_KEY])


def headers(app: AppTest) -> list[str]:
    return [str(m.value) for m in app.markdown if "■" in str(m.value)]


def test_upload_adds_a_column_and_a_bad_upload_changes_nothing(upload: bytes) -> None:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.query_params.update(ONE_RUN)
    for key in SECTIONS:  # every section open: the uploaded run's own charts are drawn
        app.session_state[f"section-{key}"] = True
    app.run()
    assert_clean(app)
    assert len(headers(app)) == 1 and len(charts(app)) == charts_per_page(1, opened=True)

    app.file_uploader[0].upload("my-net.zip", upload, "application/zip")
    app.run()
    assert_clean(app)
    assert len(headers(app)) == 2 and "Y1 · my-net" in headers(app)[-1]
    assert len(charts(app)) == charts_per_page(2, opened=True)
    named = [c for c in charts(app) if "layer1.0.conv1" in c.proto.spec]  # its own layer names on its charts
    assert len(named) == 5  # ridgelines (gradients, activations), heatmap, activations over training, ratios
    assert [b.label for b in app.get("download_button")].count("history.csv") == 2

    app.file_uploader[0].upload("bad.zip", b"not a zip", "application/zip")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    shown = [e.value.replace("\\", "").replace("\u2060", "") for e in app.error]  # plain text on the page
    assert shown == ["Could not open bad.zip (uploaded): Not a readable .zip archive (File is not a zip file)."]
    assert len(headers(app)) == 2 and len(charts(app)) == charts_per_page(2, opened=True)

    app.button(key="your_runs_remove_watch-my-net-0123abcd").click()
    app.run()
    assert_clean(app)
    assert len(headers(app)) == 1 and len(charts(app)) == charts_per_page(1, opened=True)


def test_a_run_from_vg_runs_dir(watched: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    watched.save(tmp_path / "runs" / "my-net")
    monkeypatch.setenv("VG_RUNS_DIR", str(tmp_path / "runs"))
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.query_params.update(ONE_RUN)
    app.run()
    picker = app.selectbox(key=your_runs.PICK_KEY)
    assert picker.options == [your_runs.NO_PICK, "my-net"]
    picker.select("my-net")
    app.run()
    assert_clean(app)
    assert "Y1 · my-net" in headers(app)[-1] and len(charts(app)) == charts_per_page(2)


def test_shared_charts_name_layers_only_where_the_runs_agree(watched: RunResult) -> None:
    built_in = dataclasses.replace(watched, spec=tiny_spec(), meta={"status": "complete"})
    assert vg_charts.layer_names([("a", built_in), ("b", built_in)]) == ["fc1", "fc2", "fc3", "fc4"]
    assert vg_charts.layer_names([("a", built_in), ("yours", watched)]) == ["1", "2", "3", "4"]  # plain numbers
    assert set(vg_charts.gradient_flow_frame([("yours", watched)], None)["layer_name"]) == set(LAYERS)
