"""The MLP: depth hidden layers of width units, any activation, init, norm and residual skips."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..probes.layers import Layer
from ..spec import RunSpec
from . import ACTIVATION_MODULES, CLASSES, IN_FEATURES

NORMS_1D = {"none": None, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


@dataclass(frozen=True)
class MLPConfig:
    """784 -> width x depth -> 10, as in the article's DeepSigmoidNet."""

    depth: int  # hidden layers fc1..fc{depth}; fc{depth+1} is the linear head
    width: int  # units per hidden layer
    activation: str  # one of ACTIVATION_MODULES, after each hidden layer's norm
    norm: str  # none | batch | layer, between each hidden linear layer and its activation
    residual: bool  # h + f(h) around every hidden layer but fc1 (which changes the width)

    @classmethod
    def from_spec(cls, spec: RunSpec) -> MLPConfig:
        return cls(spec.depth, spec.width, spec.activation, spec.norm, spec.residual)


class HiddenLayer(nn.Module):
    """linear -> norm -> activation, plus the input when it has a skip."""

    def __init__(self, fan_in: int, config: MLPConfig, skip: bool):
        super().__init__()
        self.linear = nn.Linear(fan_in, config.width)
        norm = NORMS_1D[config.norm]
        self.norm = norm(config.width) if norm else nn.Identity()
        self.act = ACTIVATION_MODULES[config.activation]()
        self.skip = skip

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.act(self.norm(self.linear(h)))
        return h + a if self.skip else a


class MLP(nn.Module):
    """Hidden layers registered as fc1..fc{depth} (module paths = layer names), the head as fc{depth+1}."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.names = [f"fc{i}" for i in range(1, config.depth + 2)]
        for index, name in enumerate(self.names[:-1]):
            fan_in = IN_FEATURES if index == 0 else config.width
            self.add_module(name, HiddenLayer(fan_in, config, skip=config.residual and index > 0))
        self.add_module(self.names[-1], nn.Linear(config.width, CLASSES))

    @property
    def layer_names(self) -> list[str]:
        return list(self.names)

    @property
    def linears(self) -> list[nn.Linear]:
        """Every layer's linear map, fc1 first, the head last."""
        return [block.linear for block in self._hidden()] + [getattr(self, self.names[-1])]

    @property
    def norms(self) -> list[nn.Module] | None:
        """Each hidden layer's norm, or None without norms."""
        return None if self.config.norm == "none" else [block.norm for block in self._hidden()]

    @property
    def residual(self) -> bool:
        return self.config.residual

    def _hidden(self) -> list[HiddenLayer]:
        return [getattr(self, name) for name in self.names[:-1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for name in self.names:
            h = getattr(self, name)(h)
        return h

    def layers(self) -> list[Layer]:
        """fc1..fc{depth} with their activations, then the head."""
        hidden = [Layer(name, block.linear, block.act) for name, block in zip(self.names, self._hidden())]
        return [*hidden, Layer(self.names[-1], getattr(self, self.names[-1]))]
