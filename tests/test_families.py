"""The layer-generic probes on every family: autograd as the oracle per quantity, hooks removed, nothing changed."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from engine_helpers import run_cli, strict_json, tiny_spec
from test_probes import FUNCTIONS
from torch import nn
from torch.nn import functional as F

from vg_core.data import load
from vg_core.i18n import ENGLISH
from vg_core.models import build_model
from vg_core.models.cnn import CNN
from vg_core.probes import LAYER_QUANTITIES, SLOPE_FRACTION, find_layers, model_layers, probe_batch
from vg_core.probes.quantities import max_slope, slope
from vg_core.spec import ACTIVATIONS, RunSpec, SpecError, cnn_strides


@pytest.fixture(scope="module")
def probe_data():
    ds = load("mnist-sample", 0, seed=0, probe_size=64, device="cpu")
    return ds.x_probe, ds.y_probe


def _sequential() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 24), nn.Tanh(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 10))


PROBLEMS = {
    "mlp": lambda: build_model(tiny_spec(activation="tanh", norm="layer", residual=True)),
    "cnn": lambda: build_model(tiny_spec(model="cnn", activation="relu", depth=3, width=4, norm="batch")),
    "cnn-residual": lambda: build_model(tiny_spec(model="cnn", activation="swish", depth=4, width=4, residual=True)),
    "sequential": _sequential,
}


def _oracle(model: nn.Module, layers, x, y) -> dict:
    """Every layer's output, pre-activation and activation by forward hooks that keep the graph, and
    torch.autograd.grad for dL/dW and dL/d(output): independent of the probe's own hooks and summaries."""
    outputs, pres, posts, handles = {}, {}, {}, []
    for index, layer in enumerate(layers):
        handles.append(layer.module.register_forward_hook(lambda m, i, o, k=index: outputs.__setitem__(k, o)))
        if layer.activation is not None:

            def keep(module, inputs, output, k=index) -> None:  # returns None: the output stays as it is
                pres[k], posts[k] = inputs[0], output

            handles.append(layer.activation.register_forward_hook(keep))
    loss = F.cross_entropy(model(x), y)
    for handle in handles:
        handle.remove()
    weights = [layer.module.weight for layer in layers]
    z = [outputs[i] for i in range(len(layers))]
    grads = torch.autograd.grad(loss, weights + z)
    n = len(layers)
    return {
        "loss": loss.item(),
        "weight_grads": [g.double().numpy() for g in grads[:n]],
        "out_grads": [g.double().numpy() for g in grads[n:]],
        "pres": {k: v.detach().double().numpy() for k, v in pres.items()},
        "posts": {k: v.detach().double().numpy() for k, v in posts.items()},
    }


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_every_quantity_matches_autograd(problem, probe_data):
    x, y = probe_data
    model = PROBLEMS[problem]()
    layers = model_layers(model)
    twin = copy.deepcopy(model)
    expected = _oracle(twin, model_layers(twin), x, y)
    snap = probe_batch(model, x, y, "tanh", layers)
    stats = snap.stats
    assert set(stats) == set(LAYER_QUANTITIES)
    assert snap.loss == pytest.approx(expected["loss"], rel=1e-6)
    close = {"rtol": 1e-4, "atol": 1e-12}
    for index, layer in enumerate(layers):
        for prefix, grads in (("weight_grad", expected["weight_grads"]), ("grad_out", expected["out_grads"])):
            g = grads[index]  # conv: all channels and positions
            ours = [stats[f"{prefix}_{s}"][index] for s in ("norm", "mean_abs", "std")]
            np.testing.assert_allclose(ours, [np.linalg.norm(g), np.abs(g).mean(), g.std(ddof=1)], **close)
            assert stats[f"{prefix}_zeros"][index] == np.sum(g == 0)
            counts = snap.histograms[prefix][list(snap.histogram_layers[prefix]).index(index + 1)]
            assert counts.sum() + np.sum(g == 0) == g.size
        weight = layer.module.weight.detach().double().numpy()
        np.testing.assert_allclose(stats["weight_std"][index], weight.std(ddof=1), **close)
        if index in expected["posts"]:
            pre, post = expected["pres"][index], expected["posts"][index]
            np.testing.assert_allclose(stats["act_mean"][index], post.mean(), rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(stats["act_std"][index], post.std(ddof=1), rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(stats["pre_act_std"][index], pre.std(ddof=1), rtol=1e-4, atol=1e-6)
            row = list(snap.histogram_layers["activation"]).index(index + 1)
            assert snap.histograms["activation"][row].sum() == post.size
        else:
            assert np.isnan(stats["act_mean"][index]) and index + 1 not in snap.histogram_layers["activation"]


def test_find_layers_names_module_paths_and_pairs_activations():
    layers = find_layers(_sequential())
    assert [layer.name for layer in layers] == ["0", "2", "4"]
    assert [type(layer.activation).__name__ for layer in layers] == ["Tanh", "ReLU", "NoneType"]
    cnn = build_model(tiny_spec(model="cnn", depth=3, width=4, residual=True))
    assert [layer.name for layer in model_layers(cnn)] == ["conv1", "conv2", "conv3", "fc"]
    found = [layer.name for layer in find_layers(cnn)]
    assert found[:2] == ["conv1.conv", "conv1.projection"] and found[-1] == "fc"  # projections are modules too
    rnn = find_layers(nn.Sequential(nn.LSTM(4, 8, batch_first=True)))
    assert rnn[0].output_is_activation and len(rnn[0].weights) == 2


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_a_probe_changes_nothing_and_removes_its_hooks(problem, probe_data):
    x, y = probe_data
    model = PROBLEMS[problem]()
    model.train()
    F.cross_entropy(model(x[:16]), y[:16]).backward()  # gradients a probe must give back as they were
    state = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    probe_batch(model, x, y, "tanh")
    assert all(torch.equal(t, state[k]) for k, t in model.state_dict().items())
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert model.training
    model.eval()
    probe_batch(model, x, y, "tanh")
    assert not model.training
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks


def test_hooks_are_removed_after_an_exception(probe_data):
    x, y = probe_data
    model = build_model(tiny_spec())

    def failing_loss(logits, target):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        probe_batch(model, x, y, "sigmoid", loss_fn=failing_loss)
    assert all(not module._forward_hooks for module in model.modules())


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_slope_matches_autograd_on_the_functional_form(activation):
    from vg_core.models import ACTIVATION_MODULES

    module = ACTIVATION_MODULES[activation]()
    x = torch.linspace(-6, 6, 241, dtype=torch.float64, requires_grad=True)
    functional = FUNCTIONS[activation]
    (expected,) = torch.autograd.grad(functional(x).sum(), x)
    torch.testing.assert_close(slope(module, x.detach()), expected)
    largest = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0, "elu": 1.0, "linear": 1.0}
    if activation in largest:
        assert max_slope(module) == pytest.approx(largest[activation], rel=1e-6)
    else:  # gelu 1.129, swish 1.100: above 1, found on the grid
        assert 1.05 < max_slope(module) < 1.15
    assert SLOPE_FRACTION == 0.25


def test_cnn_shape_strides_and_parameter_count():
    for depth in (1, 2, 3, 7, 12):
        for residual in (False, True):
            spec = RunSpec(model="cnn", depth=depth, width=6, norm="batch", residual=residual)
            model = build_model(spec)
            assert isinstance(model, CNN)
            assert sum(p.numel() for p in model.parameters()) == spec.n_parameters
            assert model(torch.zeros(2, 784)).shape == (2, 10)
    assert cnn_strides(9) == [1, 1, 1, 2, 1, 1, 2, 1, 1]  # conv4 and conv7 halve: 28 -> 14 -> 7
    assert cnn_strides(1) == [2]


def test_cnn_flops_per_sample_counts_every_position():
    spec = RunSpec(model="cnn", depth=3, width=4)
    # conv1 1->4 at 28x28 (stride 1), conv2 4->4 at 14x14, conv3 4->4 at 7x7, head 4->10
    macs = 28 * 28 * 4 * 9 * 1 + 14 * 14 * 4 * 9 * 4 + 7 * 7 * 4 * 9 * 4 + 4 * 10
    assert spec.flops_per_sample == 6 * macs
    assert RunSpec(depth=2, width=8).flops_per_sample == 6 * RunSpec(depth=2, width=8).n_parameters


def test_plain_and_residual_cnn_share_their_conv_weights():
    plain = build_model(tiny_spec(model="cnn", depth=4, width=4))
    skip = build_model(tiny_spec(model="cnn", depth=4, width=4, residual=True))
    for name in ("conv1", "conv3", "fc"):
        assert torch.equal(
            plain.get_submodule(name).weight if name == "fc" else plain.get_submodule(name).conv.weight,
            skip.get_submodule(name).weight if name == "fc" else skip.get_submodule(name).conv.weight,
        )


def test_a_plain_deep_cnn_starves_conv1_of_gradient_a_residual_one_does_not(probe_data):
    """He et al. 2016 at initialisation, on real digits: 18 ReLU conv layers, Kaiming init."""
    x, y = probe_data
    first = {}
    for residual in (False, True):
        spec = tiny_spec(model="cnn", activation="relu", init="kaiming_normal", depth=18, width=8, residual=residual)
        snap = probe_batch(build_model(spec), x, y, spec.activation)
        first[residual] = snap.stats["weight_grad_norm"][0]
    assert first[True] > 10 * first[False]


def test_gradient_clipping_bounds_the_step_but_not_the_recorded_norms():
    from vg_core.train import train

    wild = tiny_spec(activation="relu", init="normal", init_std=0.5, lr=0.001, epochs=1, n_train=200)
    free, clipped = train(wild), train(wild.replace(clip_norm=0.01))
    # the first step's recorded gradient norms are the network's own, before clipping: the same in both
    first = lambda r: r.layer_steps[r.layer_steps["step"] == 1]["weight_grad_norm"].to_numpy()  # noqa: E731
    np.testing.assert_allclose(first(free), first(clipped), rtol=1e-6)
    assert np.sqrt((first(free) ** 2).sum()) > 0.01
    assert free.steps["loss"].iloc[1] != clipped.steps["loss"].iloc[1]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seq_len": 100}, "seq_len: 100 does not split 784"),
        ({"recurrent_init": "identity"}, "recurrent_init: identity needs a recurrent model"),
        ({"forget_bias": 1.0}, "forget_bias: only an lstm"),
        ({"model": "gru", "forget_bias": 1.0}, "forget_bias: only an lstm has a forget gate (this is a gru)"),
        ({"model": "rnn", "activation": "sigmoid"}, "activation: an rnn is tanh or relu"),
        ({"model": "lstm", "recurrent_init": "identity"}, "identity (IRNN) is for an rnn"),
        ({"model": "rnn", "activation": "tanh", "norm": "batch"}, "norm: batch norm is not available"),
        ({"model": "gru", "residual": True}, "residual: skips are not available"),
        ({"model": "transformer"}, "model: 'transformer' is not one of"),
        ({"clip_norm": -1}, "clip_norm: -1 is out of range"),
    ],
)
def test_bad_family_combinations_are_spec_errors(changes, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        tiny_spec(**changes)


def test_meaningless_fields_are_canonicalised():
    assert tiny_spec(seq_len=196) == tiny_spec()  # no time steps in an MLP
    small = {"depth": 1, "width": 8}
    assert RunSpec(model="lstm", activation="relu", **small) == RunSpec(model="lstm", activation="tanh", **small)
    assert RunSpec(model="rnn", activation="tanh", recurrent_gain=2.0, **small).recurrent_gain == 1.0
    assert "cnn" in tiny_spec(model="cnn").label and "mlp" not in tiny_spec().label


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "cnn2"],
        ["--seq-len", "100"],
        ["--recurrent-init", "identity"],
        ["--recurrent-gain", "x"],
        ["--forget-bias", "99"],
        ["--clip-norm", "-3"],
        ["--model", "lstm", "--recurrent-init", "identity"],
    ],
)
def test_bad_family_flags_exit_2_with_one_line(args, tmp_path):
    result = run_cli("run", "--dataset", "mnist-sample", "--epochs", "0", *args, cache_dir=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("vg_core: error: ")


def test_run_json_names_cnn_layers_by_module_path(tmp_path):
    result = run_cli(
        "run", "--model", "cnn", "--depth", "3", "--width", "4", "--dataset", "mnist-sample", "--n-train", "200",
        "--epochs", "0", "--probe-size", "20", "--device", "cpu", "--json", "--quiet", cache_dir=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = strict_json(result.stdout)
    assert [row["index"] for row in payload["layers"]] == [1, 2, 3, 4]
    assert [row["layer"] for row in payload["layers"]] == ["conv1", "conv2", "conv3", "fc"]
    assert payload["spec"]["model"] == "cnn"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("run1_model", "transformer"),
        ("run1_seq", "100"),
        ("run1_clip", "-1"),
        ("run1_rinit", "zeros"),
        ("run1_rgain", "abc"),
        ("run1_fbias", "99"),
    ],
)
def test_bad_family_url_values_warn_and_fall_back(key, value):
    from vg_core.presets import PRESETS, Comparison

    comparison, warnings = Comparison.from_params({"preset": "cnn-residual", "run1": "relu", key: value})
    assert len(warnings) == 1 and ENGLISH.render(warnings[0]).startswith(f"{key}: "), warnings
    assert comparison.specs[0].model == PRESETS["cnn-residual"].specs()[0].model


def test_a_cnn_comparison_round_trips_through_its_url():
    from vg_core.presets import Comparison

    comparison = Comparison.from_preset("cnn-residual")
    params = comparison.to_params()
    assert params["run1_model"] == params["run2_model"] == "cnn" and "run1_rinit" not in params
    again, warnings = Comparison.from_params(params)
    assert again == comparison and not warnings
    lstm = {**params, "run2_model": "lstm", "run2": "tanh", "run2_residual": "false", "run2_fbias": "3"}
    parsed, warnings = Comparison.from_params(lstm)
    assert not warnings and parsed.specs[1].forget_bias == 3.0
    assert Comparison.from_params(parsed.to_params()) == (parsed, [])
