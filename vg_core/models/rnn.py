"""Recurrent nets on the digit read as a sequence: stacked Elman RNN, LSTM or GRU layers and a linear head."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from ..probes.layers import Layer
from ..rng import seeded
from ..spec import GATES, RECURRENT_INITS, SEQ_LENS
from ..spec import INITS as INPUT_INITS
from ..spec import RECURRENT as KINDS
from . import CLASSES, IN_FEATURES, init_weight

RNN_ACTIVATIONS = ("tanh", "relu")  # what nn.RNN offers; relu is the IRNN's
LSTM_FORGET_GATE = 1  # PyTorch's LSTM gate order is (input, forget, cell, output)


@dataclass(frozen=True)
class RecurrentConfig:
    """What recurrent net to build; from_spec reads it off a run spec."""

    kind: str = "rnn"  # rnn (Elman) | lstm | gru
    depth: int = 1  # stacked single-layer recurrent modules
    width: int = 128  # hidden units per layer
    seq_len: int = 28  # time steps; 784 / seq_len pixels each, row-major
    activation: str = "tanh"  # the Elman RNN's non-linearity (tanh | relu); LSTM/GRU have theirs, canonically tanh
    init: str = "default"  # input-to-hidden and head weights, per gate block; any init but default zeroes b_ih
    init_std: float = 0.01  # sigma of the "normal" init
    recurrent_init: str = "default"  # hidden-to-hidden weights: default (PyTorch's) | orthogonal | identity
    recurrent_gain: float = 1.0  # scales the orthogonal or identity recurrent matrix (its singular values)
    forget_bias: float | None = None  # LSTM only: b_ih + b_hh of the forget gate; None keeps PyTorch's init
    seed: int = 0  # seeds the weights

    def __post_init__(self) -> None:
        _validate(self)
        if self.kind != "rnn":
            object.__setattr__(self, "activation", "tanh")  # h_t = o * tanh(c_t) or a tanh-interpolation
        if self.kind != "lstm":
            object.__setattr__(self, "forget_bias", None)  # only the LSTM has a forget gate

    @classmethod
    def from_spec(cls, spec: Any) -> RecurrentConfig:
        """The config of a spec with the fields model, depth, width, seq_len, activation, init, init_std,
        recurrent_init, recurrent_gain, forget_bias and seed (missing ones take the defaults here)."""
        names = ("depth", "width", "seq_len", "activation", "init", "init_std")
        names += ("recurrent_init", "recurrent_gain", "forget_bias", "seed")
        values = {name: getattr(spec, name) for name in names if hasattr(spec, name)}
        return cls(kind=spec.model, **values)

    @property
    def step_features(self) -> int:
        """Pixels read per time step."""
        return IN_FEATURES // self.seq_len


def _validate(config: RecurrentConfig) -> None:
    checks = (
        (config.kind in KINDS, f"model: {config.kind!r} is not one of {', '.join(KINDS)}"),
        (config.depth >= 1 and config.width >= 1, f"depth/width: {config.depth}x{config.width} must be at least 1x1"),
        (config.seq_len in SEQ_LENS, f"seq_len: {config.seq_len!r} is not one of {', '.join(map(str, SEQ_LENS))}"),
        (config.init in INPUT_INITS, f"init: {config.init!r} is not one of {', '.join(INPUT_INITS)}"),
        (
            config.recurrent_init in RECURRENT_INITS,
            f"recurrent_init: {config.recurrent_init!r} is not one of {', '.join(RECURRENT_INITS)}",
        ),
        (
            math.isfinite(config.recurrent_gain) and config.recurrent_gain > 0,
            f"recurrent_gain: {config.recurrent_gain!r} is not a positive number",
        ),
        (
            config.recurrent_gain == 1 or config.recurrent_init != "default",
            "recurrent_gain: a gain applies to an orthogonal or identity recurrent init, not PyTorch's default",
        ),
        (
            config.kind != "rnn" or config.activation in RNN_ACTIVATIONS,
            f"activation: an Elman RNN is {' or '.join(RNN_ACTIVATIONS)}, not {config.activation!r}",
        ),
        (
            config.kind == "rnn" or config.recurrent_init != "identity",
            f"recurrent_init: identity is the IRNN's init, for the Elman RNN, not the {config.kind.upper()}",
        ),
        (
            config.forget_bias is None or math.isfinite(config.forget_bias),
            f"forget_bias: {config.forget_bias!r} is not a finite number",
        ),
    )
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


class RecurrentNet(nn.Module):
    """(N, 784) -> (N, seq_len, 784/seq_len) -> depth recurrent layers -> fc on the last hidden state -> 10."""

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        for index in range(config.depth):
            features = config.step_features if index == 0 else config.width
            self.add_module(f"{config.kind}{index + 1}", _recurrent_module(config, features))
        self.fc = nn.Linear(config.width, CLASSES)

    @property
    def recurrent_layers(self) -> list[tuple[str, nn.RNNBase]]:
        """(module path, fused module) per recurrent layer, bottom up."""
        return [(name, module) for name, module in self.named_children() if isinstance(module, nn.RNNBase)]

    def layers(self) -> list[Layer]:
        """The probes' layers: each fused recurrent module (its output h_1..h_T is its activation; its weights
        are weight_ih and weight_hh) and the head fc."""
        recurrent = [Layer(name, module, None, True, -1) for name, module in self.recurrent_layers]
        return [*recurrent, Layer("fc", self.fc)]

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Flat images (N, 784) as (N, seq_len, 784/seq_len): pixels in row-major order."""
        return x.reshape(len(x), self.config.seq_len, self.config.step_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.sequence(x)
        for _, layer in self.recurrent_layers:
            h, _ = layer(h)
        return self.fc(h[:, -1])


def _recurrent_module(config: RecurrentConfig, features: int) -> nn.RNNBase:
    if config.kind == "rnn":
        return nn.RNN(features, config.width, nonlinearity=config.activation, batch_first=True)
    return {"lstm": nn.LSTM, "gru": nn.GRU}[config.kind](features, config.width, batch_first=True)


def build_recurrent_model(config: RecurrentConfig, device: torch.device | str = "cpu") -> RecurrentNet:
    """The config's net with its inits, seeded by config.seed, on `device` (same weights on any device)."""
    with seeded(config.seed):
        model = RecurrentNet(config)
        for _, module in model.recurrent_layers:
            init_recurrent(module, config)
        if config.init != "default":
            init_weight(model.fc, config.init, config.init_std)
    return model.to(device)


def init_recurrent(module: nn.RNNBase, config: RecurrentConfig) -> None:
    """Apply the config's inits to one single-layer fused module, gate block by gate block.

    Input weights: the MLP's init by name on each (width, features) block, b_ih zeroed ('default' keeps
    PyTorch's U[±1/√width]). Recurrent weights: each (width, width) block orthogonal or the identity, times
    the gain, b_hh zeroed. LSTM forget gate: b_ih's forget slice = forget_bias and b_hh's = 0, so their sum,
    the bias the gate sees, is exactly forget_bias (set last, over either init).
    """
    gates = GATES[config.kind]
    with torch.no_grad():
        if config.init != "default":
            for weight, bias in zip(module.weight_ih_l0.chunk(gates), module.bias_ih_l0.chunk(gates)):
                # init_weight reads .weight and .bias only: one gate block is initialised like one nn.Linear
                init_weight(SimpleNamespace(weight=weight, bias=bias), config.init, config.init_std)
        if config.recurrent_init != "default":
            for weight in module.weight_hh_l0.chunk(gates):
                if config.recurrent_init == "orthogonal":
                    nn.init.orthogonal_(weight, gain=config.recurrent_gain)
                else:
                    weight.copy_(config.recurrent_gain * torch.eye(config.width))
            module.bias_hh_l0.zero_()
        if config.forget_bias is not None:
            forget = slice(LSTM_FORGET_GATE * config.width, (LSTM_FORGET_GATE + 1) * config.width)
            module.bias_ih_l0[forget] = config.forget_bias
            module.bias_hh_l0[forget] = 0.0
