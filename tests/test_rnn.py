"""The recurrent nets: configs, the sequence they read, their inits, and the layers the probes see."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from vg_core.models.rnn import (
    GATES,
    KINDS,
    RecurrentConfig,
    build_recurrent_model,
)
from vg_core.probes import model_layers
from vg_core.spec import RunSpec


def test_defaults_validate_and_canonicalise():
    config = RecurrentConfig()
    assert (config.kind, config.activation, config.forget_bias) == ("rnn", "tanh", None)
    # LSTM/GRU have fixed non-linearities; only the LSTM has a forget gate
    assert RecurrentConfig(kind="lstm", activation="relu").activation == "tanh"
    assert RecurrentConfig(kind="gru", forget_bias=3.0).forget_bias is None
    assert RecurrentConfig(kind="lstm", forget_bias=3.0).forget_bias == 3.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "transformer"}, "model: 'transformer' is not one of rnn, lstm, gru"),
        ({"seq_len": 100}, "seq_len: 100 is not one of 28, 49, 98, 196, 392, 784"),
        ({"depth": 0}, "depth/width: 0x128 must be at least 1x1"),
        ({"init": "zeros"}, "init: 'zeros' is not one of"),
        ({"recurrent_init": "eye"}, "recurrent_init: 'eye' is not one of default, orthogonal, identity"),
        ({"recurrent_init": "orthogonal", "recurrent_gain": 0.0}, "recurrent_gain: 0.0 is not a positive number"),
        ({"recurrent_init": "orthogonal", "recurrent_gain": float("nan")}, "recurrent_gain: nan is not a positive"),
        ({"recurrent_gain": 2.0}, "recurrent_gain: a gain applies to an orthogonal or identity recurrent init"),
        ({"activation": "sigmoid"}, "activation: an Elman RNN is tanh or relu, not 'sigmoid'"),
        (
            {"kind": "lstm", "recurrent_init": "identity"},
            "identity is the IRNN's init, for the Elman RNN, not the LSTM",
        ),
        ({"kind": "lstm", "forget_bias": float("inf")}, "forget_bias: inf is not a finite number"),
    ],
)
def test_bad_configs_say_what_is_wrong(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RecurrentConfig(**changes)


def test_from_spec_reads_the_fields_by_name():
    spec = SimpleNamespace(
        model="lstm",
        depth=2,
        width=16,
        seq_len=49,
        activation="sigmoid",  # an MLP activation: ignored by the LSTM
        init="xavier_uniform",
        init_std=0.01,
        recurrent_init="orthogonal",
        recurrent_gain=0.9,
        forget_bias=1.0,
        seed=7,
        lr=0.1,  # fields the recurrent net does not use are not read
    )
    config = RecurrentConfig.from_spec(spec)
    assert config == RecurrentConfig("lstm", 2, 16, 49, "tanh", "xavier_uniform", 0.01, "orthogonal", 0.9, 1.0, 7)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("depth", [1, 2])
def test_shapes_names_and_parameter_count(kind, depth):
    config = RecurrentConfig(kind=kind, depth=depth, width=12, seq_len=49)
    model = build_recurrent_model(config)
    assert model(torch.zeros(5, 784)).shape == (5, 10)
    names = [f"{kind}{i + 1}" for i in range(depth)]
    assert [name for name, _ in model.recurrent_layers] == names
    layers = model_layers(model)
    assert [layer.name for layer in layers] == [*names, "fc"]
    assert all(layer.activation is None for layer in layers)
    assert [layer.output_is_activation for layer in layers] == [True] * depth + [False]
    assert dict(model.named_modules())[names[-1]] is layers[-2].module  # names are module paths
    spec = RunSpec(model=kind, depth=depth, width=12, seq_len=49, activation="tanh")
    assert spec.n_parameters == sum(p.numel() for p in model.parameters())
    assert [w.shape for w in layers[0].weights] == [(GATES[kind] * 12, 16), (GATES[kind] * 12, 12)]
    assert [w.shape for w in layers[-1].weights] == [(10, 12)]


def test_the_digit_is_read_row_major_in_seq_len_steps():
    x = torch.arange(2 * 784, dtype=torch.float32).reshape(2, 784)
    rows = build_recurrent_model(RecurrentConfig(seq_len=28)).sequence(x)
    assert rows.shape == (2, 28, 28)
    assert torch.equal(rows[1, 3], x[1, 3 * 28 : 4 * 28])  # step 4 of the second digit is its fourth row
    pixels = build_recurrent_model(RecurrentConfig(seq_len=784)).sequence(x)
    assert pixels.shape == (2, 784, 1) and torch.equal(pixels[0, :, 0], x[0])


def test_the_seed_fixes_the_weights():
    config = RecurrentConfig(kind="gru", width=8, recurrent_init="orthogonal")
    one, two = build_recurrent_model(config), build_recurrent_model(config)
    other = build_recurrent_model(RecurrentConfig(kind="gru", width=8, recurrent_init="orthogonal", seed=1))
    assert all(torch.equal(a, b) for a, b in zip(one.parameters(), two.parameters()))
    assert not torch.equal(one.gru1.weight_hh_l0, other.gru1.weight_hh_l0)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_identity_init_is_the_identity_times_the_gain(activation):
    config = RecurrentConfig(width=10, activation=activation, recurrent_init="identity", recurrent_gain=0.5)
    rnn = build_recurrent_model(config).rnn1
    assert rnn.nonlinearity == activation
    assert torch.equal(rnn.weight_hh_l0, 0.5 * torch.eye(10))
    assert torch.equal(rnn.bias_hh_l0, torch.zeros(10))


@pytest.mark.parametrize("kind", KINDS)
def test_orthogonal_init_per_gate_block_times_the_gain(kind):
    width, gain = 16, 1.5
    config = RecurrentConfig(kind=kind, width=width, recurrent_init="orthogonal", recurrent_gain=gain)
    module = build_recurrent_model(config).recurrent_layers[0][1]
    blocks = module.weight_hh_l0.detach().double().chunk(GATES[kind])
    for block in blocks:
        # float32 weights: orthogonal to float32 precision
        eye = torch.eye(width, dtype=torch.float64)
        torch.testing.assert_close(block @ block.T, gain**2 * eye, rtol=0, atol=1e-6)
        torch.testing.assert_close(
            torch.linalg.svdvals(block), gain * torch.ones(width, dtype=torch.float64), rtol=1e-6, atol=0
        )
    assert not any(torch.equal(a, b) for a, b in itertools.combinations(blocks, 2))  # each gate its own matrix
    assert torch.equal(module.bias_hh_l0, torch.zeros_like(module.bias_hh_l0))


@pytest.mark.parametrize("recurrent_init", ["default", "orthogonal"])
def test_forget_bias_sets_exactly_the_forget_slice(recurrent_init):
    width = 6
    plain = build_recurrent_model(RecurrentConfig(kind="lstm", width=width, recurrent_init=recurrent_init))
    biased = build_recurrent_model(
        RecurrentConfig(kind="lstm", width=width, recurrent_init=recurrent_init, forget_bias=3.0)
    )
    forget = slice(width, 2 * width)  # PyTorch's gate order: input, forget, cell, output
    b_ih, b_hh = biased.lstm1.bias_ih_l0, biased.lstm1.bias_hh_l0
    assert torch.equal(b_ih[forget], torch.full((width,), 3.0)) and torch.equal(b_hh[forget], torch.zeros(width))
    assert torch.equal(b_ih[forget] + b_hh[forget], torch.full((width,), 3.0))  # the bias the gate sees
    others = torch.ones(4 * width, dtype=torch.bool)
    others[forget] = False
    for name, value in plain.state_dict().items():
        changed = biased.state_dict()[name]
        if name.startswith("lstm1.bias"):
            assert torch.equal(value[others], changed[others])
        else:
            assert torch.equal(value, changed), name


@pytest.mark.parametrize("kind", KINDS)
def test_input_init_per_gate_block_zeroes_the_input_bias(kind):
    config = RecurrentConfig(kind=kind, width=8, seq_len=196, init="orthogonal")
    model = build_recurrent_model(config)
    module = model.recurrent_layers[0][1]
    for block in module.weight_ih_l0.detach().double().chunk(GATES[kind]):  # (8, 4): orthonormal columns
        torch.testing.assert_close(block.T @ block, torch.eye(4, dtype=torch.float64), rtol=0, atol=1e-6)
    assert torch.equal(module.bias_ih_l0, torch.zeros_like(module.bias_ih_l0))
    assert torch.equal(model.fc.bias, torch.zeros(10))
    default = build_recurrent_model(RecurrentConfig(kind=kind, width=8, seq_len=196)).recurrent_layers[0][1]
    bound = 1 / 8**0.5  # PyTorch's own U[±1/√hidden] for every recurrent parameter
    assert all(p.abs().max() <= bound for p in default.parameters())
    assert isinstance(model.fc, nn.Linear)
