"""The verdicts: per preset (at reduced size), the statements a careful reader of the charts would make."""

from __future__ import annotations

import dataclasses
import functools
import json

import pytest

from vg_core.i18n import translator
from vg_core.presets import PRESETS
from vg_core.results import json_safe
from vg_core.summary import GRAD_KINDS, LEVELS, RULES, Verdict, verdicts
from vg_core.train import train

REDUCED = {"dataset": "mnist-sample", "probe_size": 100, "device": "cpu"}
# per preset: what is reduced (the presets' own widths where the effect depends on them)
SIZES = {
    "activations": {"epochs": 2},  # 4,000 digits: Swish needs ~2 epochs to leave chance
    "scale": {"n_train": 1000, "epochs": 2},
    "he-init": {"n_train": 1000, "width": 64, "epochs": 2},
    "glorot-init": {"width": 100},  # a 0-epoch reproduction
    "rescue": {"n_train": 1000, "epochs": 2},
}


@functools.cache
def run(preset: str, index: int):
    """Run `index` of `preset` at its reduced size, trained once per test session."""
    return train(PRESETS[preset].specs()[index].replace(**REDUCED, **SIZES[preset]))


def keys(found: list[Verdict]) -> list[str]:
    return [verdict.key for verdict in found]


def assert_no_tick(found: list[Verdict]) -> None:
    assert all(verdict.level != "ok" for verdict in found), [(v.key, v.level) for v in found]


def test_activations_sigmoid_vanishes_and_stalls_relu_and_swish_are_healthy_and_learn():
    sigmoid = verdicts(run("activations", 0))
    assert keys(sigmoid) == ["flow.vanishing", "learning.stalled"]
    assert sigmoid[0].values["ratio"] < RULES.vanishing_ratio and sigmoid[0].values["quantity"] == "∂L/∂W"
    assert_no_tick(sigmoid)
    for index in (1, 2):
        found = verdicts(run("activations", index))
        assert keys(found)[0] == "flow.even" and keys(found)[-1] == "learning.rising", keys(found)
        assert {v.level for v in found} <= {"ok", "warning"}  # ReLU may show a layer mostly dead, and says so


def test_scale_too_small_vanishes_by_size_and_too_large_diverges():
    small = verdicts(run("scale", 0))
    assert keys(small)[0] == "flow.vanishing_size" and "learning.stalled" in keys(small)
    assert small[0].values["norm"] < 1e-9  # gradients ~1e-11: vanishing whatever the ratio
    assert_no_tick(small)
    large = run("scale", 2)
    found = verdicts(large)
    assert keys(found)[:2] == ["diverged", "flow.not_finite"]
    assert found[0].values["step"] == large.diverged_at_step and found[0].level == "error"
    assert "learning." not in " ".join(keys(found))  # no learning curve after a divergence
    assert_no_tick(found)
    assert "flow.exploding_size" in keys(verdicts(large, step=0))  # at initialisation: ~1e10


def test_he_sqrt_1_over_n_relu30_vanishes_and_stalls():
    found = verdicts(run("he-init", 0))
    assert keys(found)[0] == "flow.vanishing_size" and "learning.stalled" in keys(found)
    assert_no_tick(found)


def test_glorot_standard_init_shrinks_toward_the_input_in_the_backprop_view():
    standard, xavier = run("glorot-init", 0), run("glorot-init", 1)
    shown = verdicts(standard, "grad_out")
    assert keys(shown)[0] in ("flow.vanishing", "flow.shrinking"), shown
    assert shown[0].values["ratio"] < RULES.shrinking_ratio and shown[0].values["quantity"] == "∂L/∂z"
    assert keys(verdicts(xavier, "grad_out"))[0] == "flow.even"
    # the view decides: the same run's weight gradients are even (fc1's 784 inputs lift its ∂L/∂W)
    assert keys(verdicts(standard, "weight_grad"))[0] == "flow.even"
    # a 0-epoch run: statements about its initialisation only, no learning verdict
    assert all(not key.startswith("learning.") for key in keys(shown))
    assert all(verdict.values["step"] == 0 for verdict in shown)


def test_rescue_plain_sigmoid_vanishes_residual_and_batch_norm_do_better():
    plain = verdicts(run("rescue", 0), step=0)
    assert keys(plain)[0] in ("flow.vanishing", "flow.vanishing_size")
    for index in (1, 2):  # at initialisation (the residual run may diverge later: its own verdict says so)
        assert [k for k in keys(verdicts(run("rescue", index), step=0)) if k.startswith("flow.")] == ["flow.even"]
    assert "learning.rising" in keys(verdicts(run("rescue", 2)))  # batch norm learns


def test_each_verdict_names_its_quantity_and_step_and_the_chosen_step_is_used():
    result = run("activations", 1)
    early = result.snapshot_steps[1]
    found = verdicts(result, "grad_out", step=early + 0)
    flow = next(v for v in found if v.key.startswith("flow."))
    assert flow.values["step"] == early and flow.values["quantity"] == GRAD_KINDS["grad_out"]
    assert "∂L/∂z" in flow.text and f"step {early:,}" in flow.text
    # before the first evaluation after step 0 there is no learning curve to judge
    assert not any(v.key.startswith("learning.") for v in found)
    with pytest.raises(ValueError, match="grad_kind"):
        verdicts(result, "weights")


def test_a_run_still_training_says_so_far_and_levels_are_known():
    result = run("activations", 1)
    result = dataclasses.replace(result, meta={**result.meta, "status": "running"})
    found = verdicts(result)
    assert found[-1].key == "learning.so_far" and found[-1].level == "info"
    assert all(verdict.level in LEVELS for preset in SIZES for verdict in verdicts(run(preset, 0)))


def test_verdicts_are_keys_and_numbers_rendered_in_each_language():
    found = verdicts(run("activations", 0)) + verdicts(run("scale", 2)) + verdicts(run("he-init", 0))
    for verdict in found:
        english, indonesian = verdict.render(translator("en")), verdict.render(translator("id"))
        assert english == verdict.text and indonesian != english and "{" not in indonesian
        entry = verdict.to_dict()
        assert set(entry) == {"key", "level", "text", "values"}
        json.dumps(json_safe(entry), allow_nan=False)


ORTHOGONAL_RNN = {"model": "rnn", "activation": "tanh", "recurrent_init": "orthogonal"}


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({**ORTHOGONAL_RNN, "recurrent_gain": 0.9}, "time.vanishing"),
        ({**ORTHOGONAL_RNN, "recurrent_gain": 1.5}, "time.exploding"),
        ({"model": "lstm", "activation": "tanh", "forget_bias": 3.0}, "time.even"),
    ],
)
def test_a_recurrent_net_gets_a_verdict_through_time(changes, key):
    spec = (
        PRESETS["activations"]
        .specs()[0]
        .replace(**REDUCED, n_train=200, depth=1, width=128, seq_len=196, epochs=0, **changes)
    )
    found = verdicts(train(spec), step=0)
    assert key in keys(found)
    assert "T = 196" in next(v for v in found if v.key == key).text
