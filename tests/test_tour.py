"""The guided tour as data, its navigation, the chain-rule factors (against autograd) and the glossary."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from engine_helpers import tiny_spec

from vg_core.glossary import GLOSSARY, tooltip
from vg_core.i18n import LANGUAGES, translator
from vg_core.models import INIT_LABELS, build_model
from vg_core.presets import PRESETS
from vg_core.probes import probe_batch
from vg_core.tour import (
    CHAIN_RULE,
    PARTS,
    STOPS,
    VIEWS,
    factor_messages,
    layer_factors,
    next_snapshot,
    next_stop,
    previous_stop,
    sentences,
    stop_number,
    stops,
    view_order,
)

# Presets other branches add (the recurrent family): their stops join the tour by themselves once PRESETS has
# them. Empty this set when they are merged.
COMING = {"rnn-vs-lstm", "pascanu-rnn"}


def test_every_stop_is_complete():
    assert len({stop.key for stop in STOPS}) == len(STOPS)
    for stop in STOPS:
        assert stop.part in PARTS, stop.key
        assert stop.look in VIEWS, stop.key
        assert stop.preset in PRESETS or stop.preset in COMING, stop.key
        assert 2 <= len(sentences(stop.text)) <= 4, (stop.key, sentences(stop.text))
        assert stop.title and stop.seen and "\n" not in stop.seen, stop.key


def test_stops_follow_the_article_and_cover_each_chapter():
    order = list(PARTS)
    shown = stops(PRESETS)
    assert [order.index(stop.part) for stop in STOPS] == sorted(order.index(stop.part) for stop in STOPS)
    assert {stop.part for stop in shown} == set(PARTS)
    assert {stop.preset for stop in STOPS} - set(PRESETS) == COMING - set(PRESETS)
    assert shown == tuple(stop for stop in STOPS if stop.preset not in COMING or stop.preset in PRESETS)
    assert [stop.key for stop in STOPS if stop.chain_rule] == ["chain-rule"] == [shown[0].key]


def test_sentences_splits_after_full_stops_only():
    assert sentences("One is 0.5 wide. Two (x·σ(x)) too! Three? 4 more.") == [
        "One is 0.5 wide.",
        "Two (x·σ(x)) too!",
        "Three?",
        "4 more.",
    ]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_stop_renders_in_every_language(lang):
    tr = translator(lang)
    for stop in STOPS:
        texts = [tr.gettext(stop.title), tr.gettext(stop.text), tr.gettext(stop.seen), tr.gettext(PARTS[stop.part])]
        assert all(texts), stop.key
        if lang != "en":
            assert texts[:3] != [stop.title, stop.text, stop.seen], f"{stop.key} is not translated to {lang}"
    factors = layer_factors(pd.Series([1e-6, 2e-5, 3e-4, 0.06], index=[1, 2, 3, 4]))
    lines = [tr.render(line) for line in factor_messages(factors)]
    assert len(lines) == 4 and lines[0].startswith("fc1: ×")


def test_chain_rule_formula_is_balanced_latex():
    assert CHAIN_RULE.count("{") == CHAIN_RULE.count("}")
    assert r"\le \tfrac{1}{4}" in CHAIN_RULE


# ---------------------------------------------------------------- navigation


@pytest.mark.parametrize(
    ("value", "expected"), [("1", 1), ("3", 3), (" 12 ", 12), (12, 12), ("0", 1), ("13", 1), ("-1", 1), ("2.5", 1)]
)
def test_stop_from_the_url(value, expected):
    number, warning = stop_number(value, 12)
    assert number == expected
    assert (warning is None) == (str(value).strip() == str(expected))


@pytest.mark.parametrize("value", ["", "abc", "x" * 500, "<script>", None])
def test_a_bad_stop_warns_and_starts_at_one(value):
    number, warning = stop_number(value, 12)
    assert number == 1 and warning is not None
    for lang in LANGUAGES:
        text = translator(lang).render(warning)
        assert "1" in text and "12" in text and len(text) < 120


def test_previous_and_next():
    assert previous_stop(1) is None and previous_stop(2) == 1
    assert next_stop(11, 12) == 12 and next_stop(12, 12) is None


def test_the_stops_chart_comes_first_and_the_rest_fold_in_page_order():
    for stop in STOPS:
        first, folded = view_order(stop)
        assert first == (stop.look,)
        assert list(folded) == [view for view in VIEWS if view != stop.look]


def test_play_walks_the_snapshots_and_stops_at_the_end():
    steps = [0, 5, 1, 20]
    assert next_snapshot(steps, None) == 0
    assert next_snapshot(steps, 1) == 5
    assert next_snapshot(steps, 20) is None
    assert next_snapshot(steps, 7) == 0  # a step that is no snapshot: start over
    assert next_snapshot([], None) is None


# ---------------------------------------------------------------- the chain rule, measured


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_layer_factors_match_autograd(activation):
    """Each factor is ‖∂L/∂z_k‖ / ‖∂L/∂z_{k+1}‖ as autograd computes it; for sigmoid it is at most
    1/4 of the next layer's largest singular value (the chain rule's bound), and the factors telescope."""
    spec = tiny_spec(activation=activation, depth=4, width=16)
    model = build_model(spec)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 784, generator=generator), torch.randint(0, 10, (64,), generator=generator)
    snapshot = probe_batch(model, x, y, activation)
    norms = pd.Series(snapshot.stats["grad_out_norm"], index=range(1, spec.depth + 2))
    factors = layer_factors(norms)

    zs, h = [], x
    for index, linear in enumerate(model.linears):
        z = linear(h)
        z.retain_grad()
        zs.append(z)
        h = {"sigmoid": torch.sigmoid, "relu": torch.relu}[activation](z) if index < spec.depth else z
    torch.nn.functional.cross_entropy(h, y).backward()
    expected = [float(zs[k].grad.norm() / zs[k + 1].grad.norm()) for k in range(spec.depth)]

    assert list(factors.index) == list(range(1, spec.depth + 1))
    assert factors.to_numpy() == pytest.approx(expected, rel=1e-4)
    assert factors.prod() == pytest.approx(norms[1] / norms[spec.depth + 1], rel=1e-4)
    if activation == "sigmoid":
        spectral = [
            float(torch.linalg.matrix_norm(model.linears[k + 1].weight.detach(), ord=2)) for k in range(spec.depth)
        ]
        assert all(f <= s / 4 * (1 + 1e-5) for f, s in zip(factors, spectral))


def test_a_gradient_that_underflowed_gives_no_number_not_an_error():
    factors = layer_factors(pd.Series([0.0, 0.0, 1e-3], index=[1, 2, 3]))
    assert factors.isna().iloc[0] and factors.iloc[1] == 0.0


# ---------------------------------------------------------------- glossary


def test_glossary_explains_every_init_and_symbol_the_page_uses():
    assert set(INIT_LABELS) <= set(GLOSSARY)
    symbols = {term.symbol for term in GLOSSARY.values()}
    assert {"∂L/∂W", "∂L/∂z", "log₁₀|g|", "symlog", "σ", "fc1, fc2, …", "‖·‖", "‖ΔW‖/‖W‖"} <= symbols
    assert {"saturated", "dead", "near-zero slope", "epoch", "batch"} <= set(GLOSSARY)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_tooltip_renders(lang):
    tr = translator(lang)
    for key in GLOSSARY:
        text = tooltip(key, tr)
        assert text.startswith("**") and len(text) > 40, key
        if lang != "en":
            assert text != tooltip(key, translator("en")), f"{key} is not translated to {lang}"
    assert "25%" in tooltip("saturated", tr)  # vg_core.probes.SLOPE_FRACTION, formatted for the language
