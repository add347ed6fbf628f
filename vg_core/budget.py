"""Run budgets: a run's estimated wall time and step count, checked up front against a stated limit.

The cost model, with constants measured on this project's development machine (2-core Xeon, one torch
thread, the page's setting; bench/README.md), is

    seconds = training FLOPs / FLOP_RATE + steps x (STEP_S + STEP_S_PER_LAYER x linear layers)
              + snapshots x (PROBE_S_PER_LAYER x linear layers + PROBE_S_PER_PARAMETER x parameters)
              + (steps x TIME_STEP_S + snapshots x TIME_PROBE_S) x seq_len x recurrent layers   (rnn, lstm, gru)

A recurrent net's time steps run one after another, each a small matrix product: beyond its FLOPs, each
costs a fixed time per training step (TIME_STEP_S), and the through-time probe unrolls every step at every
snapshot (TIME_PROBE_S).

FLOPs count the training passes (spec.spec.flops_per_sample per sample) plus the forward passes of every
evaluation. The estimate is for that machine: a GPU or a faster CPU only finishes sooner.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from .i18n import N_, Message, message, plural_message
from .spec import RunSpec, SpecError
from .train import INIT_TRAIN_EVAL, snapshot_schedule, steps_per_epoch

# Measured with one torch thread on the development machine (see the module docstring).
FLOP_RATE = 7.5e10  # training FLOP/s of a wide MLP (half the 2-thread 150 GFLOP/s of bench/throughput.py)
STEP_S = 1.0e-3  # fixed cost of one optimizer step (1-sample batches of a 2x8 net: 1.0 ms)
STEP_S_PER_LAYER = 2.5e-4  # per linear layer and step (a 100x120 net on 1-sample batches: 25 ms a step)
PROBE_S_PER_LAYER = 5e-3  # per linear layer and snapshot (histograms and statistics of one probe pass)
PROBE_S_PER_PARAMETER = 5e-8  # per parameter and snapshot (the weight-gradient histograms)
# Per time step and recurrent layer, beyond the FLOPs (batches of 32, widths 64 and 128, T = 28 and 196):
TIME_STEP_S = {"rnn": 1.5e-4, "lstm": 1.5e-4, "gru": 4e-4}  # of one training step
TIME_PROBE_S = {"rnn": 1e-3, "lstm": 3.3e-3, "gru": 2.1e-3}  # of one through-time probe (256 digits, width 128)

# Sizes of the datasets' splits (the estimate takes the largest a name may load).
TRAIN_SIZES = {"mnist": 60_000, "fashion-mnist": 60_000, "mnist-sample": 4_000}
TEST_SIZES = {"mnist": 10_000, "fashion-mnist": 10_000, "mnist-sample": 1_000}

PAGE_BUDGET_S = 900.0  # a page visitor's whole comparison: 15 minutes (the article's run is ~4)
PAGE_MAX_STEPS = 200_000  # per run on the page
CLI_BUDGET_S = 6 * 3600.0  # one run from the command line: 6 hours
CLI_MAX_STEPS = 5_000_000


@dataclass(frozen=True)
class Budget:
    """A limit on estimated wall time (for everything checked together) and on each run's steps."""

    seconds: float
    max_steps: int
    setting: str  # the environment variable that sets `seconds`, named in refusals


def page_budget() -> Budget:
    """$VG_PAGE_BUDGET_S seconds (default 900) for one visitor's comparison, at most 200,000 steps a run."""
    return Budget(env_seconds("VG_PAGE_BUDGET_S", PAGE_BUDGET_S), PAGE_MAX_STEPS, "VG_PAGE_BUDGET_S")


def cli_budget() -> Budget:
    """$VG_CLI_BUDGET_S seconds (default 6 h) per command-line run, at most 5,000,000 steps."""
    return Budget(env_seconds("VG_CLI_BUDGET_S", CLI_BUDGET_S), CLI_MAX_STEPS, "VG_CLI_BUDGET_S")


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment; anything else is the default."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if 0 < value < float("inf") else default


def train_size(spec: RunSpec) -> int:
    full = TRAIN_SIZES[spec.dataset]
    return min(spec.n_train, full) if spec.n_train else full


def total_steps(spec: RunSpec) -> int:
    return steps_per_epoch(train_size(spec), spec.batch_size) * spec.epochs


def estimated_seconds(spec: RunSpec) -> float:
    """The cost model above, for `spec` on the development machine."""
    samples = train_size(spec)
    per_epoch = steps_per_epoch(samples, spec.batch_size)
    layers = spec.depth + 1
    forward = spec.flops_per_sample / 3  # a forward pass is a third of forward + backward
    evaluated = min(samples, INIT_TRAIN_EVAL) + TEST_SIZES[spec.dataset] * (spec.epochs + 1)
    flops = spec.flops_per_sample * samples * spec.epochs + forward * evaluated
    steps = per_epoch * spec.epochs
    snapshots = len(snapshot_schedule(per_epoch, spec.epochs))
    probe = PROBE_S_PER_LAYER * layers + PROBE_S_PER_PARAMETER * spec.n_parameters
    seconds = flops / FLOP_RATE + steps * (STEP_S + STEP_S_PER_LAYER * layers) + snapshots * probe
    if spec.model in TIME_STEP_S:
        unrolled = spec.seq_len * spec.depth
        seconds += unrolled * (steps * TIME_STEP_S[spec.model] + snapshots * TIME_PROBE_S[spec.model])
    return seconds


def check(specs: Sequence[RunSpec], budget: Budget) -> float:
    """The estimated seconds of all `specs` together; SpecError with the reason and the limit when over."""
    for spec in specs:
        steps = total_steps(spec)
        if steps > budget.max_steps:
            text = N_(
                "{name}: {label} takes {steps:,d} training steps, more than the {limit:,d} allowed here; "
                "use a larger batch, fewer epochs or fewer samples"
            )
            values = {"label": spec.label, "steps": steps, "limit": budget.max_steps}
            raise SpecError(message(text, name="epochs/batch_size", **values))
    seconds = sum(estimated_seconds(spec) for spec in specs)
    if seconds > budget.seconds:
        what = plural_message("this run", "these {n:d} runs", len(specs))
        text = N_(
            "{name}: {what} would take about {took} on a 2-core CPU, over the {limit} allowed here ({setting}); "
            "use fewer epochs, samples, layers or units, or a larger batch"
        )
        values = {"what": what, "took": duration(seconds), "limit": duration(budget.seconds)}
        raise SpecError(message(text, name="budget", setting=budget.setting, **values))
    return seconds


def duration(seconds: float) -> Message:
    """'45 s', '12 min', '3.5 h'."""
    if seconds < 120:
        return message("{n:.0f} s", n=seconds)
    if seconds < 2 * 3600:
        return message("{n:.0f} min", n=seconds / 60)
    return message("{n:.1f} h", n=seconds / 3600)
