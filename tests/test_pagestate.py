"""vg_core.pagestate: the page's logic without Streamlit (widgets <-> URL, texts, findings, sweeps)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vg_core import pagestate as ps
from vg_core.cache import ResultCache, resolved
from vg_core.i18n import ENGLISH, N_, Message, translator
from vg_core.presets import Comparison
from vg_core.reproductions import Finding, find
from vg_core.spec import RunSpec, SpecError
from vg_core.sweep import run_sweep
from vg_core.train import Progress, train

TINY = {"dataset": "mnist-sample", "n_train": "200", "epochs": "1", "width": "8", "batch_size": "50"}


def test_widget_state_round_trips_to_the_same_comparison() -> None:
    for params in (
        {"preset": "rescue", "run1": "tanh", "run2": "relu", "run2_norm": "batch", "run3": "sigmoid"},
        {"preset": "scale", "run1": "relu", "run1_init": "normal", "run1_std": "0.3"},
        {"preset": "glorot-saturation", "width": "16"},
        {"preset": "rnn-vs-lstm", "run1_rinit": "orthogonal", "run1_rgain": "1.5", "run3_clip": "1"},
        {"preset": "pascanu-rnn"},
        {"preset": "cnn-residual"},
    ):
        comparison, warnings = Comparison.from_params(params)
        assert not warnings
        state = ps.widget_values(comparison)
        assert (state["w_run4_activation"] == ps.OFF) == (len(comparison.specs) < 4)
        assert Comparison.from_params(ps.widget_params(state, comparison.preset)) == (comparison, [])


def test_widgets_a_model_lacks_are_hidden_and_written_neutral() -> None:
    """Switching a run's model keeps no setting the new model lacks (the forget bias of an LSTM turned GRU,
    the skips of a CNN turned RNN), and a widget Streamlit forgot (hidden) counts as RunSpec's default."""
    comparison = Comparison.from_preset("rnn-vs-lstm")
    state = ps.widget_values(comparison)
    assert ps.family_widgets(state, 1) == ("seq_len", "recurrent_init")
    assert ps.family_widgets(state, 2) == ("seq_len", "recurrent_init", "forget_bias")
    assert ps.family_widgets({**state, "w_run1_recurrent_init": "identity"}, 1)[-1] == "recurrent_gain"
    assert ps.family_widgets({**state, "w_run1_model": "cnn"}, 1) == ("norm", "residual")
    gru = Comparison.from_params(ps.widget_params({**state, "w_run2_model": "gru"}, comparison.preset))
    assert gru[1] == [] and gru[0].specs[1].model == "gru" and gru[0].specs[1].forget_bias == 0
    state = ps.widget_values(Comparison.from_preset("cnn-residual"))
    forgotten = {key: value for key, value in state.items() if not key.startswith("w_run2_seq")}
    rnn = {**forgotten, "w_run2_model": "rnn", "w_run2_activation": "tanh"}
    parsed, warnings = Comparison.from_params(ps.widget_params(rnn, "cnn-residual"))
    assert not warnings and parsed.specs[1].model == "rnn" and not parsed.specs[1].residual
    assert parsed.specs[1].seq_len == RunSpec.seq_len


