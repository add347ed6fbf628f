"""The CNN: depth 3x3 conv layers of width channels on the 28x28 image, optional residual skips (ResNet style)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..probes.layers import Layer
from ..spec import RunSpec, cnn_strides
from . import ACTIVATION_MODULES, CLASSES, IMAGE_SIDE


def norm_2d(kind: str, channels: int) -> nn.Module:
    """batch: BatchNorm2d (per channel over batch and positions); layer: GroupNorm(1, C) (per sample over all)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


@dataclass(frozen=True)
class CNNConfig:
    """conv1..conv{depth} (3x3, padding 1), global average pooling, a linear head `fc`."""

    depth: int  # conv layers
    width: int  # channels of every conv layer
    activation: str  # one of ACTIVATION_MODULES, after each conv's norm
    norm: str  # none | batch | layer (see norm_2d), between each conv and its activation
    residual: bool  # h + f(h) around every conv layer; a 1x1 projection of h where the shape changes

    @classmethod
    def from_spec(cls, spec: RunSpec) -> CNNConfig:
        return cls(spec.depth, spec.width, spec.activation, spec.norm, spec.residual)

    @property
    def strides(self) -> list[int]:
        return cnn_strides(self.depth)


class ConvLayer(nn.Module):
    """conv -> norm -> activation, plus the (projected) input when residual."""

    def __init__(self, in_channels: int, stride: int, config: CNNConfig):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, config.width, 3, stride=stride, padding=1)
        self.norm = norm_2d(config.norm, config.width)
        self.act = ACTIVATION_MODULES[config.activation]()
        self.residual = config.residual
        # ResNet's option B: a 1x1 convolution (no bias) where the skip must change shape, the identity elsewhere.
        # The CNN adds it once every conv and the head exist, so a plain net and its residual twin share them.
        self.reshapes = stride != 1 or in_channels != config.width
        self.projection: nn.Conv2d | None = None

    def add_projection(self) -> None:
        conv = self.conv
        self.projection = nn.Conv2d(conv.in_channels, conv.out_channels, 1, stride=conv.stride, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.act(self.norm(self.conv(h)))
        if not self.residual:
            return a
        return a + (self.projection(h) if self.projection is not None else h)


class CNN(nn.Module):
    """Conv layers registered as conv1..conv{depth} (module paths = layer names), the head as fc.

    The 1x1 projections of a residual net are part of their conv layer's skip, not layers of their own."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        self.names = [f"conv{i}" for i in range(1, config.depth + 1)]
        for index, (name, stride) in enumerate(zip(self.names, config.strides)):
            self.add_module(name, ConvLayer(1 if index == 0 else config.width, stride, config))
        self.fc = nn.Linear(config.width, CLASSES)
        for name in self.names:
            if config.residual and getattr(self, name).reshapes:
                getattr(self, name).add_projection()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        for name in self.names:
            h = getattr(self, name)(h)
        return self.fc(h.mean(dim=(2, 3)))

    def layers(self) -> list[Layer]:
        """conv1..conv{depth} with their activations, then the head fc."""
        convs = [Layer(name, getattr(self, name).conv, getattr(self, name).act) for name in self.names]
        return [*convs, Layer("fc", self.fc)]
