"""What a run shows, in numbers and words: the per-layer table, the verdict, the CLI's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .results import RunResult, json_safe
from .train import DIVERGED_LOSS_FACTOR

VANISHING_RATIO = 0.1  # first/last-hidden gradient-norm ratio below this reads as vanishing
EXPLODING_RATIO = 10.0
SATURATED_ALARM = 0.5  # a layer with more than half its units saturated or dead is flagged


@dataclass(frozen=True)
class Verdict:
    """One line about a run, and how alarming it is: 'ok', 'warning' or 'error'."""

    text: str
    level: str


def layer_table(result: RunResult) -> pd.DataFrame:
    """Per linear layer: weight-gradient norm at init and at the end, ratio to the last hidden layer,
    final activation std and saturated/dead fraction."""
    steps = result.snapshot_steps
    first, last = steps[0], steps[-1]
    init, final = result.stat("weight_grad_norm", first), result.stat("weight_grad_norm", last)
    table = pd.DataFrame({"weight_grad_norm_init": init, "weight_grad_norm_final": final})
    last_hidden = result.spec.depth  # fc{depth} is the last hidden layer; fc{depth+1} the output
    table["ratio_to_last_hidden_init"] = init / init.get(last_hidden, np.nan)
    table["ratio_to_last_hidden_final"] = final / final.get(last_hidden, np.nan)
    table["act_std_final"] = result.stat("act_std", last)
    table["saturated_or_dead_final"] = result.stat("saturated_or_dead", last)
    table.index.name = "layer"
    table = table.reset_index()
    table.insert(1, "name", [f"fc{layer}" for layer in table["layer"]])
    return table


def gradient_ratio(result: RunResult, step: int | None = None) -> float:
    """First layer's weight-gradient norm over the last hidden layer's at `step` (default: last snapshot)."""
    norms = result.stat("weight_grad_norm", step)
    return float(norms.get(1, np.nan) / norms.get(result.spec.depth, np.nan))


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
    if result.spec.depth > 1 and np.isfinite(ratio) and ratio > 0:
        if ratio < VANISHING_RATIO:
            found.append(
                Verdict(
                    f"Vanishing: at initialisation fc1's weight gradients are 1/{1 / ratio:,.0f} of the last hidden "
                    "layer's.",
                    "warning",
                )
            )
        elif ratio > EXPLODING_RATIO:
            found.append(
                Verdict(
                    f"Exploding: at initialisation fc1's weight gradients are {ratio:,.0f}× the last hidden layer's.",
                    "warning",
                )
            )
        else:
            found.append(
                Verdict(
                    f"Healthy flow: fc1's weight gradients are {ratio:.2g}× the last hidden layer's at initialisation.",
                    "ok",
                )
            )
    stuck = result.stat("saturated_or_dead")
    if len(stuck) and stuck.max() > SATURATED_ALARM:
        word = "saturated" if result.spec.activation in ("sigmoid", "tanh") else "dead"
        found.append(Verdict(f"{stuck.max():.0%} of fc{int(stuck.idxmax())}'s units are {word}.", "warning"))
    metrics = final_metrics(result)
    if metrics["test_acc"] is not None and result.spec.epochs > 0 and result.diverged_at_step is None:
        level = "ok" if metrics["test_acc"] > 0.5 else "warning"
        found.append(Verdict(f"Final test accuracy {metrics['test_acc']:.1%}.", level))
    return found


def summary_dict(result: RunResult, cached: bool) -> dict[str, Any]:
    """The CLI's --json object: strict JSON (NaN and inf become null)."""
    dataset = result.meta["dataset"]
    payload = {
        "spec": result.spec.to_dict(),
        "key": result.spec.key(),
        "cached": cached,
        "status": result.meta["status"],
        "device": result.meta["device"],
        "dataset": {k: dataset[k] for k in ("name", "source", "n_train", "n_test", "notice")},
        "diverged_at_step": result.diverged_at_step,
        "final": final_metrics(result),
        "gradient_ratio_init": gradient_ratio(result, result.snapshot_steps[0]),
        "gradient_ratio_final": gradient_ratio(result),
        "verdicts": [v.text for v in verdicts(result)],
        "layers": layer_table(result).to_dict(orient="records"),
    }
    return json_safe(payload)
