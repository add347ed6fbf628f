"""The page through Streamlit's AppTest: it runs, draws its charts, keeps its state in the URL, and
turns bad links into warnings. Runs are kept tiny through the URL (the way a user would share them)."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vg_core.i18n import ENGLISH
from vg_core.presets import PRESETS, Comparison
from vg_core.reproductions import find
from vg_core.spec import RECURRENT

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 240  # a loaded 2-core CI machine trains the default preset in seconds, but give it room
TINY = {"dataset": "mnist-sample", "n_train": "200", "epochs": "1", "width": "16", "batch_size": "50"}


SECTIONS = ("act", "percentiles", "grad_dist", "act_dist", "ratio", "heatmap", "article", "time")  # folded


def charts_per_page(runs: int, opened: bool = False) -> int:
    """Gradient flow, loss, accuracy; with the folded sections `opened`, also activation std by layer and per run:
    gradients, activations, update and gradient ratios, heatmap, article, activations over training, the last
    hidden layer's input percentiles over training. (The depth sweep is closed, except on a sweep preset.)"""
    return 3 + (1 + 7 * runs if opened else 0)


def run_app(params: dict[str, str] | None = None, opened: bool = False) -> AppTest:
    """The page from a link; `opened`: with every folded section open (as if clicked), all its charts drawn."""
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.query_params.update(params or {})
    if opened:
        for key in SECTIONS:
            app.session_state[f"section-{key}"] = True
    return app.run()


def charts(app: AppTest) -> list:
    return list(app.get("vega_lite_chart"))


def texts(app: AppTest) -> str:
    return "\n".join(str(element.value) for element in [*app.markdown, *app.caption, *app.info])


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def test_default_page_runs_and_draws_its_charts() -> None:
    app = run_app()
    assert_clean(app)
    assert len(charts(app)) == charts_per_page(3)  # the first row; the sections below are folded, not drawn
    assert app.query_params["preset"] == "activations"
    assert "Vanishing" in texts(app)  # the sigmoid column's verdict
    assert app.select_slider[0].label.startswith("Training step")
    assert [b.label for b in app.get("download_button")].count("history.csv") == 3
    app.session_state["section-grad_dist"] = True  # opened: its charts are drawn (from the cache)
    app.run()
    assert_clean(app)
    assert len(charts(app)) == charts_per_page(3) + 3


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_runs(preset: str) -> None:
    app = run_app({"preset": preset, **TINY}, opened=True)
    assert_clean(app)
    assert not app.warning, [w.value for w in app.warning]
    runs = len(PRESETS[preset].runs)
    sweep = 2 if PRESETS[preset].depths else 0  # a sweep preset's runs are points of its sweep: drawn against depth
    # a comparison with a recurrent run: through time, the flow over t and per run ridgelines and heatmap
    recurrent = any(spec.model in RECURRENT for spec in PRESETS[preset].specs())
    assert len(charts(app)) == charts_per_page(runs, opened=True) + sweep + (1 + 2 * runs if recurrent else 0)
    assert app.session_state["w_preset"] == preset
    assert app.session_state["grad_kind"] == PRESETS[preset].grad_kind
    if PRESETS[preset].reproduction:  # the paper's claim, what the runs show, how the setup differs
        reproduction = find(PRESETS[preset].reproduction)
        box = next(info.value for info in app.info if reproduction.title in info.value)
        assert reproduction.claim in box and reproduction.note in box and "width 16 (preset: " in box
        if reproduction.depths:
            assert "still missing" in box  # the sweep trains only on request
        else:
            assert box.count("(claim: ") >= 2 and ("✓" in box or "✗" in box)


def test_glorot_preset_shows_back_propagated_gradients() -> None:
    app = run_app({"preset": "glorot-init", **TINY, "epochs": "0"}, opened=True)
    assert_clean(app)
    assert app.session_state["grad_kind"] == "grad_out"
    specs = [json.dumps(json.loads(chart.proto.spec), ensure_ascii=False) for chart in charts(app)]
    assert sum("log₁₀ |∂L/∂z| (back-propagated)" in spec for spec in specs) == 2  # one ridgeline per run
    assert "Recorded at initialisation only" in texts(app)


