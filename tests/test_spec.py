"""RunSpec: the article's defaults, validation with field-naming errors, canonical form and key stability."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import fields

import pytest
from engine_helpers import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vg_core import spec as spec_module
from vg_core.i18n import translator
from vg_core.spec import (
    ACTIVATIONS,
    ARTICLE_SPEC,
    CHOICES,
    DATASETS,
    DEVICES,
    INITS,
    MAX_PARAMETERS,
    NORMS,
    OPTIMIZERS,
    RANGES,
    SEQ_LENS,
    RunSpec,
    SpecError,
)

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- strategies


def _numbers(name: str) -> st.SearchStrategy:
    kind, low, high = RANGES[name]
    if kind is int:
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


# Small networks and few epochs, so the guard rails never reject a drawn spec.
valid_values = st.fixed_dictionaries(
    {
        "dataset": st.sampled_from(DATASETS),
        "n_train": _numbers("n_train"),
        "activation": st.sampled_from(ACTIVATIONS),
        "depth": st.integers(1, 20),
        "width": st.integers(1, 512),
        "init": st.sampled_from(INITS),
        "init_std": _numbers("init_std"),
        "norm": st.sampled_from(NORMS),
        "residual": st.booleans(),
        "optimizer": st.sampled_from(OPTIMIZERS),
        "lr": _numbers("lr"),
        "momentum": _numbers("momentum"),
        "batch_size": _numbers("batch_size"),
        "epochs": st.integers(0, 20),
        "seed": _numbers("seed"),
        "device": st.sampled_from(DEVICES),
        "probe_size": _numbers("probe_size"),
        "clip_norm": _numbers("clip_norm"),
    }
).filter(lambda v: not (v["norm"] == "batch" and 1 in (v["batch_size"], v["n_train"])))  # batch norm needs 2


# ---------------------------------------------------------------- the article's defaults


def test_defaults_are_the_article_network():
    assert RunSpec() == ARTICLE_SPEC
    s = ARTICLE_SPEC
    assert (s.activation, s.depth, s.width, s.init) == ("sigmoid", 5, 1000, "default")
    assert (s.optimizer, s.lr, s.momentum) == ("sgd", 0.01, 0.9)
    assert (s.batch_size, s.epochs, s.dataset, s.n_train) == (100, 10, "mnist", 0)
    assert (s.norm, s.residual) == ("none", False)
    assert s.label == "sigmoid 5x1000 default-init"


def test_article_network_has_4_799_010_parameters():
    # 784*1000+1000 + 4*(1000*1000+1000) + 1000*10+10
    assert ARTICLE_SPEC.n_parameters == 4_799_010


@pytest.mark.parametrize("norm", NORMS)
def test_n_parameters_counts_norm_layers(norm):
    s = RunSpec(depth=3, width=7, norm=norm)
    linear = (784 * 7 + 7) + 2 * (7 * 7 + 7) + (7 * 10 + 10)
    assert s.n_parameters == linear + (0 if norm == "none" else 2 * 7 * 3)


# ---------------------------------------------------------------- params round trip


@SETTINGS
@given(valid_values)
def test_params_round_trip(values):
    s = RunSpec(**values)
    params = s.to_params()
    assert all(isinstance(v, str) for v in params.values())
    assert set(params) == {f.name for f in fields(RunSpec)}
    back = RunSpec.from_params(params)
    assert back == s
    assert back.key() == s.key()
    # and through a real query string
    from urllib.parse import parse_qsl, urlencode

    assert RunSpec.from_params(dict(parse_qsl(urlencode(params)))) == s


@SETTINGS
@given(valid_values)
def test_construction_is_idempotent_on_the_canonical_form(values):
    s = RunSpec(**values)
    assert RunSpec(**s.to_dict()) == s
    assert s.replace() == s


def test_unknown_keys_are_ignored():
    s = RunSpec.from_params({"depth": "3", "utm_source": "mail", "embed": "true", "": "x"})
    assert s == ARTICLE_SPEC.replace(depth=3)


def test_from_params_applies_over_a_base():
    base = RunSpec(activation="relu", width=64)
    s = RunSpec.from_params({"depth": "2"}, base=base)
    assert (s.activation, s.width, s.depth) == ("relu", 64, 2)


def test_string_values_are_coerced():
    s = RunSpec.from_params(
        {
            "dataset": " MNIST_Sample ",
            "activation": "ReLU",
            "depth": "3",
            "width": "64.0",
            "lr": "1e-3",
            "residual": "yes",
            "optimizer": "ADAM",
        }
    )
    assert (s.dataset, s.activation, s.depth, s.width) == ("mnist-sample", "relu", 3, 64)
    assert s.lr == 1e-3 and s.residual is True and s.optimizer == "adam"
    assert isinstance(s.depth, int) and isinstance(s.width, int) and isinstance(s.lr, float)
    assert RunSpec(residual="off").residual is False


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("name", sorted(RANGES))
def test_out_of_range_numbers_name_the_field_and_range(name):
    kind, low, high = RANGES[name]
    allowed = f"{low:d} to {high:d}" if kind is int else f"{low:g} to {high:g}"  # as typed: the seed's 2147483647
    too_high = high + 1 if kind is int else high * 1.5
    bad = [too_high, str(too_high), "abc", "", None, "nan", "inf", float("-inf"), True]
    if low > 0:
        bad += [low / 2 if kind is float else low - 1, -1]
    elif low == 0:
        bad += [-1, "-0.5"]
    else:
        bad += [low - 1, str(low * 2)]
    if kind is int:
        bad += ["1.5", 2.5]
    for value in bad:
        with pytest.raises(SpecError) as caught:
            RunSpec(**{name: value})
        message = str(caught.value)
        assert message.startswith(f"{name}: "), (value, message)
        assert allowed in message, (value, message)


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_unknown_choices_name_the_field_and_the_choices(name):
    with pytest.raises(SpecError) as caught:
        RunSpec(**{name: "nope"})
    message = str(caught.value)
    assert message.startswith(f"{name}: ")
    assert "'nope'" in message
    assert all(choice in message for choice in CHOICES[name])


def test_bad_residual_names_the_field():
    with pytest.raises(SpecError, match=r"^residual: 'maybe'"):
        RunSpec(residual="maybe")


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


def test_replace_validates():
    with pytest.raises(SpecError, match=r"^depth: "):
        ARTICLE_SPEC.replace(depth=0)


def test_spec_is_frozen():
    with pytest.raises(AttributeError):
        ARTICLE_SPEC.depth = 3  # type: ignore[misc]


@SETTINGS
@given(st.sampled_from(sorted(RANGES)), st.data())
def test_any_value_inside_the_range_is_accepted(name, data):
    value = data.draw(st.sampled_from(SEQ_LENS) if name == "seq_len" else _numbers(name))
    changes = {name: value}
    if name in ("seq_len", "recurrent_gain", "forget_bias"):  # fields of a (small) recurrent net
        changes.update(model="lstm", recurrent_init="orthogonal", depth=1, width=8)
    if name in ("depth", "width"):  # keep the other dimension small enough for the guard rails
        changes["width" if name == "depth" else "depth"] = 1
    if name == "epochs":  # 100 epochs of all 60,000 digits through 4.8 M parameters is over budget
        changes["n_train"] = 1000
    s = RunSpec(**changes)
    if name == "init_std":
        return  # canonicalised away unless init == "normal"
    if name == "momentum":
        assert s.momentum == value  # sgd keeps it
        return
    assert getattr(s, name) == value


# ---------------------------------------------------------------- guard rails


def test_too_many_parameters_is_a_clear_error():
    with pytest.raises(SpecError) as caught:
        RunSpec(depth=100, width=4096, epochs=0)
    message = str(caught.value)
    assert message.startswith("width/depth: ")
    assert "100x4096" in message and f"{MAX_PARAMETERS:,}" in message


def test_too_many_flops_is_a_clear_error():
    # The article's own run (10 epochs of 60,000) is within budget; 100 epochs are not.
    assert ARTICLE_SPEC.epochs == 10
    with pytest.raises(SpecError) as caught:
        ARTICLE_SPEC.replace(epochs=100)
    message = str(caught.value)
    assert message.startswith("epochs/n_train: ")
    assert "FLOP" in message and "budget" in message
    # the same network on fewer samples fits again
    assert ARTICLE_SPEC.replace(epochs=100, n_train=5000).epochs == 100


@pytest.mark.parametrize("changes", [{"batch_size": 1}, {"n_train": 1, "batch_size": 8}])
def test_batch_norm_on_batches_of_one_sample_is_a_clear_error(changes):
    with pytest.raises(SpecError, match=r"^batch_size: batch norm needs at least 2 samples per batch"):
        RunSpec(norm="batch", epochs=1, **{"n_train": 100, "batch_size": 2, **changes})
    assert RunSpec(norm="layer", epochs=1, **{"n_train": 100, "batch_size": 2, **changes}).norm == "layer"


def test_largest_allowed_network_is_accepted_for_zero_epochs():
    s = RunSpec(depth=2, width=4096, epochs=0)
    assert s.n_parameters <= MAX_PARAMETERS


# ---------------------------------------------------------------- canonical form and key


def test_init_std_only_matters_for_the_normal_init():
    for init in INITS:
        a, b = RunSpec(init=init, init_std=0.5), RunSpec(init=init, init_std=0.01)
        if init == "normal":
            assert a.init_std == 0.5
            assert a.key() != b.key()
        else:
            assert a.init_std == RunSpec.init_std
            assert a == b and a.key() == b.key()


def test_momentum_is_irrelevant_for_adam():
    a, b = RunSpec(optimizer="adam", momentum=0.5), RunSpec(optimizer="adam", momentum=0.99)
    assert a.momentum == 0.0 and a == b and a.key() == b.key()
    assert RunSpec(momentum=0.5).key() != RunSpec(momentum=0.99).key()


def test_string_and_typed_values_give_the_same_key():
    assert RunSpec(depth="3", lr="0.01", residual="false").key() == RunSpec(depth=3, lr=0.01).key()


# One alternative value per field; each changes the run, so each must change the key.
ALTERNATIVES = {
    "dataset": "mnist-sample",
    "n_train": 1000,
    "activation": "relu",
    "depth": 4,
    "width": 999,
    "init": "xavier_uniform",
    "norm": "batch",
    "residual": True,
    "optimizer": "adam",
    "lr": 0.02,
    "momentum": 0.5,
    "batch_size": 50,
    "epochs": 3,
    "seed": 1,
    "device": "cpu",
    "probe_size": 100,
    "clip_norm": 1.0,
}
# Fields of a recurrent net only, changed on an LSTM (on an MLP they are canonical or an error).
RECURRENT_ALTERNATIVES = {"seq_len": 196, "recurrent_init": "orthogonal", "recurrent_gain": 1.0, "forget_bias": 3.0}


def test_alternatives_cover_every_field():
    expected = {f.name for f in fields(RunSpec)}
    assert set(ALTERNATIVES) | {"init_std", "model"} | set(RECURRENT_ALTERNATIVES) == expected


@pytest.mark.parametrize("model", ["cnn", "rnn", "lstm", "gru"])
def test_key_changes_with_the_model(model):
    base = RunSpec(activation="tanh", depth=2, width=8)
    assert base.replace(model=model).key() != base.key()


@pytest.mark.parametrize("name", sorted(RECURRENT_ALTERNATIVES))
def test_key_changes_when_a_recurrent_field_changes(name):
    base = RunSpec(model="lstm", depth=1, width=16)
    if name != "recurrent_init":  # the gain means something under an orthogonal init only
        base = base.replace(recurrent_init="orthogonal", recurrent_gain=0.5)
    changed = base.replace(**{name: RECURRENT_ALTERNATIVES[name]})
    assert changed.key() != base.key()


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_key_changes_when_a_meaningful_field_changes(name):
    changed = ARTICLE_SPEC.replace(**{name: ALTERNATIVES[name]})
    assert changed != ARTICLE_SPEC
    assert changed.key() != ARTICLE_SPEC.key()


def test_key_changes_with_init_std_under_the_normal_init():
    base = RunSpec(init="normal")
    assert base.replace(init_std=1.0).key() != base.key()


@SETTINGS
@given(valid_values, valid_values)
def test_keys_are_equal_exactly_when_canonical_forms_are(first, second):
    a, b = RunSpec(**first), RunSpec(**second)
    assert (a.key() == b.key()) == (a.to_dict() == b.to_dict())


@SETTINGS
@given(valid_values)
def test_key_is_a_short_hex_hash(values):
    key = RunSpec(**values).key()
    assert len(key) == 16 and all(c in "0123456789abcdef" for c in key)


def test_key_includes_the_schema_version(monkeypatch):
    before = ARTICLE_SPEC.key()
    monkeypatch.setattr(spec_module, "SCHEMA_VERSION", spec_module.SCHEMA_VERSION + 1)
    after = ARTICLE_SPEC.key()
    assert after != before
    monkeypatch.undo()
    assert ARTICLE_SPEC.key() == before


def test_key_is_stable_across_processes():
    """No per-process salt (e.g. hash()) may leak into the key: a fresh interpreter computes the same one."""
    specs = [ARTICLE_SPEC, RunSpec(activation="relu", init="normal", init_std=0.3, residual=True, lr=1e-4)]
    code = (
        "import json, sys; from vg_core.spec import RunSpec; "
        "print(json.dumps([RunSpec(**d).key() for d in json.loads(sys.stdin.read())]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([s.to_dict() for s in specs]),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert json.loads(output) == [s.key() for s in specs]


@SETTINGS
@given(valid_values)
def test_label_names_activation_shape_and_init(values):
    s = RunSpec(**values)
    assert s.label.startswith(f"{s.activation} {s.depth}x{s.width} ")
    assert ("normal(σ=" in s.label) == (s.init == "normal")
    assert ("residual" in s.label) == s.residual


def test_ranges_are_sane():
    for name, (kind, low, high) in RANGES.items():
        assert kind in (int, float) and low < high and math.isfinite(high), name
    assert RunSpec.from_params({}) == ARTICLE_SPEC


def test_spec_errors_carry_a_message_for_the_page():
    """str(err) is the CLI's English; err.message renders in the page's language with the same values."""
    with pytest.raises(SpecError) as caught:
        RunSpec(depth=0)
    assert str(caught.value) == "depth: 0 is out of range (allowed 1 to 100)"
    assert translator("id").render(caught.value.message) == "depth: 0 di luar rentang (yang diizinkan 1 sampai 100)"
