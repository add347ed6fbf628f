"""The guided tour of the article, as data: its stops, the chain-rule factors it shows, the glossary, and the
navigation logic (no streamlit: the page draws it).

The tour follows "Masalah Gradien Hilang": what the problem is, its causes, the remedies, its effects. Each stop
shows a preset (by key), says two to four plain sentences, points at one chart (shown first, the others folded)
and ends with what was just seen. Every text is an English msgid marked with N_ and translated where it is shown
(vg_core.i18n). A stop whose preset does not exist (yet) is left out of the tour (`stops`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .i18n import N_, Message, message

# The page's chart sections, in page order ("act": activations over training; "percentiles": the last hidden
# layer's input percentiles over training; "sweep": the depth sweep).
VIEWS = ("flow", "curves", "act", "percentiles", "ratio", "grad_dist", "act_dist", "heatmap", "article", "sweep")

# The article's four chapters, in its order.
PARTS = {
    "problem": N_("The problem"),
    "causes": N_("Its causes"),
    "remedies": N_("Remedies"),
    "effects": N_("Its effects"),
}

# ∂L/∂W₁ of a plain net h_k = σ(z_k), z_k = W_k h_{k-1} + b_k (k = 1..D), output z_{D+1}, input x: st.latex.
CHAIN_RULE = (
    r"\frac{\partial L}{\partial W_1} = \Big[\prod_{k=1}^{D} \operatorname{diag}\big(\sigma'(z_k)\big)\, "
    r"W_{k+1}^{\top}\Big]\, \frac{\partial L}{\partial z_{D+1}}\, x^{\top},"
    r"\qquad \sigma'(z) = \sigma(z)\,\big(1 - \sigma(z)\big) \le \tfrac{1}{4}"
)


@dataclass(frozen=True)
class Stop:
    """One screen of the tour."""

    key: str  # stable id
    part: str  # a key of PARTS
    preset: str  # the preset (vg_core.presets.PRESETS key) the stop shows
    title: str  # msgid
    text: str  # msgid: two to four plain sentences
    look: str  # the view (a key of VIEWS) the text points at: shown first
    seen: str  # msgid: one line, what the reader has just seen
    chain_rule: bool = False  # show CHAIN_RULE with the per-layer factors measured on the runs


STOPS = (
    Stop(
        key="chain-rule",
        part="problem",
        preset="activations",
        title=N_("Why the first layers get almost no gradient"),
        text=N_(
            "Backpropagation carries the gradient from the loss back to fc1 by the chain rule: at every layer it is "
            "multiplied by that layer's weights and by the slope of its activation function. The sigmoid's slope "
            "σ′(z) is at most 1/4, so with weights of ordinary size each layer passes back only a fraction of the "
            "gradient it receives. Over many layers these fractions multiply. Beside the formula: the factor each "
            "layer applied in these runs, measured on the probe digits."
        ),
        look="flow",
        seen=N_(
            "In the sigmoid run every layer shrinks the gradient, so fc1's weight gradient is orders of magnitude "
            "smaller than the last hidden layer's; the ReLU and Swish lines stay nearly level."
        ),
        chain_rule=True,
    ),
    Stop(
        key="article",
        part="problem",
        preset="article",
        title=N_("The article's own experiment"),
        text=N_(
            "This is the article's network: five sigmoid layers of 1,000 units, trained on MNIST for 10 epochs. "
            "Its histogram pools every gradient of the network into one picture, as the article's plot does. The "
            "first training takes a while on a CPU; afterwards it comes from the cache."
        ),
        look="article",
        seen=N_(
            "Nearly all of the network's gradients fall in the bins next to zero; which layers they come from, this "
            "view cannot tell, the gradient flow can."
        ),
    ),
    Stop(
        key="activation",
        part="causes",
        preset="activations",
        title=N_("Cause 1: the activation function"),
        text=N_(
            "Sigmoid and tanh flatten out for large inputs: there the output hardly changes, the slope is almost "
            "zero and the unit is saturated. Even at its steepest point, at output 0.5, the sigmoid's slope is only "
            "1/4. In this run the sigmoid units start right there, not saturated at all, and the gradient still "
            "shrinks at every layer; ReLU's slope is exactly 1 for every positive input."
        ),
        look="act_dist",
        seen=N_(
            "A vanishing gradient needs no saturation: sigmoid outputs near 0.5 already pass back at most a quarter "
            "of the gradient per layer."
        ),
    ),
    Stop(
        key="depth",
        part="causes",
        preset="activations",
        title=N_("Cause 2: the depth of the network"),
        text=N_(
            "Each extra layer adds one more factor to the product, so the gradient that reaches fc1 shrinks with "
            "depth. The depth sweep trains every run of this comparison at several depths and plots fc1's gradient "
            "over the last hidden layer's. Its button trains the points that are not in the cache yet."
        ),
        look="sweep",
        seen=N_(
            "The sigmoid net's gradient ratio falls by orders of magnitude as layers are added; with PyTorch's "
            "default init even ReLU's falls once the net is deep enough, which is the next cause."
        ),
    ),
    Stop(
        key="init",
        part="causes",
        preset="init",
        title=N_("Cause 3: weight initialisation"),
        text=N_(
            "The weights multiply the gradient too, so their starting scale matters. The article warns about weights "
            "that start too large; weights that start too small shrink the signal and the gradient at every layer "
            "just the same. In this 20-layer ReLU net PyTorch's default init is too small for ReLU, Xavier's is "
            "closer, and Kaiming's N(0, 2/fan_in) is made for it."
        ),
        look="act",
        seen=N_(
            "With the default init the activations' spread shrinks layer after layer; with Kaiming's it stays "
            "roughly level across all 20 layers."
        ),
    ),
    Stop(
        key="scale",
        part="causes",
        preset="scale",
        title=N_("Too small, right, too large"),
        text=N_(
            "The same 10-layer ReLU net starts from normal weights with three spreads σ. Too small, and every layer "
            "scales the gradient down; too large, and every layer scales it up until the training diverges. Around "
            "√(2/width) the factors stay close to 1."
        ),
        look="flow",
        seen=N_(
            "At initialisation the gradients are tiny in every layer for σ = 0.01, moderate for σ = 0.1 and "
            "enormous for σ = 1, whose training diverges within its first steps."
        ),
    ),
    Stop(
        key="relu-swish",
        part="remedies",
        preset="activations",
        title=N_("Remedy: ReLU or Swish"),
        text=N_(
            "ReLU passes the gradient back unchanged wherever a unit is active, and Swish (x·σ(x)) behaves much the "
            "same while staying smooth. With either activation this 5-layer net learns within a few epochs; the "
            "sigmoid version does not."
        ),
        look="curves",
        seen=N_(
            "Same network, same data: the sigmoid run stays at chance (10%) while ReLU and Swish climb well above it."
        ),
    ),
    Stop(
        key="careful-init",
        part="remedies",
        preset="glorot-init",
        title=N_("Remedy: careful initialisation"),
        text=N_(
            "Glorot and Bengio (2010) scaled each layer's initial weights by its numbers of inputs and outputs, so "
            "that the signal and the gradient keep their size from layer to layer: the Xavier initialisation the "
            "article mentions. This tanh network is shown at initialisation, before any training, with PyTorch's "
            "default init and with Xavier's."
        ),
        look="grad_dist",
        seen=N_(
            "With Xavier's init the back-propagated gradients have about the same size in every layer; with the "
            "default they shrink towards fc1."
        ),
    ),
    Stop(
        key="skip-norm",
        part="remedies",
        preset="rescue",
        title=N_("Remedy: skip connections and batch normalisation"),
        text=N_(
            "A skip connection adds a layer's input to its output (x + f(x)), so the gradient has a path around "
            "every layer that does not shrink it. Batch normalisation rescales each layer's input before the "
            "sigmoid, which keeps the sigmoid in its steep middle part. Both are shown on a 10-layer sigmoid net, "
            "next to the same net without them."
        ),
        look="flow",
        seen=N_(
            "The plain net's gradient falls by many orders of magnitude towards fc1; with skips or batch norm the "
            "line stays nearly level."
        ),
    ),
    Stop(
        key="batch-norm",
        part="remedies",
        preset="ioffe-bn",
        title=N_("Batch normalisation, as Ioffe and Szegedy measured it"),
        text=N_(
            "Ioffe and Szegedy (2015) trained a 3-layer sigmoid net of 100 units per layer on MNIST with and without "
            "batch normalisation, and followed the 15th, 50th and 85th percentiles of a last-layer sigmoid's input "
            "over training. Without batch norm these percentiles drift, so the layers above keep chasing a moving "
            "input; with it they hold steady. The chart shows the same three percentiles of the last hidden layer's "
            "input in each run, all its units pooled on the probe digits."
        ),
        look="percentiles",
        seen=N_(
            "Without batch norm the last hidden layer's input sinks to about −2 and narrows, then spreads out again "
            "once the net starts to learn; with batch norm its median stays near 0, only its spread widens slowly, "
            "and the test accuracy rises far sooner."
        ),
    ),
    Stop(
        key="gating",
        part="remedies",
        preset="rnn-vs-lstm",
        title=N_("Recurrent nets: gates"),
        text=N_(
            "A recurrent net applies the same weights at every time step, so the gradient that reaches the early "
            "steps is a product of as many factors as the sequence is long. The LSTM adds a memory cell that its "
            "gates update by addition, which gives the gradient a path back through time that is not squashed at "
            "every step, much like a skip connection."
        ),
        look="flow",
        seen=N_(
            "The plain recurrent net's gradient fades over the early time steps; the LSTM's reaches much further back."
        ),
    ),
    Stop(
        key="clipping",
        part="remedies",
        preset="pascanu-rnn",
        title=N_("Recurrent nets: gradient clipping"),
        text=N_(
            "Pascanu, Mikolov and Bengio (2013) studied both failures of recurrent nets: gradients that vanish and "
            "gradients that explode. Clipping rescales a gradient whose norm exceeds a threshold before the update, "
            "so one exploding step cannot throw the training off. It does nothing against a vanishing gradient: "
            "that needs gates."
        ),
        look="curves",
        seen=N_(
            "Gain 1.0 learns best. In this short run clipping does not rescue the exploding gain-1.5 net: clipped or "
            "not, it stays near chance (the paper trained far longer; the claim's check says so)."
        ),
    ),
    Stop(
        key="slow",
        part="effects",
        preset="init",
        title=N_("Effect: slow convergence"),
        text=N_(
            "When the first layers receive almost no gradient they barely change, and the whole network learns "
            "slowly or not at all. In this 20-layer ReLU net, the run with PyTorch's default init never leaves "
            "chance in five epochs, Xavier's stays near chance for the first epochs before it starts to learn, and "
            "Kaiming's learns from the first epoch."
        ),
        look="curves",
        seen=N_(
            "The smaller the gradient that reaches the first layers, the later the loss starts to fall; with the "
            "default init it never does."
        ),
    ),
    Stop(
        key="poor-solution",
        part="effects",
        preset="rescue",
        title=N_("Effect: a poorer solution"),
        text=N_(
            "The article also warns that a network with vanishing gradients may settle on a worse solution. With the "
            "same five epochs, the plain 10-layer sigmoid net stays at chance, while the ones with skip connections "
            "and with batch norm learn, batch norm from the first epoch and the skips more slowly. Five epochs cannot "
            "tell a worse final solution from a slower path to the same one: train longer to find out."
        ),
        look="curves",
        seen=N_(
            "Same data, same budget: the nets whose gradient reaches fc1 end far more accurate than the one whose "
            "gradient vanishes."
        ),
    ),
    Stop(
        key="overfitting",
        part="effects",
        preset="activations",
        title=N_("Effect: overfitting? What these runs show"),
        text=N_(
            "The article says vanishing gradients can also lead to overfitting: learning the training data by heart "
            "and failing on new data. Here that would show as a dashed training curve well above the solid test "
            "curve. These runs do not show it: the sigmoid net whose gradient vanishes learns nothing, so its "
            "training and test accuracy stay together at chance, and the nets that learn do as well on the test "
            "digits as on the training ones."
        ),
        look="curves",
        seen=N_(
            "Here a vanishing gradient leads to underfitting, not overfitting: the net fails on the training "
            "digits just as much as on new ones."
        ),
    ),
)


def stops(presets: Collection[str]) -> tuple[Stop, ...]:
    """The tour as shown: the stops whose preset is one of `presets`, in the article's order."""
    return tuple(stop for stop in STOPS if stop.preset in presets)


