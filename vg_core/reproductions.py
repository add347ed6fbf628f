"""The classic measurements behind the article: each paper's claim, the runs that test it, the numbers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .i18n import N_, Message, Translator, message
from .spec import RunSpec

if TYPE_CHECKING:  # the engine (torch) is imported when a reproduction runs, not to list them (cli.py's help)
    from .results import RunResult
    from .sweep import Sweep

COLLAPSE_DROP = 0.2  # accuracy lost from the shallowest to the deepest net that counts as a collapse
LEARNED_LOSS_DROP = 0.15  # test-loss drop from initialisation that counts as learning
SATURATED_MEAN = 0.1  # a sigmoid layer whose mean output is below this sits near its lower bound
DRIFT = 0.5  # a median that moves by half its initial 15th-85th percentile range over training has drifted
HELD = 0.1  # one that moves by less than a tenth of it has held steady
STEADY_RANGE = (0.8, 1.25)  # a 15th-85th percentile range that ends within ±25 % of its start has held steady
CLIP_NORM = 1.0  # pascanu-rnn's clipping threshold on the gradient's global norm
LEARNED_ACCURACY = 0.3  # test accuracy that counts as learning the digits (chance is 0.1)


@dataclass(frozen=True)
class Finding:
    """One measured number next to what the claim expects of it."""

    label: str  # a msgid (str.format template over `params`): what was measured
    value: float
    expected: str  # a msgid (template over `params`): what the claim expects of the value
    holds: bool
    params: Mapping[str, Any] = field(default_factory=dict)  # the values the two templates name

    @property
    def mark(self) -> str:
        return "✓" if self.holds else "✗"

    def to_dict(self) -> dict[str, Any]:
        """The finding in English with its templates filled in, as the CLI writes it (--json)."""
        label, expected = self.label.format(**self.params), self.expected.format(**self.params)
        return {"label": label, "value": self.value, "expected": expected, "holds": self.holds}

    @property
    def text(self) -> str:
        """The finding in English, as the CLI prints it."""
        english = self.to_dict()
        return f"{self.mark} {english['label']}: {self.value:.3g} (claim: {english['expected']})"

    def render(self, translate: Translator) -> str:
        """The finding in `translate`'s language, its numbers written for it."""
        found = message(
            "{label}: {value:.3g} (claim: {expected})",
            label=Message(self.label, self.params),
            value=self.value,
            expected=Message(self.expected, self.params),
        )
        return f"{self.mark} {translate.render(found)}"


@dataclass(frozen=True)
class Reproduction:
    """A paper's claim, the runs (a base spec and per-run overrides) or the sweep that test it, and the check."""

    slug: str
    title: str
    claim: str
    base: RunSpec
    runs: tuple[dict[str, Any], ...] = ()
    depths: tuple[int, ...] = ()  # set for a depth sweep over the runs
    measure: Callable[[list[RunResult]], list[Finding]] = field(default=lambda results: [], repr=False)
    sweep_measure: Callable[[pd.DataFrame], list[Finding]] = field(default=lambda table: [], repr=False)
    note: str = ""  # how this setup differs from the paper's

    def specs(self, **overrides: Any) -> list[RunSpec]:
        base = self.base.replace(**overrides)
        return [base.replace(**run) for run in self.runs]

    def sweep(self, **overrides: Any) -> Sweep:
        from .sweep import Sweep  # see the imports above

        base = self.base.replace(**overrides)
        return Sweep(base, self.depths, (base.activation,), (base.init,), tuple(self.runs))


def _by(results: list[RunResult], **match: Any) -> RunResult:
    return next(r for r in results if all(getattr(r.spec, k) == v for k, v in match.items()))


def _ratio(result: RunResult, quantity: str, top: int, bottom: int, step: int | None = None) -> float:
    values = result.stat(quantity, step)
    return float(values[top] / values[bottom])