HOSTILE_TEXTS = [
    "https://evil.example/x www.evil.example a@evil.example",
    "[x](javascript:alert(1))",
    "<b>*hi*</b> <script>alert(1)</script> &amp;",
    ":material/warning: :smile: :red[alarm]",
    "x\n===\n# heading",
    "\n    indented code\n\tmore",
    "_em_ **strong** `code` ~~gone~~ $x^2$ | a | b |",
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_plain_text_shows_the_text_and_nothing_else(text: str) -> None:
    """What Streamlit's Markdown would make of it: no link, heading, code, emphasis, HTML, icon or emoji."""
    source = ps.plain(text)
    assert "\n" not in source and ":material/" not in source and not re.search(r":[\w+-]+:", source)
    assert not re.search(r"www\.|@\w|https?://", source, flags=re.IGNORECASE)
    # every ASCII punctuation mark is escaped (Markdown reads none of them as syntax, nor as HTML) ...
    assert not re.search(r"[!-/:-@\[-`{-~]", re.sub(r"\\[!-/:-@\[-`{-~]", "", source))
    unescaped = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", source)
    # ... and what it shows is the text itself, on one line
    assert unescaped.replace(ps.WORD_JOINER, "") == " ".join(text.split())


def test_reproduction_needs_its_runs_but_not_its_shared_settings() -> None:
    shrunk, _ = Comparison.from_params({"preset": "he-init", "width": "16", "epochs": "0"})
    assert ps.reproduction_of(shrunk) is find("he-init")
    changed, _ = Comparison.from_params({"preset": "he-init", "run1": "relu", "run1_init": "xavier_uniform"})
    assert ps.reproduction_of(changed) is None
    assert ps.reproduction_of(Comparison.from_preset("activations")) is None


def test_findings_wait_for_finished_runs_and_explain_failures() -> None:
    reproduction = find("glorot-init")
    assert "every run has finished" in ENGLISH.render(ps.run_findings(reproduction, [None, None]))
    assert "Depth sweep" in ENGLISH.render(ps.run_findings(find("swish-depth"), [None]))
    spec = RunSpec(dataset="mnist-sample", n_train=100, activation="relu", depth=1, width=4, epochs=0)
    results = [train(spec.replace(init="lecun_normal")), train(spec.replace(init="kaiming_normal"))]
    why = ps.run_findings(find("he-init"), results)  # depth 1: no per-layer decay to measure
    assert isinstance(why, Message) and ENGLISH.render(why).startswith("These settings give no measurement")
    assert "2 still missing" in ENGLISH.render(ps.sweep_findings(find("swish-depth"), None, 2))


def test_claim_text_states_claim_findings_and_differences() -> None:
    reproduction = find("glorot-init")
    comparison, _ = Comparison.from_params({"preset": "glorot-init", "width": "16"})
    findings = [Finding("ratio", 0.05, "well below 1", True), Finding("other", 2.0, "below 1", False)]
    text = ps.reproduction_text(reproduction, comparison.changed_settings(), findings)
    assert reproduction.claim in text and reproduction.note in text
    assert "- ✓ ratio: 0.05 (claim: well below 1)" in text and "- ✗ other: 2 (claim: below 1)" in text
    assert "width 16 (preset: 1000)" in text
    closed = ps.claim_text(find("swish-depth"), Comparison.from_preset("swish-depth"), [None, None], None)
    assert "open the Depth sweep section" in closed


def test_claim_text_in_indonesian() -> None:
    """The claim, the note, the findings (labels, expectations, numbers) and the changed settings translated."""
    indonesian, reproduction = translator("id"), find("ioffe-bn")
    comparison, _ = Comparison.from_params({"preset": "ioffe-bn", "width": "16"})
    finding = Finding(N_("batch norm: {layer}'s median sigmoid input, the same"), 0.05, N_("holds (< {held})"), True)
    finding = Finding(finding.label, 0.05, finding.expected, True, {"layer": "fc3", "held": 0.1})
    text = ps.reproduction_text(reproduction, comparison.changed_settings(indonesian), [finding], False, indonesian)
    assert indonesian.gettext(reproduction.claim) in text and indonesian.gettext(reproduction.note) in text
    assert reproduction.claim not in text and "0,05" in text and "0,1" in text and "fc3" in text
    assert finding.text == "✓ batch norm: fc3's median sigmoid input, the same: 0.05 (claim: holds (< 0.1))"
    assert "width 16 (di preset: 100)" in text


def test_sweep_depths_are_checked_in_plain_words() -> None:
    comparison, _ = Comparison.from_params({"preset": "swish-depth", **TINY})
    assert ps.default_depths(comparison) == "2, 5, 10, 20, 30, 40, 50"
    assert ps.default_depths(Comparison.from_preset("init")) == "2, 5, 10, 20"
    sweeps = ps.comparison_sweeps(comparison, "3, 1")
    assert [s.activations for s in sweeps] == [("relu",), ("swish",)]
    assert {s.inits for s in sweeps} == {("kaiming_normal",)}
    for bad, words in (("", "must list depths"), ("1,x", "whole numbers"), ("0", "from 1 to 100")):
        with pytest.raises(SpecError, match=words):
            ps.comparison_sweeps(comparison, bad)
    with pytest.raises(SpecError, match="more than the 64 allowed"):
        ps.comparison_sweeps(comparison, ",".join(str(d) for d in range(1, 40)))


def test_a_run_sweep_keeps_its_own_settings() -> None:
    comparison, _ = Comparison.from_params({"preset": "rescue", **TINY})
    sweeps = ps.comparison_sweeps(comparison, "2")
    assert [p.residual for s in sweeps for p in s.points()] == [False, True, False]
    assert [p.norm for s in sweeps for p in s.points()] == ["none", "none", "batch"]


def test_sweep_table_reads_the_cache_and_progress_counts_missing_points(isolated_cache: Path) -> None:
    cache = ResultCache(isolated_cache)
    comparison, _ = Comparison.from_params({"preset": "swish-depth", **TINY})
    names = ["1 · relu", "2 · swish"]
    sweeps = ps.comparison_sweeps(comparison, "1,2")
    cache.get_or_train(sweeps[0].points()[0])  # one point already cached
    table, missing = ps.sweep_table(sweeps, names, cache)
    assert len(table) == 1 and table["run"].tolist() == ["1 · relu"] and len(missing) == 3
    reports: list[tuple[float, str]] = []
    on_point = ps.sweep_progress(missing, lambda fraction, text: reports.append((fraction, text)), every_s=0)
    for sweep in sweeps:
        run_sweep(sweep, cache, on_point)
    assert reports[0] == (0.0, f"Point 1 of 3: {missing[0].label}")
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(text.startswith("Point 3 of 3") for _, text in reports)
    table, missing = ps.sweep_table(sweeps, names, cache)
    assert len(table) == 4 and not missing
    assert sorted(table["run"].unique()) == names


def test_progress_callback_is_throttled() -> None:
    spec = RunSpec(dataset="mnist-sample", depth=1, width=4, epochs=1)
    reports: list[float] = []
    on_point = ps.sweep_progress([spec], lambda fraction, text: reports.append(fraction), every_s=3600)
    callback = on_point(0, 1, spec)
    assert on_point(0, 1, spec) is None  # asked again: already started
    for step in range(1, 11):
        callback(Progress(step=step, total_steps=10, epoch=step / 10))
    assert reports == [0.0, 1.0]  # at the start and at the last step; the rest throttled
    assert on_point(0, 1, spec.replace(depth=2)) is None  # not a missing point: cached, no callback


def test_result_memory_is_a_bounded_lru(isolated_cache: Path) -> None:
    cache = ResultCache(isolated_cache)
    memory = ps.ResultMemory(cache, size=1)
    spec = RunSpec(dataset="mnist-sample", n_train=100, depth=1, width=4, epochs=0)
    assert memory.get(spec) is None
    cache.get_or_train(spec)
    assert memory.get(spec).spec == resolved(spec)
    other = train(resolved(spec.replace(width=5)))
    memory.put(other)
    assert list(memory.memo.items) == [other.spec.key()]


def test_status_and_verdict_lines(isolated_cache: Path) -> None:
    spec = RunSpec(dataset="mnist-sample", n_train=100, activation="sigmoid", depth=3, width=8, epochs=1)
    result = train(spec.replace(batch_size=50))
    assert ps.status_line(result).startswith("complete · mnist-sample 100 train / 1,000 test · cpu · trained in ")
    assert ps.status_line(result, translator("id")).startswith("selesai · mnist-sample 100 latih / 1.000 uji · cpu")
    lines = ps.verdict_lines(result)
    assert lines[0].startswith(":orange[⚠] ") and "toward the input" in lines[0] and ps.plain("∂L/∂W") in lines[0]
    backprop = ps.verdict_lines(result, "grad_out", 0, translator("id"))  # the page's view, step and language
    assert ps.plain("∂L/∂z") in backprop[0] and "langkah 0" in backprop[0]
    result.meta["status"] = "running"
    assert ps.verdict_lines(result)[-1].startswith(":gray[•] Test accuracy so far")


def test_view_round_trips_through_the_url_and_warns_on_bad_values() -> None:
    for view in (ps.View(None, "weight_grad"), ps.View(120, "grad_out"), ps.View(0, "weight_grad")):
        assert ps.View.from_params(view.to_params(), "weight_grad") == (view, [])
    assert ps.View.from_params({}, "grad_out") == (ps.View(None, "grad_out"), [])
    view, warnings = ps.View.from_params({"step": "-3", "grad": "<b>"}, "grad_out")
    assert view == ps.View(None, "grad_out") and [ENGLISH.render(w).split(":")[0] for w in warnings] == ["step", "grad"]
    assert ps.nearest_step([0, 4, 8], 5) == 4 and ps.nearest_step([4, 8], 1) == 4
    assert ps.nearest_step([0, 4], None) is None


def test_exports_are_named_after_the_run_with_the_spec_inside(isolated_cache: Path) -> None:
    import io
    import json

    import pandas as pd

    spec = RunSpec(dataset="mnist-sample", n_train=100, activation="sigmoid", depth=5, width=128, epochs=0)
    assert ps.export_stem(spec.label) == "sigmoid-5x128-default-init"
    normal = spec.replace(activation="relu", depth=10, init="normal", init_std=0.01, norm="batch", residual=True)
    assert ps.export_stem(normal.label) == "relu-10x128-normal-sigma-0.01-batch-norm-residual"
    assert ps.svg_name("flow", 120, "grad_out") == "flow-step-120-dz.svg"
    assert ps.svg_name("heatmap", None, "weight_grad") == "heatmap-last-dW.svg"
    result = train(spec.replace(width=4))
    text = ps.csv_export(result, "history")
    first, _ = text.split("\n", 1)
    assert first.startswith("# spec: ") and RunSpec(**json.loads(first.removeprefix("# spec: "))) == result.spec
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(text), comment="#"), result.history, check_dtype=False)


