"""The tour and the two languages on the page, through Streamlit's AppTest (tiny runs through the URL)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vg_core.i18n import extracted, read_catalog, translator
from vg_core.presets import PRESETS, SHARED_FIELDS
from vg_core.tour import stops

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 240
TINY = {"dataset": "mnist-sample", "n_train": "200", "epochs": "1", "width": "16", "batch_size": "50"}
STOPS = stops(PRESETS)
# Words that are the same in both languages: proper names, code names and units.
NAMES = {
    "relu",
    "swish",
    "sigmoid",
    "tanh",
    "gelu",
    "elu",
    "mnist",
    "fashion",
    "sample",
    "xavier",
    "kaiming",
    "glorot",
    "bengio",
    "lecun",
    "pytorch",
    "sgd",
    "adam",
    "cpu",
    "cuda",
    "mps",
    "auto",
    "svg",
    "csv",
    "json",
    "pandas",
    "epoch",
    "batch",
    "norm",
    "default",
    "normal",
    "uniform",
    "orthogonal",
    "none",
    "layer",
    "residual",
    "mlp",
    "cnn",
    "fc",
    "step",
    "spec",
    "read_csv",
    "path",
    "comment",
    "he",
    "ioffe",
    "szegedy",
    "english",
    "vs",  # in both languages
    "history",  # the CSV exports: history.csv, layer_stats.csv, histograms.csv
    "stats",
    "histograms",
}


SECTIONS = ("act", "percentiles", "grad_dist", "act_dist", "ratio", "heatmap", "article", "time")  # folded


def run_app(params: dict[str, str], opened: bool = False) -> AppTest:
    """The page from a link; `opened`: with every folded section open (as if clicked), all its charts drawn."""
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.query_params.update(params)
    if opened:
        for key in SECTIONS:
            app.session_state[f"section-{key}"] = True
    return app.run()


def visible_texts(app: AppTest) -> list[str]:
    """Every text the page shows outside the charts: Markdown, captions, boxes, headings, widget labels and help."""
    texts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "subheader", "title", "latex"):
        texts += [str(element.value) for element in app.get(kind)]
    for kind in (
        "button",
        "selectbox",
        "number_input",
        "checkbox",
        "select_slider",
        "segmented_control",
        "text_input",
        "expander",
        "download_button",
        "toggle",
    ):
        for element in app.get(kind):
            texts.append(str(getattr(element, "label", "")))
            help_text = getattr(element, "help", None) or getattr(getattr(element, "proto", None), "help", "")
            texts.append(str(help_text or ""))
    for chart in app.get("vega_lite_chart"):
        texts += chart_texts(json.loads(chart.proto.spec))
    return [text for text in texts if text.strip()]


def chart_texts(spec: object) -> list[str]:
    """The texts a Vega-Lite spec shows: titles and subtitles (chart, axis, legend, tooltip) and text marks."""
    if isinstance(spec, list):
        return [text for item in spec for text in chart_texts(item)]
    if not isinstance(spec, dict):
        return []
    texts = []
    for key, value in spec.items():
        if key in ("title", "subtitle", "text") and isinstance(value, str):
            texts.append(value)
        elif key in ("title", "subtitle", "text") and isinstance(value, list):
            texts += [str(line) for line in value]
        else:
            texts += chart_texts(value)
    return texts


def shown(markdown: str) -> str:
    """A warning as the reader sees it (vg_core.pagestate.plain escapes punctuation)."""
    return markdown.replace("\\", "").replace("\u2060", "")


def words(text: str) -> set[str]:
    text = re.sub(r"`[^`]*`|\{[^}]*\}|:material/\w+:", " ", text)  # code, placeholders, icons
    return {word.lower() for word in re.findall(r"[A-Za-z][A-Za-z'’-]+", text)}


@pytest.fixture(scope="module")
def english_only() -> set[str]:
    """Words of the English msgids that no Indonesian translation uses (and that are no names or units)."""
    english = set().union(*(words(str(entry.id)) for entry in extracted() if entry.id))
    indonesian = set().union(*(words(str(entry.string)) for entry in read_catalog("id") if entry.id))
    code = words(" ".join(SHARED_FIELDS).replace("_", " "))  # "*Changed here:* width 16 (preset: 128)": URL names
    return english - indonesian - NAMES - code


def test_indonesian_page_has_no_english_left(english_only):
    app = run_app({"lang": "id", **TINY}, opened=True)  # every chart drawn: their texts too
    assert not app.exception, [e.value for e in app.exception]
    offending = [
        f"{text[:100]!r}: {sorted(words(text) & english_only)}"
        for text in visible_texts(app)
        if words(text) & english_only
    ]
    assert not offending, "English left on the Indonesian page:\n" + "\n".join(offending)
    assert app.title[0].value == translator("id").gettext("Vanishing Gradient Explorer")
    assert app.query_params["lang"] == "id"


def test_a_bad_language_warns_and_shows_english():
    app = run_app({"lang": "fr", **TINY})
    assert any("lang: fr is not one of en, id" in shown(w.value) for w in app.warning)
    assert app.query_params["lang"] == "en" and app.title[0].value == "Vanishing Gradient Explorer"


def test_every_tour_stop_renders():
    """Next through every stop, then Previous back: no exception, the stop's texts, the URL (in English; the
    stops' Indonesian texts are checked in the next test and by tests/test_i18n.py)."""
    app = run_app({"tour": "1", **TINY})
    for number, stop in enumerate(STOPS, 1):
        assert_stop(app, number, stop, translator("en"))
        next_button = app.button(key="tour-next")
        assert next_button.disabled == (number == len(STOPS))
        if number < len(STOPS):
            app = next_button.click().run()
    app = app.button(key="tour-previous").click().run()
    assert app.query_params["tour"] == str(len(STOPS) - 1)