def _glorot_init(results: list[RunResult]) -> list[Finding]:
    standard, normalised = _by(results, init="default"), _by(results, init="xavier_uniform")
    depth = standard.spec.depth
    grad_std = _ratio(standard, "grad_out_norm", 1, depth, 0)
    grad_xav = _ratio(normalised, "grad_out_norm", 1, depth, 0)
    act_std = _ratio(standard, "act_std", depth, 1, 0)
    act_xav = _ratio(normalised, "act_std", depth, 1, 0)
    return [
        Finding(
            N_("standard init: back-prop gradient fc1 ÷ last hidden"),
            grad_std,
            N_("well below 1 (< 0.2)"),
            grad_std < 0.2,
        ),
        Finding(
            N_("normalised init: back-prop gradient fc1 ÷ last hidden"),
            grad_xav,
            N_("roughly 1 (0.3..3)"),
            0.3 < grad_xav < 3,
        ),
        Finding(
            N_("standard init: activation std last hidden ÷ fc1"),
            act_std,
            N_("shrinks with depth (< 0.2)"),
            act_std < 0.2,
        ),
        Finding(
            N_("normalised init: activation std last hidden ÷ fc1"),
            act_xav,
            N_("roughly 1 (0.3..3)"),
            0.3 < act_xav < 3,
        ),
    ]


def _top_layer_means(result: RunResult) -> pd.Series:
    frame = result.layer_stats
    rows = frame[(frame["quantity"] == "act_mean") & (frame["layer"] == result.spec.depth)]
    return rows.set_index("step")["value"].sort_index()


def _glorot_saturation(results: list[RunResult]) -> list[Finding]:
    result = results[0]
    means = _top_layer_means(result)
    below = means[means < SATURATED_MEAN]
    first_epoch = float(below.index[0] / result.meta["steps_per_epoch"]) if len(below) else float("nan")
    start, end = float(means.iloc[0]), float(means.iloc[-1])
    return [
        Finding(N_("last hidden layer: mean activation at init"), start, N_("about 0.5"), 0.3 < start < 0.7),
        Finding(N_("epoch at which its mean first falls below 0.1"), first_epoch, N_("early"), bool(len(below))),
        Finding(N_("its mean at the end"), end, N_("still near 0 (< 0.15): it leaves saturation slowly"), end < 0.15),
    ]


def _he_init(results: list[RunResult]) -> list[Finding]:
    xavier, kaiming = _by(results, init="lecun_normal"), _by(results, init="kaiming_normal")
    depth = xavier.spec.depth
    decay = _ratio(xavier, "act_std", depth, 1, 0) ** (1 / (depth - 1))
    flat = _ratio(kaiming, "act_std", depth, 1, 0)
    findings = [
        Finding(
            N_("std √(1/n): activation std shrink per layer"),
            decay,
            N_("about 1/√2 = 0.71 (0.6..0.8)"),
            0.6 < decay < 0.8,
        ),
        Finding(N_("std √(2/n): activation std last ÷ first hidden"), flat, N_("flat (0.3..3)"), 0.3 < flat < 3),
    ]
    if xavier.spec.epochs > 0:
        drop_x, drop_k = _loss_drop(xavier), _loss_drop(kaiming)
        findings += [
            Finding(N_("std √(1/n): test loss drop from init"), drop_x, N_("stalls (< 0.05)"), drop_x < 0.05),
            Finding(
                N_("std √(2/n): test loss drop from init"),
                drop_k,
                N_("learns (> {limit})"),
                drop_k > LEARNED_LOSS_DROP,
                {"limit": LEARNED_LOSS_DROP},
            ),
        ]
    return findings


def _loss_drop(result: RunResult) -> float:
    losses = result.history["test_loss"]
    return float(losses.iloc[0] - losses.iloc[-1])


