"""What a probe measures: layers, each a parameterised module with its activation, named by module path."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

# Modules that hold a layer's weights. Norm layers are not layers of their own: they belong to the layer before.
WEIGHT_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase, nn.Embedding)
# Normalisation modules: layers of their own only when asked for (find_layers(norms=True)) and affine.
NORM_MODULES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
# Element-wise non-linearities find_layers pairs with the weight module before them.
ACTIVATION_TYPES = (
    nn.Sigmoid,
    nn.Tanh,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Mish,
    nn.SELU,
    nn.CELU,
    nn.Hardtanh,
    nn.ReLU6,
    nn.Hardsigmoid,
    nn.Hardswish,
)


@dataclass(frozen=True, eq=False)
class Layer:
    """One probed layer: its name (a module path), its weight module, and the activation that follows it.

    activation: the module whose input is the pre-activation and whose output is the activation; None for a
    layer without one (a head) and for a fused recurrent module, whose own output is its activation
    (`output_is_activation`: no separate pre-activation). unit_dim: the dimension of the output that indexes
    units (features, channels), for the per-unit "dead" decision."""

    name: str
    module: nn.Module
    activation: nn.Module | None = None
    output_is_activation: bool = False
    unit_dim: int = 1

    @property
    def weights(self) -> list[nn.Parameter]:
        """The weight matrices (biases excluded): `weight`, or every `weight_*` of a recurrent module."""
        if isinstance(self.module, nn.RNNBase):
            return [p for name, p in self.module.named_parameters() if name.startswith("weight")]
        return [self.module.weight]


def model_layers(model: nn.Module) -> list[Layer]:
    """The layers a built-in model declares (its `layers()`), else those find_layers finds."""
    declared = getattr(model, "layers", None)
    return declared() if callable(declared) else find_layers(model)


def find_layers(model: nn.Module, norms: bool = False) -> list[Layer]:
    """Every weight module of an arbitrary model, named by module path, in registration order (with `norms`,
    the affine normalisation modules too).

    Each is paired with the first activation module registered after it and before the next weight module
    (for an nn.Sequential and for models that register modules in the order they use them, the activation
    that runs next). A recurrent module is its own activation."""
    found: list[tuple[str, nn.Module]] = []
    activations: dict[int, nn.Module] = {}
    for name, module in model.named_modules():
        norm = norms and isinstance(module, NORM_MODULES) and getattr(module, "weight", None) is not None
        if isinstance(module, WEIGHT_MODULES) or norm:
            found.append((name, module))
        elif isinstance(module, ACTIVATION_TYPES) and found and len(found) - 1 not in activations:
            activations[len(found) - 1] = module
    layers = []
    for index, (name, module) in enumerate(found):
        if isinstance(module, nn.RNNBase):
            layers.append(Layer(name or "model", module, None, True, -1))
        else:
            layers.append(Layer(name or "model", module, activations.get(index)))
    return layers
