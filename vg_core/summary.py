"""What a run shows, in numbers and words: the per-layer table, the verdicts, the CLI's JSON.

A verdict is a key, a level and a Message (vg_core.i18n: a msgid and its numbers), never a finished sentence:
the page renders it in its language, the CLI in English. Every verdict is computed at one snapshot step (the
page's chosen step; default the last) from one gradient kind (the one the page shows: ∂L/∂W or ∂L/∂z), and
names both. The rules, with the thresholds of `Rules`:

- divergence: the run's recorded divergence (the loss NaN, infinite or far above its start), at its step;
- gradient flow: NaN/inf gradients, or none at all in the first layer, are errors; a first-layer gradient
  norm below `tiny_norm` is vanishing and a layer's above `huge_norm` exploding, whatever the ratio; else the
  first layer's norm ÷ the last layer's before the head reads as vanishing, shrinking, reaching the input or exploding;
- through time (recurrent nets): the first recurrent layer's ‖∂L/∂h_1‖ ÷ ‖∂L/∂h_T‖ (the gradient reaching the
  first time step against the last's) reads as vanishing, exploding or reaching the first step, with the
  flow's ratio thresholds;
- stuck units: the layer with the largest saturated/dead share (by slope, see probes.quantities), above
  `stuck_alarm`; a ReLU layer dead on at least `all_stuck` of its units has died;
- the learning curve, from the test evaluations up to the step (none at step 0: a 0-epoch run gets only
  statements about its initialisation): stalled at chance, still learning, or levelled off;
- a run that diverged, stalled at chance or died gets no ✔: its 'ok' statements become 'info'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .i18n import ENGLISH, N_, Message, Translator, message
from .models import CLASSES
from .probes import SLOPE_FRACTION, stuck_word
from .results import RunResult, json_safe
from .train import DIVERGED_LOSS_FACTOR

GRAD_KINDS = {"weight_grad": "∂L/∂W", "grad_out": "∂L/∂z"}  # the gradients a verdict can be about: their symbol
LEVELS = ("ok", "info", "warning", "error")


@dataclass(frozen=True)
class Rules:
    """The thresholds of the verdicts (README "What is measured" states them in words)."""

    vanishing_ratio: float = 0.1  # first ÷ last-before-head gradient norm below this: vanishing toward the input
    shrinking_ratio: float = 0.3  # below this: shrinking; up to exploding_ratio the gradient reaches the input
    # above this: exploding toward the input. fc1's 784 inputs lift its ∂L/∂W norm over a narrow hidden layer's by
    # up to ~10x (measured: tanh 2x16 11x, ReLU 5x128 3x), so only two orders of magnitude count
    exploding_ratio: float = 100.0
    tiny_norm: float = 1e-4  # a first-layer gradient norm below this vanishes whatever the ratio (healthy: 1e-3 to 10)
    huge_norm: float = 1e3  # a layer's gradient norm above this explodes whatever the ratio
    stuck_alarm: float = 0.5  # a layer with more than this share of saturated/dead units is flagged
    all_stuck: float = 0.99  # a ReLU layer with at least this share dead has died: no gradient passes it
    chance_margin: float = 0.05  # stalled at chance: test accuracy below 1/classes + this ...
    chance_loss: float = 0.95  # ... and a test loss still at least this share of chance's ln(classes)
    rising_loss: float = 0.01  # still learning: the test loss fell by at least this share since the evaluation before
    low_accuracy: float = 0.5  # levelled off below this test accuracy: a warning


RULES = Rules()
STUCK_MESSAGES = {  # per stuck word (probes.stuck_word, or a watched run's mix): the key and the sentence
    "saturated": (
        "stuck.saturated",
        N_(
            "{share:.0%} of {layer}'s units are saturated at step {step:,d}: their slope is below {fraction:.0%} "
            "of the activation's largest."
        ),
    ),
    "dead": (
        "stuck.dead",
        N_(
            "{share:.0%} of {layer}'s units are dead at step {step:,d}: their slope is below {fraction:.0%} "
            "of the activation's largest on every probe sample."
        ),
    ),
    "near-zero slope": (
        "stuck.near_zero_slope",
        N_(
            "{share:.0%} of {layer}'s units have a near-zero slope at step {step:,d}: below {fraction:.0%} "
            "of the activation's largest on every probe sample."
        ),
    ),
    "saturated or near-zero slope": (
        "stuck.mixed",
        N_(
            "{share:.0%} of {layer}'s units are saturated or have a near-zero slope at step {step:,d}: their slope "
            "is below {fraction:.0%} of the activation's largest."
        ),
    ),
}


@dataclass(frozen=True)
class Verdict:
    """One statement about a run: what it says (`key`, e.g. 'flow.vanishing'), how alarming it is (one of
    LEVELS) and its Message (a msgid and the numbers it names, `values`)."""

    key: str
    level: str
    message: Message

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.message.params)

    def render(self, translate: Translator = ENGLISH) -> str:
        return translate.render(self.message)

    @property
    def text(self) -> str:
        """The English sentence (the CLI's)."""
        return self.render()

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON form: key, level, English text and the values it names."""
        return {"key": self.key, "level": self.level, "text": self.text, "values": self.values}


def last_before_head(result: RunResult) -> int:
    """The number of the last layer before the head (the head is the last layer of every family)."""
    return len(result.layer_names) - 1


def nearest_step(steps: Sequence[int], wanted: int | None) -> int | None:
    """The latest of `steps` at or before `wanted` (the first if none is); None without steps or a wish."""
    if not steps or wanted is None:
        return None
    earlier = [step for step in steps if step <= wanted]
    return earlier[-1] if earlier else steps[0]


def layer_table(result: RunResult) -> pd.DataFrame:
    """Per layer: weight-gradient norm at init and at the end, ratio to the last layer before the head,
    final activation std and saturated/dead fraction."""
    steps = result.snapshot_steps
    first, last = steps[0], steps[-1]
    init, final = result.stat("weight_grad_norm", first), result.stat("weight_grad_norm", last)
    table = pd.DataFrame({"weight_grad_norm_init": init, "weight_grad_norm_final": final})
    last_hidden = last_before_head(result)
    table["ratio_to_last_hidden_init"] = init / init.get(last_hidden, np.nan)
    table["ratio_to_last_hidden_final"] = final / final.get(last_hidden, np.nan)
    table["act_std_final"] = result.stat("act_std", last)
    table["saturated_or_dead_final"] = result.stat("saturated_or_dead", last)
    table.index.name = "layer"
    table = table.reset_index()
    table.insert(1, "name", [result.layer_name(layer) for layer in table["layer"]])
    return table


def gradient_ratio(result: RunResult, step: int | None = None, kind: str = "weight_grad") -> float:
    """First layer's gradient norm over the last one's before the head at `step` (default: last snapshot)."""
    norms = result.stat(f"{kind}_norm", step)
    return float(norms.get(1, np.nan) / norms.get(last_before_head(result), np.nan))


def final_metrics(result: RunResult) -> dict[str, float | None]:
    if result.history.empty:
        return {"train_loss": None, "train_acc": None, "test_loss": None, "test_acc": None}
    row = result.history.iloc[-1]
    return {name: float(row[name]) for name in ("train_loss", "train_acc", "test_loss", "test_acc")}


def verdicts(result: RunResult, grad_kind: str = "weight_grad", step: int | None = None) -> list[Verdict]:
    """What the evidence says at `step` (the snapshot at or before it; default the last) about the gradients of
    `grad_kind` (weight_grad or grad_out), the most important first. The rules: the module docstring."""
    if grad_kind not in GRAD_KINDS:
        raise ValueError(f"grad_kind {grad_kind!r} is not one of {', '.join(GRAD_KINDS)}")
    snapshots = result.snapshot_steps
    at = nearest_step(snapshots, step) if step is not None else (snapshots[-1] if snapshots else None)
    found = [_diverged(result)]
    if at is not None:
        found += [_flow(result, grad_kind, at), _through_time(result, at), _stuck(result, at)]
    found.append(_learning(result, step))
    found = [verdict for verdict in found if verdict is not None]
    failed = any(v.level == "error" or v.key == "learning.stalled" for v in found)
    return [Verdict(v.key, "info", v.message) if failed and v.level == "ok" else v for v in found]


def _diverged(result: RunResult) -> Verdict | None:
    if result.diverged_at_step is None:
        return None
    text = N_("Diverged at step {step:,d}: the loss became NaN, infinite or more than {factor:g}× its starting value.")
    return Verdict("diverged", "error", message(text, step=int(result.diverged_at_step), factor=DIVERGED_LOSS_FACTOR))


def _flow(result: RunResult, kind: str, step: int) -> Verdict | None:
    """The gradient flow at `step`: finite at all, its absolute size, then the first ÷ last-before-head ratio."""
    norms = result.stat(f"{kind}_norm", step)
    bad = result.stat(f"{kind}_nan", step).sum() + result.stat(f"{kind}_inf", step).sum()
    shown = {"quantity": GRAD_KINDS[kind], "step": int(step)}
    if bad > 0 or not np.isfinite(norms).all():
        text = N_("{quantity} at step {step:,d} holds NaN or infinite values: its numbers no longer mean anything.")
        return Verdict("flow.not_finite", "error", message(text, **shown))
    first, last = 1, last_before_head(result)
    if first not in norms.index:
        return None
    top, name = float(norms[first]), result.layer_name(first)
    if top == 0:
        text = N_("{quantity} at step {step:,d}: {first} gets no gradient at all (norm 0), so it cannot learn.")
        return Verdict("flow.zero", "error", message(text, first=name, **shown))
    if top < RULES.tiny_norm:
        text = N_(
            "Vanishing: at step {step:,d} {first}'s {quantity} norm is {norm:.1e}, below {limit:.0e}: "
            "too small to move its weights."
        )
        return Verdict(
            "flow.vanishing_size", "warning", message(text, first=name, norm=top, limit=RULES.tiny_norm, **shown)
        )
    if norms.max() > RULES.huge_norm:
        peak = int(norms.idxmax())
        text = N_("Exploding: at step {step:,d} {layer}'s {quantity} norm is {norm:.1e}, above {limit:.0e}.")
        values = {"layer": result.layer_name(peak), "norm": float(norms[peak]), "limit": RULES.huge_norm}
        return Verdict("flow.exploding_size", "warning", message(text, **values, **shown))
    if last <= first or last not in norms.index or norms[last] == 0:
        return None
    values = {"first": name, "last": result.layer_name(last), "ratio": top / float(norms[last]), **shown}
    ratio = values["ratio"]
    if ratio < RULES.vanishing_ratio:
        text = N_("Vanishing toward the input: at step {step:,d} {first}'s {quantity} norm is {ratio:.2g}× {last}'s.")
        return Verdict("flow.vanishing", "warning", message(text, **values))
    if ratio < RULES.shrinking_ratio:
        text = N_("Shrinking toward the input: at step {step:,d} {first}'s {quantity} norm is {ratio:.2g}× {last}'s.")
        return Verdict("flow.shrinking", "warning", message(text, **values))
    if ratio > RULES.exploding_ratio:
        text = N_("Exploding toward the input: at step {step:,d} {first}'s {quantity} norm is {ratio:,.0f}× {last}'s.")
        return Verdict("flow.exploding", "warning", message(text, **values))
    text = N_("Gradient reaches the input: at step {step:,d} {first}'s {quantity} norm is {ratio:.2g}× {last}'s.")
    return Verdict("flow.even", "ok", message(text, **values))


def _through_time(result: RunResult, step: int) -> Verdict | None:
    """A recurrent net at `step`: how much of the gradient at the last time step reaches the first one."""
    norms = result.hidden_grad_norms(step).get(1)
    if not norms or len(norms) < 2 or not (np.isfinite(norms[-1]) and norms[-1] > 0):
        return None
    ratio, first = norms[0] / norms[-1], norms[0]
    values = {"layer": result.layer_name(1), "step": int(step), "ratio": ratio, "steps": len(norms)}
    if not np.isfinite(first):
        return None  # the flow verdict already says NaN/inf
    if ratio < RULES.vanishing_ratio:
        text = N_(
            "Vanishing through time: at step {step:,d} {layer}'s ‖∂L/∂h₁‖ is {ratio:.1e}× its ‖∂L/∂h_T‖ "
            "(T = {steps:d}): the first time steps barely learn."
        )
        return Verdict("time.vanishing", "warning", message(text, **values))
    if ratio > RULES.exploding_ratio:
        text = N_(
            "Exploding through time: at step {step:,d} {layer}'s ‖∂L/∂h₁‖ is {ratio:.1e}× its ‖∂L/∂h_T‖ "
            "(T = {steps:d})."
        )
        return Verdict("time.exploding", "warning", message(text, **values))
    text = N_(
        "The gradient reaches the first time step: at step {step:,d} {layer}'s ‖∂L/∂h₁‖ is {ratio:.2g}× its "
        "‖∂L/∂h_T‖ (T = {steps:d})."
    )
    return Verdict("time.even", "ok", message(text, **values))


def _stuck(result: RunResult, step: int) -> Verdict | None:
    """The layer with the largest saturated/dead share at `step`, when it is above the alarm."""
    share = result.stat("saturated_or_dead", step)
    word = run_stuck_word(result)
    if not len(share) or word is None or not share.max() > RULES.stuck_alarm:
        return None
    layer = int(share.idxmax())
    key, text = STUCK_MESSAGES[word]
    died = word == "dead" and share[layer] >= RULES.all_stuck
    values = {"share": float(share[layer]), "layer": result.layer_name(layer), "step": int(step)}
    return Verdict(key, "error" if died else "warning", message(text, fraction=SLOPE_FRACTION, **values))


def at_chance(accuracy: float) -> bool:
    """A test accuracy no better than guessing (1/classes, within RULES.chance_margin): the one place it is decided."""
    return accuracy < 1 / CLASSES + RULES.chance_margin


def _learning(result: RunResult, step: int | None) -> Verdict | None:
    """The learning curve up to `step` (default: all of it): stalled at chance, still learning, levelled off."""
    history = result.history if step is None else result.history[result.history["step"] <= step]
    diverged = result.diverged_at_step
    if len(history) < 2 or (diverged is not None and diverged <= int(history["step"].iloc[-1])):
        return None
    row, before = history.iloc[-1], history.iloc[-2]
    values = {"step": int(row["step"]), "acc": float(row["test_acc"])}
    if result.meta.get("status") == "running" and len(history) == len(result.history):
        text = N_("Test accuracy so far: {acc:.1%} at step {step:,d}.")
        return Verdict("learning.so_far", "info", message(text, **values))
    chance, chance_loss = 1 / CLASSES, math.log(CLASSES)
    if result.spec is not None and at_chance(row["test_acc"]) and row["test_loss"] >= RULES.chance_loss * chance_loss:
        text = N_(
            "Stalled at chance: at step {step:,d} the test accuracy is {acc:.1%} (chance: {chance:.0%}) and the "
            "test loss {loss:.2f} (chance: {chance_loss:.2f})."
        )
        values.update(chance=chance, loss=float(row["test_loss"]), chance_loss=chance_loss)
        return Verdict("learning.stalled", "warning", message(text, **values))
    values.update(before=float(before["test_acc"]), previous=int(before["step"]))
    if before["test_loss"] - row["test_loss"] >= RULES.rising_loss * before["test_loss"]:
        text = N_(
            "Still learning: test accuracy {acc:.1%} at step {step:,d}, up from {before:.1%} at step {previous:,d}."
        )
        return Verdict("learning.rising", "ok", message(text, **values))
    text = N_("Levelled off: test accuracy {acc:.1%} at step {step:,d}, {before:.1%} at step {previous:,d}.")
    level = "ok" if row["test_acc"] >= RULES.low_accuracy else "warning"
    return Verdict("learning.levelled", level, message(text, **values))


def run_stuck_word(result: RunResult) -> str | None:
    """What a run's stuck units are called (see probes.stuck_word); a watched model mixes activations."""
    if result.spec is None:
        return N_("saturated or near-zero slope")
    return stuck_word(result.spec.activation)


def summary_dict(result: RunResult, cached: bool) -> dict[str, Any]:
    """The CLI's --json object: strict JSON (NaN and inf become null); verdicts about ∂L/∂W at the last snapshot."""
    dataset = result.meta.get("dataset")  # a watched run has none
    payload = {
        "name": result.label,
        "spec": None if result.spec is None else result.spec.to_dict(),
        "key": result.key,
        "cached": cached,
        "status": result.meta["status"],
        "device": result.meta.get("device"),
        "dataset": dataset
        and {
            **{k: dataset[k] for k in ("name", "source", "n_train", "n_test")},
            "notice": " ".join(ENGLISH.render(note) for note in result.data_notes) or None,
        },
        "diverged_at_step": result.diverged_at_step,
        "final": final_metrics(result),
        "gradient_ratio_init": gradient_ratio(result, result.snapshot_steps[0]),
        "gradient_ratio_final": gradient_ratio(result),
        "verdicts": [v.to_dict() for v in verdicts(result)],
        # "layer" names each layer (fc1.., or a watched model's module path); "index" counts from 1 = input side
        "layers": layer_table(result).rename(columns={"layer": "index", "name": "layer"}).to_dict(orient="records"),
    }
    if len(result.time_stats):  # a recurrent net: ‖∂L/∂h_t‖ for t = 1..T per recurrent layer
        init, final = result.hidden_grad_norms(result.snapshot_steps[0]), result.hidden_grad_norms()
        payload["time"] = [
            {"layer": result.layer_name(n), "hidden_grad_norm_init": init[n], "hidden_grad_norm_final": final[n]}
            for n in init
        ]
    return json_safe(payload)
