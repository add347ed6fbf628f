"""Short explanations of every symbol, term and init name the page shows, for its tooltips.

Each entry's `symbol` is shown as it is (a formula or a code name); its `name` and `text` are msgids,
translated where they are shown (vg_core.i18n). `tooltip` renders one entry as Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass

from .i18n import N_, Message, Translator, message
from .probes import SLOPE_FRACTION


@dataclass(frozen=True)
class Term:
    symbol: str  # as the page writes it: ∂L/∂W, fc1, kaiming_normal, ...
    name: str  # msgid: what it is called
    text: Message | str  # msgid (or a Message when it quotes a number): one or two plain sentences


GLOSSARY: dict[str, Term] = {
    "dL/dW": Term(
        "∂L/∂W",
        N_("weight gradient"),
        N_(
            "How much the loss L would change for a small change of each weight W of a layer; a training step moves "
            "every weight against it. A tiny ∂L/∂W means the layer barely learns."
        ),
    ),
    "dL/dz": Term(
        "∂L/∂z",
        N_("back-propagated gradient"),
        N_(
            "The gradient of the loss with respect to a layer's output z = W·h + b, before the activation. "
            "Backpropagation passes it from layer to layer; ∂L/∂W is this gradient times the layer's input."
        ),
    ),
    "log10|g|": Term(
        "log₁₀|g|",
        N_("order of magnitude of a gradient"),
        N_(
            "The power of ten of a gradient value g, its sign dropped: −3 means about 0.001. One step to the left on "
            "this axis is ten times smaller."
        ),
    ),
    "symlog": Term(
        "symlog",
        N_("symmetric log scale"),
        N_(
            "An axis that is linear near zero and logarithmic further out, so that initialisation (step 0) and the "
            "late steps fit on one axis."
        ),
    ),
    "sigma": Term(
        "σ",
        N_("sigmoid, or a standard deviation"),
        N_(
            "σ(z) = 1/(1 + e^−z) is the sigmoid function and σ′(z) its slope, at most 1/4. In “σ (normal init)” it "
            "is instead the standard deviation of the initial weights."
        ),
    ),
    "fc": Term(
        "fc1, fc2, …",
        N_("the linear layers"),
        N_(
            "The network's fully connected layers, numbered from the input: fc1 reads the pixels, each next one the "
            "previous layer's output, and the last one gives the 10 class scores."
        ),
    ),
    "norm": Term(
        "‖·‖",
        N_("norm"),
        N_(
            "The L2 norm: the square root of the sum of squares of all entries. ‖∂L/∂W‖ sums up a layer's whole "
            "weight gradient in one number."
        ),
    ),
    "saturated": Term(
        N_("saturated"),
        N_("saturated unit"),
        message(
            "A sigmoid or tanh unit whose slope f′ at its input is below {fraction:.0%} of the function's steepest "
            "slope: a sigmoid output below 0.07 or above 0.93, a tanh output beyond ±0.87. It passes back at most a "
            "quarter of the gradient it could.",
            fraction=SLOPE_FRACTION,
        ),
    ),
    "dead": Term(
        N_("dead"),
        N_("dead unit"),
        N_(
            "A ReLU unit whose input is at most 0 for every probe digit: its output and its slope are 0 there, so no "
            "gradient passes through it and its weights stop learning."
        ),
    ),
    "near-zero slope": Term(
        N_("near-zero slope"),
        N_("near-zero slope"),
        N_(
            "A unit of another activation (Swish, GELU, ELU, leaky ReLU) whose slope is below a quarter of the "
            "function's steepest on every probe digit. Unlike a dead ReLU it still passes back a little gradient."
        ),
    ),
    "update ratio": Term(
        "‖ΔW‖/‖W‖",
        N_("update/weight ratio"),
        N_(
            "How much one training step changes a layer's weights, relative to their size. Around 10⁻³ is a common "
            "rule of thumb: far below it the layer barely learns, far above it the training is unstable."
        ),
    ),
    "epoch": Term(
        N_("epoch"),
        N_("epoch"),
        N_("One pass of the training over every training sample."),
    ),
    "batch": Term(
        N_("batch"),
        N_("batch"),
        N_("The training samples of one step: their average gradient updates the weights once."),
    ),
    "snapshot": Term(
        N_("snapshot"),
        N_("snapshot"),
        N_(
            "At about 30 steps of the training the network is measured on a fixed set of held-out probe digits, "
            "without updating it. The training-step slider moves between these snapshots."
        ),
    ),
    "skip": Term(
        "x + f(x)",
        N_("skip connection"),
        N_(
            "A layer's input added to its output (residual connection): the gradient gets a path around the layer "
            "that does not shrink it."
        ),
    ),
    "batch norm": Term(
        N_("batch norm"),
        N_("batch normalisation"),
        N_(
            "Rescales each unit's input over the batch to mean 0 and standard deviation 1 (then a learned scale and "
            "shift), which keeps a sigmoid in its steep middle part."
        ),
    ),
    # The init names (vg_core.models.INIT_LABELS), in plain words.
    "default": Term(
        "default",
        N_("PyTorch's default init"),
        N_(
            "Weights drawn uniformly from ±1/√fan_in (fan_in: the layer's number of inputs): Glorot and Bengio's "
            "“standard” init. Too small for deep ReLU or sigmoid nets."
        ),
    ),
    "xavier_uniform": Term(
        "xavier_uniform",
        N_("Xavier (Glorot) uniform init"),
        N_(
            "Weights drawn uniformly from ±√(6/(fan_in + fan_out)), so that the signal and the gradient keep their "
            "size through tanh or sigmoid layers (Glorot and Bengio 2010)."
        ),
    ),
    "xavier_normal": Term(
        "xavier_normal",
        N_("Xavier (Glorot) normal init"),
        N_("Weights drawn from a normal distribution with variance 2/(fan_in + fan_out): Xavier's idea, bell-shaped."),
    ),
    "lecun_normal": Term(
        "lecun_normal",
        N_("LeCun normal init"),
        N_(
            "Weights drawn from a normal distribution with variance 1/fan_in. In a ReLU net the signal still halves "
            "its variance at every layer."
        ),
    ),
    "kaiming_uniform": Term(
        "kaiming_uniform",
        N_("Kaiming (He) uniform init"),
        N_("Weights drawn uniformly from ±√(6/fan_in): the variance 2/fan_in that ReLU needs (He et al. 2015)."),
    ),
    "kaiming_normal": Term(
        "kaiming_normal",
        N_("Kaiming (He) normal init"),
        N_(
            "Weights drawn from a normal distribution with variance 2/fan_in, which keeps the signal and the gradient "
            "of a ReLU net at the same scale in every layer (He et al. 2015)."
        ),
    ),
    "orthogonal": Term(
        "orthogonal",
        N_("orthogonal init"),
        N_("A random orthogonal weight matrix: it rotates a vector without changing its length."),
    ),
    "normal": Term(
        "normal",
        N_("normal init with a chosen σ"),
        N_(
            "Weights drawn from a normal distribution with the standard deviation σ set in the sidebar: too small and "
            "the gradient vanishes, too large and it explodes."
        ),
    ),
}


def tooltip(key: str, translator: Translator) -> str:
    """One glossary entry as Markdown: '**∂L/∂W** (weight gradient): How much …'."""
    term = GLOSSARY[key]
    symbol, name = translator.render(term.symbol), translator.render(term.name)
    head = f"**{symbol}**" if symbol == name else f"**{symbol}** ({name})"
    return f"{head}: {translator.render(term.text)}"
