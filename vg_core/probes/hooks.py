"""Forward hooks and output-gradient hooks on a model's layers, attached for one pass and always removed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.utils.hooks import RemovableHandle

from .layers import Layer


@dataclass
class Capture:
    """What one layer's hooks saw in a pass, one entry per call of its module (detached tensors)."""

    outputs: list[torch.Tensor] = field(default_factory=list)  # the weight module's output
    output_grads: list[torch.Tensor] = field(default_factory=list)  # dL/d(that output), filled by backward
    pre_activations: list[torch.Tensor] = field(default_factory=list)  # the activation module's input
    activations: list[torch.Tensor] = field(default_factory=list)  # the activation module's output


def _first(value):
    """A module's main output: the tensor itself, or the first of a tuple (a recurrent module's output)."""
    return value[0] if isinstance(value, (tuple, list)) else value


@contextmanager
def attach(layers: Sequence[Layer]) -> Iterator[list[Capture]]:
    """Hooks on exactly these layers for the duration of the block; one Capture per layer, in order.

    Every handle added is removed on exit, whether the block finishes or raises."""
    captures = [Capture() for _ in layers]
    handles: list[RemovableHandle] = []

    def on_output(capture: Capture):
        def hook(module, inputs, output):
            output = _first(output)
            capture.outputs.append(output.detach())
            if output.requires_grad:
                handles.append(output.register_hook(lambda grad: capture.output_grads.append(grad.detach())))

        return hook

    def on_pre_activation(capture: Capture):
        def hook(module, inputs):
            # an in-place activation (ReLU(inplace=True)) overwrites its input: keep a copy of it first
            pre = _first(inputs).detach()
            capture.pre_activations.append(pre.clone() if getattr(module, "inplace", False) else pre)

        return hook

    def on_activation(capture: Capture):
        def hook(module, inputs, output):
            capture.activations.append(_first(output).detach())

        return hook

    try:
        for layer, capture in zip(layers, captures):
            handles.append(layer.module.register_forward_hook(on_output(capture)))
            if layer.activation is not None:
                handles.append(layer.activation.register_forward_pre_hook(on_pre_activation(capture)))
                handles.append(layer.activation.register_forward_hook(on_activation(capture)))
        yield captures
    finally:
        for handle in handles:
            handle.remove()
