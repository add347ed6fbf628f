"""The model families under study, built from a RunSpec: `build_model` picks the family by `spec.model`.

Each family's module declares its probed layers (`model.layers()`, see vg_core.probes.layers): a layer is
named by its module path, and every layer owns its activation module so that a hook can tell layers apart.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..rng import seeded
from ..spec import IMAGE_SIDE, PIXELS, RECURRENT, RunSpec

IN_FEATURES = PIXELS
CLASSES = 10
__all__ = ["ACTIVATION_MODULES", "CLASSES", "IMAGE_SIDE", "INIT_LABELS", "IN_FEATURES", "build_model", "init_weight"]

ACTIVATION_MODULES = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # negative slope 0.01
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "swish": nn.SiLU,  # x * sigmoid(x)
    "linear": nn.Identity,
}

INIT_LABELS = {
    "default": "PyTorch default: U[±1/√fan_in] (Glorot & Bengio's 'standard' init)",
    "xavier_uniform": "Xavier/Glorot uniform: U[±√(6/(fan_in+fan_out))]",
    "xavier_normal": "Xavier/Glorot normal: N(0, 2/(fan_in+fan_out))",
    "lecun_normal": "LeCun normal: N(0, 1/fan_in)",
    "kaiming_uniform": "Kaiming/He uniform: U[±√(6/fan_in)]",
    "kaiming_normal": "Kaiming/He normal: N(0, 2/fan_in)",
    "orthogonal": "orthogonal (gain 1)",
    "normal": "normal N(0, σ²) with the chosen σ",
}


def build_model(spec: RunSpec, device: torch.device | str = "cpu") -> nn.Module:
    """The spec's network (mlp, cnn, rnn, lstm, gru) with its inits, seeded by spec.seed, on `device`."""
    from .cnn import CNN, CNNConfig
    from .mlp import MLP, MLPConfig
    from .rnn import RecurrentConfig, build_recurrent_model

    if spec.model in RECURRENT:
        return build_recurrent_model(RecurrentConfig.from_spec(spec), device)
    with seeded(spec.seed):
        model = MLP(MLPConfig.from_spec(spec)) if spec.model == "mlp" else CNN(CNNConfig.from_spec(spec))
        if spec.init != "default":
            for module in model.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    init_weight(module, spec.init, spec.init_std)
    return model.to(device)


def init_weight(module: nn.Linear | nn.Conv2d, init: str, std: float = 0.01) -> None:
    """Initialise one linear or conv layer's weights by name and zero its bias ('default' keeps PyTorch's own).

    fan_in and fan_out of a conv weight count its kernel: in_channels x k x k and out_channels x k x k."""
    weight = module.weight
    with torch.no_grad():
        if init == "xavier_uniform":
            nn.init.xavier_uniform_(weight)
        elif init == "xavier_normal":
            nn.init.xavier_normal_(weight)
        elif init == "lecun_normal":
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
            nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(fan_in))
        elif init == "kaiming_uniform":
            nn.init.kaiming_uniform_(weight, nonlinearity="relu")
        elif init == "kaiming_normal":
            nn.init.kaiming_normal_(weight, nonlinearity="relu")
        elif init == "orthogonal":
            nn.init.orthogonal_(weight)
        elif init == "normal":
            nn.init.normal_(weight, 0.0, std)
        else:
            raise ValueError(f"unknown init {init!r}")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