def test_tour_stops_in_indonesian():
    """A spot check of the walk in the other language: the first stop, and Next to the second."""
    tr = translator("id")
    app = run_app({"tour": "1", "lang": "id", **TINY})
    assert_stop(app, 1, STOPS[0], tr)
    app = app.button(key="tour-next").click().run()
    assert_stop(app, 2, STOPS[1], tr)


def assert_stop(app: AppTest, number: int, stop, tr) -> None:
    assert not app.exception, (stop.key, [e.value for e in app.exception])
    assert app.query_params["tour"] == str(number) and app.query_params["preset"] == stop.preset
    assert app.query_params["width"] == "16"  # the link's shared settings hold at every stop
    assert app.subheader[0].value == tr.gettext(stop.title)
    assert any(tr.gettext(stop.seen) in element.value for element in app.success), stop.key


@pytest.mark.parametrize("value", ["0", "99", "abc", "2.5"])
def test_a_bad_stop_warns_and_starts_at_the_first(value):
    app = run_app({"tour": value, **TINY})
    assert not app.exception
    assert any(f"tour: {value} is not a stop number" in shown(w.value) for w in app.warning)
    assert app.query_params["tour"] == "1" and app.subheader[0].value == STOPS[0].title
    assert app.button(key="tour-previous").disabled


def test_the_stops_chart_comes_first_and_the_others_fold():
    app = run_app({"tour": "1", **TINY})
    titles = [element.label for element in app.expander]
    assert "Gradient flow" not in titles  # stop 1 looks at the gradient flow: shown, not folded
    assert {"Learning curves", "Activations over training"} <= set(titles)
    assert any("Look here" in element.value for element in app.markdown)


def test_play_moves_the_step_forward():
    app = run_app({"tour": "1", **TINY})
    slider = app.select_slider[0]
    start = slider.value
    app = slider.set_value(0).run()  # back to initialisation (step 0)
    first = app.select_slider[0].value
    app = app.button(key="tour-play").click().run()  # Play shows the next snapshot at once
    assert not app.exception, [e.value for e in app.exception]
    assert int(app.select_slider[0].value) > int(first)
    assert app.query_params["step"] == str(app.select_slider[0].value) != str(start)


def test_applying_another_comparison_leaves_the_tour():
    app = run_app({"tour": "2", **TINY})
    assert app.query_params["tour"] == "2"
    app.number_input(key="w_depth").set_value(3)
    app = app.button(key="apply").click().run()
    assert "tour" not in app.query_params
    assert not any(element.key == "tour-next" for element in app.button)
    assert app.query_params["depth"] == "3"


def test_changing_the_language_keeps_the_stop():
    app = run_app({"tour": "3", **TINY})
    app = app.selectbox(key="w_lang").set_value("id").run()
    assert app.query_params["tour"] == "3" and app.query_params["lang"] == "id"
    assert app.subheader[0].value == translator("id").gettext(STOPS[2].title)