def last_hidden_percentiles(result: RunResult) -> pd.DataFrame:
    """The last hidden layer's pre-activation percentiles per snapshot step (columns pre_act_p15, _p50, _p85)."""
    frame = result.layer_stats
    rows = frame[(frame["layer"] == result.spec.depth) & frame["quantity"].str.startswith("pre_act_p")]
    return rows.pivot_table(index="step", columns="quantity", values="value").sort_index()


def percentile_drift(result: RunResult) -> tuple[float, float]:
    """(how far the median moved over training, end ÷ start of the 15th-85th range), both against the range at
    the first snapshot: the numbers behind Ioffe & Szegedy's figure 1(b, c)."""
    table = last_hidden_percentiles(result)
    spread = table["pre_act_p85"] - table["pre_act_p15"]
    median = table["pre_act_p50"]
    return float((median.max() - median.min()) / spread.iloc[0]), float(spread.iloc[-1] / spread.iloc[0])


def _ioffe_bn(results: list[RunResult]) -> list[Finding]:
    plain, normed = _by(results, norm="none"), _by(results, norm="batch")
    layer = plain.layer_name(plain.spec.depth)
    moved_plain, spread_plain = percentile_drift(plain)
    moved_bn, spread_bn = percentile_drift(normed)
    low, high = STEADY_RANGE
    named = {"layer": layer, "drift": DRIFT, "held": HELD, "low": low, "high": high}
    findings = [
        Finding(
            N_("no batch norm: {layer}'s median sigmoid input, how far it moved ÷ its initial 15th–85th range"),
            moved_plain,
            N_("drifts (> {drift})"),
            moved_plain > DRIFT,
            named,
        ),
        Finding(
            N_("batch norm: {layer}'s median sigmoid input, the same"),
            moved_bn,
            N_("holds (< {held})"),
            moved_bn < HELD,
            named,
        ),
        Finding(
            N_("no batch norm: {layer}'s 15th–85th range, end ÷ start"),
            spread_plain,
            N_("changes (outside {low}..{high})"),
            not low <= spread_plain <= high,
            named,
        ),
        Finding(
            N_("batch norm: {layer}'s 15th–85th range, end ÷ start"),
            spread_bn,
            N_("holds ({low}..{high})"),
            low <= spread_bn <= high,
            named,
        ),
    ]
    if plain.spec.epochs > 0:
        first = float(normed.history["test_acc"].iloc[1] - plain.history["test_acc"].iloc[1])
        last = float(normed.history["test_acc"].iloc[-1] - plain.history["test_acc"].iloc[-1])
        findings += [
            Finding(
                N_("test accuracy after epoch 1, batch norm minus none"), first, N_("above 0: learns faster"), first > 0
            ),
            Finding(N_("test accuracy at the end, batch norm minus none"), last, N_("above 0: ends higher"), last > 0),
        ]
    return findings


def _swish_depth(table: pd.DataFrame) -> list[Finding]:
    deepest = table["depth"].max()
    at = table[table["depth"] == deepest].set_index("activation")["test_acc"]
    shallow = table[table["depth"] == table["depth"].min()].set_index("activation")["test_acc"]
    relu, swish = float(at.get("relu", np.nan)), float(at.get("swish", np.nan))
    collapse = float(shallow.get("relu", np.nan)) - COLLAPSE_DROP
    at_depth = {"depth": int(deepest), "limit": collapse}
    return [
        Finding(
            N_("ReLU test accuracy at depth {depth}"), relu, N_("collapses (< {limit:.2f})"), relu < collapse, at_depth
        ),
        Finding(
            N_("Swish test accuracy at depth {depth}"),
            swish,
            N_("keeps training (> ReLU + 0.1)"),
            swish > relu + 0.1,
            at_depth,
        ),
    ]