@pytest.mark.parametrize("preset", ["pascanu-rnn", "lstm-memory", "rnn-vs-lstm"])
def test_recurrent_presets_keep_their_runs_through_a_link(preset: str) -> None:
    """A preset whose base names the model (pascanu-rnn: rnn) keeps its runs' recurrent settings."""
    comparison, warnings = Comparison.from_params({"preset": preset, "width": "16"})
    assert not warnings and comparison.runs_match_preset


def test_a_throttle_goes_at_once_then_every_so_often_and_never_a_third_of_the_time():
    throttle = ps.Throttle(2.0)
    assert throttle.due(100.0)  # the first go: at once
    throttle.done(100.0, 100.5)
    assert not throttle.due(101.0) and not throttle.due(102.25)
    assert throttle.due(102.5)  # `every` after the last go ended
    throttle.done(102.5, 105.0)  # a slow go (2.5 s): then at most every 5 s
    assert not throttle.due(109.75) and throttle.due(110.0)
    throttle.done(110.0, 110.0)  # one that took nothing: back to `every`
    assert throttle.due(112.0)
    started = ps.Throttle(0.25, at=50.0)  # made as if it had just gone
    assert not started.due(50.125) and started.due(50.25)
    live = ps.Throttle(3.0, share=0.1)  # at most a tenth of the time: a go of 0.5 s, then 4.5 s apart
    live.done(10.0, 10.5)
    assert not live.due(13.5) and not live.due(14.9) and live.due(15.0)
