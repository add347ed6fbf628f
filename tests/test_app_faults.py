"""The page against hostile links and inputs (AppTest), and its URL parser against random query strings."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_app import TINY, assert_clean, run_app

from vg_core import budget
from vg_core import pagestate as ps
from vg_core.i18n import ENGLISH
from vg_core.presets import DEFAULT_PRESET, MAX_WARNINGS, PRESETS, Comparison
from vg_core.turns import TrainingQueue, ahead_text

LINKISH = re.compile(r"www\.|@\w|https?://|:material/|\n|(?<!\\)[\[\]<>*_`#]")


def unescaped(source: str) -> str:
    """The text a plain() Markdown source shows."""
    return re.sub(r"\\(.)", r"\1", source).replace(ps.WORD_JOINER, "")


def assert_plain(source: str) -> None:
    assert not LINKISH.search(source), source


def test_a_last_batch_of_one_sample_with_batch_norm_draws_the_page() -> None:
    """?preset=rescue&batch_size=3 on 100 samples (33 x 3 + 1): the batch-norm run trains, no error page."""
    app = run_app({"preset": "rescue", **TINY, "n_train": "100", "batch_size": "3"})
    assert_clean(app)
    assert not app.warning, [w.value for w in app.warning]


def test_an_over_budget_link_is_refused_with_the_reason_and_the_preset_shown() -> None:
    params = {
        "dataset": "fashion-mnist",
        "n_train": "60000",
        "batch_size": "1",
        "epochs": "100",
        "depth": "100",
        "width": "120",
        "run1": "relu",
        "run2": "relu",
        "run3": "sigmoid",
        "run4": "swish",
    }
    comparison, warnings = Comparison.from_params(params)
    assert comparison == Comparison.from_preset(DEFAULT_PRESET)
    english = [ENGLISH.render(w) for w in warnings]
    assert any("6,000,000 training steps" in w and "200,000 allowed" in w for w in english), english
    app = run_app({**params, "batch_size": "100", "epochs": "10"})  # within the step limit, far over in time
    assert_clean(app)
    shown = [unescaped(w.value) for w in app.warning]
    assert any("budget: these 4 runs would take about" in w and "(VG_PAGE_BUDGET_S)" in w for w in shown), shown
    assert app.query_params["preset"] == DEFAULT_PRESET and app.query_params["depth"] == "5"


def test_text_from_the_url_is_shown_as_plain_text() -> None:
    hostile = "https://evil.example/x www.evil.example a@evil.example :material/warning:\n===\n    code"
    app = run_app({"preset": hostile, **TINY, "run1": "relu", "run1_std": "0.5"})
    assert_clean(app)
    shown = [w.value for w in app.warning]
    assert len(shown) == 2, shown
    for source in shown:
        assert_plain(source)
    assert "evil" in shown[0] and "run1_std: used only with init normal" in unescaped(shown[1])


def test_the_depths_box_shows_its_own_input_as_plain_text() -> None:
    app = run_app({**TINY, "preset": "swish-depth"})
    box = next(t for t in app.text_input if t.label.startswith("Depths"))
    box.set_value("2, [x](https://evil.example) www.evil.example :material/warning:").run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and errors[0].startswith("Cannot sweep these depths")
    assert_plain(errors[0])


def test_too_many_parameters_give_one_warning_not_sixty_four() -> None:
    params = {f"junk{i}": "x" for i in range(200)}
    comparison, warnings = Comparison.from_params(params)
    assert comparison == Comparison.from_preset(DEFAULT_PRESET)
    assert ENGLISH.render(warnings[0]) == "the link has 200 parameters; only the first 64 were read."
    assert (
        len(warnings) == MAX_WARNINGS and ENGLISH.render(warnings[-1]) == f"and {65 - MAX_WARNINGS + 1} more problems."
    )


QUERY_KEYS = st.sampled_from(
    ["preset", "dataset", "n_train", "depth", "width", "epochs", "batch_size", "lr", "momentum", "seed", "device"]
    + [f"run{i}{suffix}" for i in range(1, 6) for suffix in ("", "_init", "_std", "_norm", "_residual")]
)
QUERY_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["1", "0", "100", "60000", "8192", "nan", "inf", "-1", "1e9", "batch", "normal", "relu"]),
    st.sampled_from(list(PRESETS)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(QUERY_KEYS, st.text(max_size=20)), QUERY_VALUES, max_size=30))
def test_any_query_string_parses_to_a_comparison_within_budget(params) -> None:
    comparison, warnings = Comparison.from_params(params)
    budget.check(comparison.specs, budget.page_budget())  # raises if over
    assert len(warnings) <= MAX_WARNINGS
    for warning in warnings:
        assert_plain(ps.plain(ENGLISH.render(warning)))


def test_the_training_queue_is_first_come_first_served_and_says_who_is_ahead() -> None:
    queue = TrainingQueue(slots=1)
    first, second, third = queue.join(), queue.join(), queue.join()
    assert not queue.turn(second) and queue.turn(first)
    assert queue.ahead(second) == 1 and queue.ahead(third) == 2
    assert ahead_text(queue.ahead(third)) == "Waiting for the training slot: 2 visitors ahead of you."
    assert not queue.turn(third)  # second is before it
    queue.leave(first)
    assert not queue.turn(third) and queue.turn(second)
    queue.leave(second)
    assert queue.turn(third)


def test_a_waiting_visitor_who_left_does_not_hold_the_line(monkeypatch) -> None:
    import vg_core.turns as turns

    queue = TrainingQueue(slots=1)
    gone, waiting = queue.join(), queue.join()
    monkeypatch.setattr(turns, "ABANDONED_S", -1.0)  # every ticket not renewed just now is stale
    assert queue.turn(waiting) and gone not in queue.waiting


def test_a_run_that_fails_midway_says_so_and_offers_nothing_to_export(monkeypatch) -> None:
    """A run whose training raises after its first snapshot (torch out of memory, say): its column says why, its
    partial result stays drawn, and the Export section offers no CSV for it (it has no result)."""
    from vg_core.cache import ResultCache

    real = ResultCache.get_or_train

    def fails_after_its_first_snapshot(self, spec, callback=None):
        def watched(progress):
            if callback is not None:
                callback(progress)
            if progress.partial is not None and progress.step > 0:
                raise RuntimeError("CUDA out of memory")

        return real(self, spec, watched)

    monkeypatch.setattr(ResultCache, "get_or_train", fails_after_its_first_snapshot)
    app = run_app({**TINY, "run2": "off", "run3": "off"})
    assert not app.exception
    assert any("ran out of resources (RuntimeError)" in error.value for error in app.error)
    assert app.get("vega_lite_chart")  # what it showed before failing stays
    assert "history.csv" not in [button.label for button in app.get("download_button")]