def _he_resnet(table: pd.DataFrame) -> list[Finding]:
    plain, skip = (table[table["residual"] == flag].set_index("depth") for flag in (False, True))
    shallow, deep = int(table["depth"].min()), int(table["depth"].max())
    degrade = float(plain.loc[deep, "train_loss"] - plain.loc[shallow, "train_loss"])
    gap = float(plain.loc[deep, "train_loss"] - skip.loc[deep, "train_loss"])
    at_init = float(skip.loc[deep, "grad_first_init"] / plain.loc[deep, "grad_first_init"])
    trained = float(skip.loc[deep, "grad_first_final"] / plain.loc[deep, "grad_first_final"])
    depths = {"deep": deep, "shallow": shallow}
    return [
        Finding(
            N_("plain: training loss at depth {deep} minus depth {shallow}"),
            degrade,
            N_("above 0: degrades"),
            degrade > 0,
            depths,
        ),
        Finding(
            N_("training loss at depth {deep}: plain minus residual"),
            gap,
            N_("above 0: skips train better"),
            gap > 0,
            depths,
        ),
        Finding(
            N_("conv1 weight gradient at depth {deep}, residual ÷ plain, at init"),
            at_init,
            N_("far above 1 (> 10)"),
            at_init > 10,
            depths,
        ),
        Finding(N_("the same after training"), trained, N_("above 1"), trained > 1),
    ]


def _time_ratio(result: RunResult, step: int | None = None) -> float:
    """‖∂L/∂h_1‖ ÷ ‖∂L/∂h_T‖ of the first recurrent layer: how much of the loss's gradient reaches t = 1."""
    norms = result.hidden_grad_norms(step)[1]
    return float(norms[0] / norms[-1])


def _pascanu_rnn(results: list[RunResult]) -> list[Finding]:
    below, at, above = (_by(results, recurrent_gain=gain, clip_norm=0.0) for gain in (0.9, 1.0, 1.5))
    clipped = _by(results, recurrent_gain=1.5, clip_norm=CLIP_NORM)
    ratios = [_time_ratio(result, 0) for result in (below, at, above)]
    findings = [
        Finding(N_("gain 0.9 at init: ‖∂L/∂h_1‖ ÷ ‖∂L/∂h_T‖"), ratios[0], N_("vanishes (< 1e-3)"), ratios[0] < 1e-3),
        Finding(N_("gain 1.0 at init: the same"), ratios[1], N_("between the two"), ratios[0] < ratios[1] < ratios[2]),
        Finding(N_("gain 1.5 at init: the same"), ratios[2], N_("explodes (> 1e3)"), ratios[2] > 1e3),
    ]
    if above.spec.epochs > 0:
        drop, drop_clipped = _loss_drop(above), _loss_drop(clipped)
        findings += [
            Finding(
                N_("gain 1.5 clipped at {clip:g}: test loss drop from init"),
                drop_clipped,
                N_("trainable (> {limit})"),
                drop_clipped > LEARNED_LOSS_DROP,
                {"clip": CLIP_NORM, "limit": LEARNED_LOSS_DROP},
            ),
            Finding(
                N_("the same, clipped minus unclipped"),
                drop_clipped - drop,
                N_("above 0: clipping helps"),
                drop_clipped > drop,
            ),
        ]
    return findings


def _lstm_memory(results: list[RunResult]) -> list[Finding]:
    lstm, rnn = _by(results, model="lstm"), _by(results, model="rnn")
    kept, lost = _time_ratio(lstm, 0), _time_ratio(rnn, 0)
    findings = [
        Finding(N_("LSTM at init: ‖∂L/∂h_1‖ ÷ ‖∂L/∂h_T‖"), kept, N_("usable (0.1..10)"), 0.1 <= kept <= 10),
        Finding(N_("tanh RNN at init: the same"), lost, N_("vanishes (< 1e-3)"), lost < 1e-3),
    ]
    if lstm.spec.epochs > 0:
        acc_lstm, acc_rnn = final_accuracy(lstm), final_accuracy(rnn)
        findings += [
            Finding(
                N_("LSTM: test accuracy"),
                acc_lstm,
                N_("learns (> {limit})"),
                acc_lstm > LEARNED_ACCURACY,
                {"limit": LEARNED_ACCURACY},
            ),
            Finding(
                N_("tanh RNN: test accuracy"), acc_rnn, N_("far below the LSTM's (by > 0.1)"), acc_rnn < acc_lstm - 0.1
            ),
        ]
    return findings


