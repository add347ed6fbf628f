"""The MLP under study: depth hidden layers of width units, any activation, init, norm, residuals."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .spec import RunSpec

IN_FEATURES = 28 * 28
CLASSES = 10

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


@dataclass
class Recording:
    """Tensors a probe pass keeps, one entry per hidden layer (pre/post activation) or linear layer."""

    pre_activations: list[torch.Tensor] = field(default_factory=list)  # input of each activation
    activations: list[torch.Tensor] = field(default_factory=list)  # output of each activation
    linear_outputs: list[torch.Tensor] = field(default_factory=list)  # z = W h + b, grads retained


class MLP(nn.Module):
    """784 -> width x depth -> 10; fc1..fc{depth+1} as in the article's DeepSigmoidNet."""

    def __init__(self, spec: RunSpec):
        super().__init__()
        sizes = [IN_FEATURES] + [spec.width] * spec.depth + [CLASSES]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        norm = {"none": None, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[spec.norm]
        self.norms = nn.ModuleList(norm(spec.width) for _ in range(spec.depth)) if norm else None
        self.activation = ACTIVATION_MODULES[spec.activation]()
        self.residual = spec.residual

    @property
    def layer_names(self) -> list[str]:
        return [f"fc{i + 1}" for i in range(len(self.linears))]

    def forward(self, x: torch.Tensor, record: Recording | None = None) -> torch.Tensor:
        h = x
        for index, linear in enumerate(self.linears[:-1]):
            z = linear(h)
            u = self.norms[index](z) if self.norms is not None else z
            a = self.activation(u)
            if record is not None:
                z.retain_grad()
                record.linear_outputs.append(z)
                record.pre_activations.append(u)
                record.activations.append(a)
            # The first hidden layer changes the width (784 -> width), so it has no skip.
            h = h + a if self.residual and index > 0 else a
        logits = self.linears[-1](h)
        if record is not None:
            logits.retain_grad()
            record.linear_outputs.append(logits)
        return logits


def build_model(spec: RunSpec, device: torch.device | str = "cpu") -> MLP:
    """The spec's MLP with its init, seeded by spec.seed, on `device` (same weights on any device)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = MLP(spec)
        if spec.init != "default":
            for linear in model.linears:
                init_linear(linear, spec.init, spec.init_std)
    return model.to(device)


def init_linear(linear: nn.Linear, init: str, std: float = 0.01) -> None:
    """Initialise one layer's weights by name and zero its bias ('default' keeps PyTorch's own)."""
    weight = linear.weight
    with torch.no_grad():
        if init == "xavier_uniform":
            nn.init.xavier_uniform_(weight)
        elif init == "xavier_normal":
            nn.init.xavier_normal_(weight)
        elif init == "lecun_normal":
            nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(weight.shape[1]))
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
        nn.init.zeros_(linear.bias)
