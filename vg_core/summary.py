"""What a run shows, in numbers and words: the per-layer table, the verdict, the CLI's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .probes import stuck_word
from .results import RunResult, json_safe
from .train import DIVERGED_LOSS_FACTOR

VANISHING_RATIO = 0.1  # first/last-before-head gradient-norm ratio below this reads as vanishing
EXPLODING_RATIO = 10.0
SATURATED_ALARM = 0.5  # a layer with more than half its units saturated or dead is flagged


@dataclass(frozen=True)
class Verdict:
    """One line about a run, and how alarming it is: 'ok', 'warning' or 'error'."""

    text: str
    level: str


def last_before_head(result: RunResult) -> int:
    """The number of the last layer before the head (the head is the last layer of every family)."""
    return len(result.layer_names) - 1


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


def last_hidden_layer(result: RunResult) -> int:
    """The layer before the output layer (fc{depth} of the built-in MLP): the gradient ratio's reference."""
    return len(result.layer_names) - 1


def gradient_ratio(result: RunResult, step: int | None = None) -> float:
    """First layer's weight-gradient norm over the last one's before the head at `step` (default: last snapshot)."""
    norms = result.stat("weight_grad_norm", step)
    return float(norms.get(1, np.nan) / norms.get(last_before_head(result), np.nan))


def final_metrics(result: RunResult) -> dict[str, float | None]:
    if result.history.empty:
        return {"train_loss": None, "train_acc": None, "test_loss": None, "test_acc": None}
    row = result.history.iloc[-1]
    return {name: float(row[name]) for name in ("train_loss", "train_acc", "test_loss", "test_acc")}


def verdicts(result: RunResult) -> list[Verdict]:
    """Plain-words findings computed from the numbers, the most important first."""
    found = []
    if result.diverged_at_step is not None:
        found.append(
            Verdict(
                f"Diverged at step {result.diverged_at_step}: the loss became NaN, infinite or more than "
                f"{DIVERGED_LOSS_FACTOR:g}× its starting value.",
                "error",
            )
        )
    ratio = gradient_ratio(result, result.snapshot_steps[0])
    first, last = result.layer_name(1), result.layer_name(last_before_head(result))
    if last_before_head(result) > 1 and np.isfinite(ratio) and ratio > 0:
        if ratio < VANISHING_RATIO:
            found.append(
                Verdict(
                    f"Vanishing: at initialisation {first}'s weight gradients are 1/{1 / ratio:,.0f} of {last}'s.",
                    "warning",
                )
            )
        elif ratio > EXPLODING_RATIO:
            found.append(
                Verdict(
                    f"Exploding: at initialisation {first}'s weight gradients are {ratio:,.0f}× {last}'s.",
                    "warning",
                )
            )
        else:
            found.append(
                Verdict(
                    f"Healthy flow: {first}'s weight gradients are {ratio:.2g}× {last}'s at initialisation.",
                    "ok",
                )
            )
    stuck = result.stat("saturated_or_dead")
    word = run_stuck_word(result)
    if len(stuck) and stuck.max() > SATURATED_ALARM and word:
        name = result.layer_name(int(stuck.idxmax()))
        verb = "have a" if word == "near-zero slope" else "are"
        found.append(Verdict(f"{stuck.max():.0%} of {name}'s units {verb} {word}.", "warning"))
    metrics = final_metrics(result)
    trained = result.spec is None or result.spec.epochs > 0
    if metrics["test_acc"] is not None and trained and result.diverged_at_step is None:
        level = "ok" if metrics["test_acc"] > 0.5 else "warning"
        found.append(Verdict(f"Final test accuracy {metrics['test_acc']:.1%}.", level))
    return found


def run_stuck_word(result: RunResult) -> str | None:
    """What a run's stuck units are called (see probes.stuck_word); a watched model mixes activations."""
    if result.spec is None:
        return "saturated or near-zero slope"
    return stuck_word(result.spec.activation)


def summary_dict(result: RunResult, cached: bool) -> dict[str, Any]:
    """The CLI's --json object: strict JSON (NaN and inf become null)."""
    dataset = result.meta.get("dataset")  # a watched run has none
    payload = {
        "name": result.label,
        "spec": None if result.spec is None else result.spec.to_dict(),
        "key": result.key,
        "cached": cached,
        "status": result.meta["status"],
        "device": result.meta.get("device"),
        "dataset": dataset and {k: dataset[k] for k in ("name", "source", "n_train", "n_test", "notice")},
        "diverged_at_step": result.diverged_at_step,
        "final": final_metrics(result),
        "gradient_ratio_init": gradient_ratio(result, result.snapshot_steps[0]),
        "gradient_ratio_final": gradient_ratio(result),
        "verdicts": [v.text for v in verdicts(result)],
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