def final_accuracy(result: RunResult) -> float:
    return float(result.history["test_acc"].iloc[-1])


REPRODUCTIONS = (
    Reproduction(
        slug="glorot-init",
        title=N_("Glorot & Bengio 2010, figures 6 and 7"),
        claim=N_(
            "tanh 5×1000 at initialisation: with the standard init U[±1/√n] the back-propagated gradients shrink "
            "toward the input and the activation spread shrinks with depth; with the normalised (Xavier) init "
            "both stay roughly constant across layers."
        ),
        base=RunSpec(dataset="mnist", activation="tanh", depth=5, width=1000, epochs=0),
        runs=({"init": "default"}, {"init": "xavier_uniform"}),
        measure=_glorot_init,
        note=N_("PyTorch's default init is the standard one but also draws the biases from U[±1/√n]; Glorot's were 0."),
    ),
    Reproduction(
        slug="glorot-saturation",
        title=N_("Glorot & Bengio 2010, figure 2"),
        claim=N_(
            "sigmoid 5×1000: the last hidden layer is driven into saturation near 0 early in training "
            "and leaves it only slowly."
        ),
        base=RunSpec(
            dataset="mnist", activation="sigmoid", depth=5, width=1000, lr=0.1, momentum=0.0, batch_size=10, epochs=3
        ),
        runs=({},),
        measure=_glorot_saturation,
        note=N_("Plain SGD, batch 10 as in the paper; 3 epochs of MNIST, not the paper's 100+ epochs of Shapeset."),
    ),
    Reproduction(
        slug="he-init",
        title=N_("He et al. 2015, figure 3"),
        claim=N_(
            "30-layer ReLU net: with std √(1/n) the forward activation std decays by about √2 per layer and the "
            "net stalls; with std √(2/n) (Kaiming) it stays flat and the net learns."
        ),
        base=RunSpec(dataset="mnist", activation="relu", depth=30, width=512, epochs=3),
        runs=({"init": "lecun_normal"}, {"init": "kaiming_normal"}),
        measure=_he_init,
        note=N_("The paper's net is a 30-layer convnet on ImageNet; ours is a 30×512 MLP on MNIST."),
    ),
    Reproduction(
        slug="swish-depth",
        title=N_("Ramachandran et al. 2017 (Swish, arXiv v1)"),
        claim=N_(
            "fully connected 512-unit nets on MNIST, depth up to 50: ReLU's accuracy collapses at the largest "
            "depths while Swish keeps training."
        ),
        base=RunSpec(dataset="mnist", n_train=10_000, width=512, epochs=1, init="kaiming_normal"),
        runs=({"activation": "relu"}, {"activation": "swish"}),
        depths=(2, 5, 10, 20, 30, 40, 50),
        sweep_measure=_swish_depth,
        note=N_("One epoch of 10,000 samples per point to fit a CPU budget; the paper trained to convergence."),
    ),
    Reproduction(
        slug="he-resnet",
        title=N_("He et al. 2016, figures 1 and 6"),
        claim=N_(
            "plain conv nets train worse as they get deeper, while the same nets with identity skips do not; "
            "the skips carry the gradient back to the first layer."
        ),
        base=RunSpec(
            model="cnn",
            dataset="mnist-sample",
            n_train=2000,
            activation="relu",
            depth=9,  # the page's runs are the middle points of the sweep
            width=8,
            epochs=2,
            batch_size=32,
            lr=0.02,
            probe_size=128,
        ),
        runs=({"residual": False}, {"residual": True}),
        depths=(3, 9, 18),
        sweep_measure=_he_resnet,
        note=N_(
            "3x3 conv nets of 8 channels, PyTorch's default init and no batch norm, on 2,000 real digits for 2 "
            "epochs (a CPU budget); the paper's are ImageNet and CIFAR-10 ResNets of 18 to 110 layers with batch norm, "
            "trained to convergence."
        ),
    ),
    Reproduction(
        slug="ioffe-bn",
        title=N_("Ioffe & Szegedy 2015, figure 1"),
        claim=N_(
            "a 3-layer sigmoid net of 100 units per layer on MNIST: with batch normalisation the test accuracy "
            "rises faster, and the 15th, 50th and 85th percentiles of a last-hidden-layer sigmoid's input hold "
            "steady over training, while without it they drift."
        ),
        base=RunSpec(
            dataset="mnist", activation="sigmoid", depth=3, width=100, batch_size=60, lr=0.1, momentum=0.9, epochs=10
        ),
        runs=({"norm": "none"}, {"norm": "batch"}),
        measure=_ioffe_bn,
        note=N_(
            "10 epochs of batch 60 (670 steps on the 4,000 offline digits, 10,000 on full MNIST), not the paper's "
            "50,000 steps; SGD 0.1 with momentum 0.9 and PyTorch's default init (the paper gives neither its optimiser "
            "nor its Gaussian's scale); the percentiles pool all 100 units of the last hidden layer on the 256 probe "
            "digits, where the paper follows one typical sigmoid."
        ),
    ),
    Reproduction(
        slug="pascanu-rnn",
        title=N_("Pascanu, Mikolov & Bengio 2013"),
        claim=N_(
            "a tanh RNN reading the digit in 196 steps, recurrent matrix orthogonal with gain 0.9, 1.0 and 1.5: at "
            "initialisation the gradient reaching the first step vanishes below gain 1 and explodes above it; "
            "clipping the gradient's norm keeps the exploding net trainable."
        ),
        base=RunSpec(
            model="rnn",
            dataset="mnist-sample",
            n_train=2000,
            activation="tanh",
            depth=1,
            width=64,
            seq_len=196,
            recurrent_init="orthogonal",
            optimizer="adam",
            lr=1e-3,
            batch_size=32,
            epochs=2,
        ),
        runs=(
            {"recurrent_gain": 0.9},
            {"recurrent_gain": 1.0},
            {"recurrent_gain": 1.5},
            {"recurrent_gain": 1.5, "clip_norm": CLIP_NORM},
        ),
        measure=_pascanu_rnn,
        note=N_(
            "Sequential MNIST at 4 pixels a step on 2,000 real digits for 2 epochs of Adam (a CPU budget); the "
            "paper's tasks are synthetic long-memory problems and character-level text, trained with SGD for far "
            "longer."
        ),
    ),
    Reproduction(
        slug="lstm-memory",
        title=N_("Hochreiter & Schmidhuber 1997; Gers et al. 2000"),
        claim=N_(
            "over 196 time steps an LSTM with forget-gate bias 3 keeps a usable gradient at t = 1 and learns the "
            "digits, while a tanh RNN's gradient vanishes and it does not."
        ),
        base=RunSpec(
            model="rnn",
            dataset="mnist-sample",
            activation="tanh",
            depth=1,
            width=64,
            seq_len=196,
            optimizer="adam",
            lr=1e-3,
            batch_size=32,
            epochs=2,
        ),
        runs=({"model": "lstm", "forget_bias": 3.0}, {"model": "rnn"}),
        measure=_lstm_memory,
        note=N_(
            "Sequential MNIST at 4 pixels a step, 4,000 real digits for 2 epochs of Adam (a CPU budget); the papers' "
            "tasks are synthetic long-time-lag problems. The last 28 of the 196 steps read blank image rows."
        ),
    ),
)


def find(slug: str) -> Reproduction:
    for reproduction in REPRODUCTIONS:
        if reproduction.slug == slug:
            return reproduction
    raise KeyError(slug)