def test_depth_sweep_draws_from_the_cache_and_trains_missing_points() -> None:
    app = run_app({"preset": "swish-depth", **TINY, "width": "8"})
    assert_clean(app)
    depths = app.text_input[0]
    assert depths.value == "2, 5, 10, 20, 30, 40, 50"
    depths.set_value("1,x").run()
    assert "not a comma-separated list of whole numbers" in app.error[0].value.replace("\\", "")
    app.text_input[0].set_value("1, 2").run()  # the box as this run drew it (it is in the page's fragment)
    assert not app.error
    assert len(charts(app)) == charts_per_page(2)  # nothing cached: no sweep chart, an info instead
    next(b for b in app.button if b.label == "Run 4 missing points").click().run()
    assert_clean(app)
    assert len(charts(app)) == charts_per_page(2) + 2  # accuracy and gradient ratio against depth
    assert "All 4 points are in the cache." in texts(app)
    assert not any(b.label.startswith("Run ") and "missing" in b.label for b in app.button)
    box = next(info.value for info in app.info if "Swish" in info.value)
    assert "ReLU test accuracy at depth 2" in box and "Swish test accuracy at depth 2" in box


def test_shared_url_restores_the_sidebar() -> None:
    params = {
        "preset": "rescue",
        **TINY,
        "depth": "4",
        "lr": "0.02",
        "optimizer": "adam",
        "run1": "tanh",
        "run1_init": "xavier_normal",
        "run2": "relu",
        "run2_norm": "batch",
        "run2_residual": "true",
        "run3": "sigmoid",
        "run3_init": "normal",
        "run3_std": "0.3",
    }
    app = run_app(params)
    assert_clean(app)
    assert not app.warning, [w.value for w in app.warning]
    state = app.session_state
    assert state["w_preset"] is None  # other runs than the preset's: no longer named after it
    assert "Your own comparison" in texts(app) and PRESETS["rescue"].title not in texts(app)
    assert (state["w_depth"], state["w_width"], state["w_epochs"], state["w_n_train"]) == (4, 16, 1, 200)
    assert (state["w_lr"], state["w_optimizer"]) == (0.02, "adam")
    assert state["w_run1_activation"] == "tanh" and state["w_run1_init"] == "xavier_normal"
    assert state["w_run2_norm"] == "batch" and state["w_run2_residual"] is True
    assert state["w_run3_init"] == "normal" and state["w_run3_init_std"] == 0.3
    assert state["w_run4_activation"] == "off"
    assert len(charts(app)) == charts_per_page(3)
    # The URL the page writes back restores the same comparison.
    assert Comparison.from_params(app.query_params)[0] == Comparison.from_params(params)[0]


def test_garbage_url_parameters_warn_and_fall_back() -> None:
    garbage = {
        "preset": "<script>alert(1)</script>",
        "depth": "-5",
        "width": "1e99",
        "lr": "nan",
        "device": "quantum",
        "run1": "sigmoid",
        "run1_init": "[x](javascript:alert(1))",
        "run1_residual": "perhaps",
        "run1_bogus": "1",
        "zzz": "x" * 5000,
    }
    app = run_app({**TINY, **garbage})
    assert_clean(app)
    raw = "\n".join(w.value for w in app.warning)
    warnings = raw.replace("\\", "")  # without the Markdown escapes
    for name in ("preset", "depth", "width", "lr", "device", "run1_init", "run1_residual", "run1_bogus", "zzz"):
        assert name in warnings
    assert "](" not in raw and "<script>" not in raw  # shown as text, never as a link or HTML
    state = app.session_state
    assert state["w_preset"] == "activations"
    assert (state["w_depth"], state["w_lr"], state["w_device"]) == (5, 0.05, "auto")
    assert state["w_run1_init"] == "default" and state["w_run1_residual"] is False
    assert len(charts(app)) == charts_per_page(3)  # runs 2 and 3 are the preset's


def test_too_costly_url_falls_back_to_the_preset() -> None:
    comparison, warnings = Comparison.from_params({"preset": "init", "depth": "100", "width": "4096"})
    assert comparison == Comparison.from_preset("init")
    assert any("parameters" in ENGLISH.render(w) for w in warnings)