def sentences(text: str) -> list[str]:
    """A text's sentences (split after '.', '!' or '?' followed by a space and a capital or a digit)."""
    return [part for part in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text.strip()) if part]


# ---------------------------------------------------------------- navigation (1-based stop numbers, as in ?tour=N)


def stop_number(value: object, count: int) -> tuple[int, Message | None]:
    """The stop a `?tour=` value asks for, and a warning when it is not 1..count (then stop 1)."""
    text = str(value).strip()
    if text.isdecimal() and 1 <= int(text) <= count:
        return int(text), None
    shown = text if len(text) <= 20 else text[:19] + "…"
    return 1, message("tour: {value} is not a stop number (1 to {count:d}); showing stop 1.", value=shown, count=count)


def previous_stop(number: int) -> int | None:
    return number - 1 if number > 1 else None


def next_stop(number: int, count: int) -> int | None:
    return number + 1 if number < count else None


def view_order(stop: Stop, views: Sequence[str] = VIEWS) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(shown first, folded below): the stop's chart first, then the page's other views in page order."""
    return (stop.look,), tuple(view for view in views if view != stop.look)


def next_snapshot(steps: Sequence[int], current: int | None) -> int | None:
    """Play: the snapshot after `current` (the first when None or unknown), None after the last."""
    ordered = sorted(steps)
    if not ordered:
        return None
    if current is None or current not in ordered:
        return ordered[0]
    index = ordered.index(current)
    return ordered[index + 1] if index + 1 < len(ordered) else None


# ---------------------------------------------------------------- the chain rule, measured


def layer_factors(grad_out_norm: pd.Series) -> pd.Series:
    """Per hidden layer k: ‖∂L/∂z_k‖ ÷ ‖∂L/∂z_{k+1}‖, the factor by which layer k's step of the chain rule
    (its activation's slope times the next layer's weights) scaled the back-propagated gradient.

    `grad_out_norm` is one value per linear layer (index 1..D+1), as RunResult.stat("grad_out_norm") gives;
    the product of the factors is ‖∂L/∂z_1‖ ÷ ‖∂L/∂z_{D+1}‖.
    """
    norms = grad_out_norm.sort_index().to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # a gradient that underflowed to 0 gives NaN or inf
        factors = norms[:-1] / norms[1:]
    return pd.Series(factors, index=grad_out_norm.sort_index().index[:-1], name="factor")


def factor_messages(factors: pd.Series) -> list[Message]:
    """The factors as the page prints them beside the formula: one 'fc3: ×0.14' per layer, then the product."""
    lines = [
        message("fc{layer:d}: ×{factor:.2g}", layer=int(layer), factor=float(value)) for layer, value in factors.items()
    ]
    lines.append(
        message("all {count:d} layers together: ×{product:.2g}", count=len(factors), product=float(factors.prod()))
    )
    return lines