def test_a_training_draws_live_probes_between_its_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every redraw made due: between snapshots the charts (every section open) and verdicts are drawn from live
    probes, which have no update ratio; the page ends clean, with the recorded result's snapshots only."""
    import vg_core.pagestate as ps
    import vg_core.train as train

    monkeypatch.setattr(ps.Throttle, "due", lambda self, now: True)
    probed: list[int] = []
    live = train._Run._live

    def spy(run: train._Run, step: int):
        probed.append(step)
        return live(run, step)

    monkeypatch.setattr(train._Run, "_live", spy)
    app = run_app({**TINY, "epochs": "3", "seed": "11", "run2": "off", "run3": "off"}, opened=True)
    assert_clean(app)
    assert len(charts(app)) == charts_per_page(1, opened=True)
    schedule = train.snapshot_schedule(4, 3)  # 200 samples in batches of 50: 4 steps an epoch
    assert probed and not set(probed) & set(schedule)
    assert len(app.select_slider[0].options) == len(schedule)  # the scrubber: recorded snapshots only


def test_a_diverging_run_shows_its_verdict() -> None:
    app = run_app({"preset": "scale", **TINY, "width": "32"})
    assert_clean(app)
    assert "Diverged at step" in texts(app)
    assert len(charts(app)) == charts_per_page(3)


def test_applying_the_form_updates_the_url() -> None:
    app = run_app({"preset": "activations", **TINY, "run1": "relu", "run3": "off"})
    assert not app.warning, [w.value for w in app.warning]
    app.number_input(key="w_depth").set_value(3)
    app.selectbox(key="w_run2_activation").set_value("tanh")  # a form's edits go with its Apply
    assert app.query_params["depth"] == "5"
    next(b for b in app.button if b.label == "Apply and train").click()
    app.run()
    assert_clean(app)
    assert not app.warning, [w.value for w in app.warning]
    assert app.query_params["depth"] == "3"
    assert app.query_params["run2"] == "tanh" and app.query_params["run3"] == "off"
    assert len(charts(app)) == charts_per_page(2)


def test_step_and_gradient_view_round_trip_through_the_url() -> None:
    app = run_app({"preset": "activations", **TINY, "epochs": "2", "step": "4", "grad": "backprop"})
    assert_clean(app)
    assert not app.warning, [w.value for w in app.warning]
    assert app.session_state["grad_kind"] == "grad_out"
    slider = app.select_slider[0]
    assert slider.value == 4 and (app.query_params["step"], app.query_params["grad"]) == ("4", "backprop")
    slider.set_value(slider.options[0] if isinstance(slider.options[0], int) else 0).run()
    assert app.query_params["step"] == "0"
    again = run_app(dict(app.query_params))  # the page's own link restores the same view
    assert again.select_slider[0].value == 0 and again.session_state["grad_kind"] == "grad_out"


def test_a_partial_preset_link_keeps_the_other_runs() -> None:
    app = run_app({"preset": "rescue", **TINY, "depth": "3", "run1": "tanh"})
    assert_clean(app)
    assert not app.warning, [w.value for w in app.warning]
    assert [app.session_state[f"w_run{i}_activation"] for i in (1, 2, 3, 4)] == ["tanh", "sigmoid", "sigmoid", "off"]
    assert app.session_state["w_run2_residual"] is True and app.session_state["w_run3_norm"] == "batch"
    assert len(charts(app)) == charts_per_page(3)


def test_a_recurrent_run_beside_an_mlp_draws_through_time_with_a_note() -> None:
    params = {"preset": "rnn-vs-lstm", **TINY, "run2_model": "mlp", "run2": "relu", "run3": "off"}
    app = run_app(params, opened=True)
    assert_clean(app)
    assert [spec.model for spec in app.session_state["applied"].specs] == ["rnn", "mlp"]
    specs = " ".join(chart.proto.spec for chart in charts(app))
    assert "time step t" in specs and "is not a recurrent net" in specs
    assert app.session_state["w_run1_seq_len"] == 28 and app.session_state["w_run2_model"] == "mlp"


def test_the_page_moves_what_its_imports_made_out_of_the_collectors_sight() -> None:
    """Streamlit collects garbage after every script run; the page freezes the heap its first run found (torch,
    pandas, Altair: about 280,000 objects) so that each collection walks only what was made since."""
    app = run_app(TINY)
    assert not app.exception
    assert gc.get_freeze_count() > 100_000
