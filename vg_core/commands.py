"""The command line's commands (`python -m vg_core ...`, parsed by cli.py): train or load, then print tables or JSON."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from . import side_by_side
from .budget import check as check_budget
from .budget import cli_budget
from .cache import CacheError, ResultCache
from .cli import DEFAULT_ACTIVATIONS, RECURRENT_ACTIVATION, UsageError, error_exit, interrupted, spec_from_args
from .data import DataError
from .i18n import ENGLISH
from .reproductions import find
from .results import RunResult, json_safe
from .runfiles import RunFileError, open_run
from .spec import RECURRENT, RunSpec, SpecError
from .summary import final_metrics, gradient_ratio, layer_table, summary_dict, verdicts
from .sweep import Sweep, cached_table, parse_depths, run_sweep
from .train import Progress, resolve_device


def progress_bar(label: str, quiet: bool, stop: threading.Event | None = None, position: int | None = None):
    """A tqdm bar on stderr driven by train's callback, opened at the first step (on line `position` below the
    others, for runs side by side); returns (callback, close). The callback stops the run once `stop` is set."""
    bars = []

    def callback(progress: Progress) -> bool:
        if not quiet:
            if not bars:
                bars.append(
                    tqdm(
                        total=progress.total_steps,
                        desc=label,
                        unit="step",
                        file=sys.stderr,
                        leave=False,
                        position=position,
                    )
                )
            bars[0].update(progress.step - bars[0].n)  # redrawn at most every 0.1 s (tqdm's mininterval)
        return stop is not None and stop.is_set()

    def close() -> None:
        for bar in bars:
            bar.close()

    return callback, close


def train_or_load(
    cache: ResultCache, spec: RunSpec, quiet: bool, stop: threading.Event | None = None, position: int | None = None
) -> tuple[RunResult, bool]:
    callback, close = progress_bar(spec.label, quiet, stop, position)
    try:
        result, cached = cache.get_or_train(spec, callback)
    finally:
        close()
    if not quiet and cached:
        print(f"{spec.label}: from the cache ({result.spec.key()})", file=sys.stderr)
    return result, cached


def train_or_load_all(cache: ResultCache, specs: list[RunSpec], quiet: bool) -> list[tuple[RunResult, bool]]:
    """train_or_load for each spec: side by side on a GPU (vg_core.side_by_side), one after another elsewhere."""
    device = resolve_device(specs[0].device)
    lines = side_by_side.on(device) and len(specs) > 1  # a progress bar per run, on lines of their own

    def job(index: int, spec: RunSpec) -> Callable[[threading.Event], tuple[RunResult, bool]]:
        return lambda stop: train_or_load(cache, spec, quiet, stop, index if lines else None)

    return side_by_side.run_all([job(index, spec) for index, spec in enumerate(specs)], device)


def format_run(result: RunResult) -> str:
    """The per-layer table and verdicts of `run`."""
    table = layer_table(result)
    shown = pd.DataFrame(
        {
            "layer": table["name"],
            "grad norm @init": table["weight_grad_norm_init"].map("{:.3e}".format),
            "grad norm @end": table["weight_grad_norm_final"].map("{:.3e}".format),
            "÷ last hidden @init": table["ratio_to_last_hidden_init"].map("{:.2e}".format),
            "÷ last hidden @end": table["ratio_to_last_hidden_final"].map("{:.2e}".format),
            "act std @end": table["act_std_final"].map(_maybe("{:.3f}")),
            "saturated/dead @end": table["saturated_or_dead_final"].map(_maybe("{:.1%}")),
        }
    )
    dataset = result.meta.get("dataset")  # a watched run has none: it trained on the user's own data
    data = (
        f" on {dataset['name']} ({dataset['n_train']:,} train / {dataset['n_test']:,} test, "
        f"source: {dataset['source']})"
        if dataset
        else " (your own model and data)"
    )
    device = result.meta.get("device", "device not recorded")
    lines = [f"{result.label}{data}, {device}, status {result.meta['status']}"]
    lines += [f"notice: {ENGLISH.render(note)}" for note in result.data_notes]
    lines += [shown.to_string(index=False), ""]
    metrics = final_metrics(result)
    if metrics["test_acc"] is not None:
        lines.append(f"final test accuracy {metrics['test_acc']:.2%}, test loss {metrics['test_loss']:.4f}")
    lines += [f"- {v.text}" for v in verdicts(result)]
    return "\n".join(lines)


def format_compare(results: list[RunResult]) -> str:
    """One column per run: gradient norm per layer at the end, then the headline numbers; then each run's verdicts."""
    columns = {}
    for result in results:
        table = layer_table(result).set_index("name")
        metrics = final_metrics(result)
        column = table["weight_grad_norm_final"].map("{:.2e}".format)
        column["fc1 ÷ last hidden @init"] = f"{gradient_ratio(result, result.snapshot_steps[0]):.2e}"
        column["fc1 ÷ last hidden @end"] = f"{gradient_ratio(result):.2e}"
        column["max saturated/dead"] = _maybe("{:.1%}")(table["saturated_or_dead_final"].max())
        column["test accuracy"] = "n/a" if metrics["test_acc"] is None else f"{metrics['test_acc']:.2%}"
        column["diverged at step"] = str(result.diverged_at_step or "-")
        columns[result.spec.label] = column
    frame = pd.DataFrame(columns)
    frame.index.name = "weight grad norm @end"
    lines = [frame.to_string()]
    for result in results:
        lines += ["", f"{result.label}:", *(f"- {v.text}" for v in verdicts(result))]
    return "\n".join(lines)


def _maybe(pattern: str):
    return lambda value: "n/a" if pd.isna(value) else pattern.format(value)


def _emit(payload: Any) -> None:
    print(json.dumps(payload, allow_nan=False, indent=2))


def open_cache(args: argparse.Namespace, specs: list[RunSpec]) -> ResultCache:
    """Every spec within the command line's budget, and the cache (a warning when it cannot store results)."""
    for spec in specs:
        check_budget([spec], cli_budget())
    cache = ResultCache(args.cache_dir)
    if cache.problem:
        print(f"vg_core: warning: {cache.problem}", file=sys.stderr)
    return cache


def command_run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    result, cached = train_or_load(open_cache(args, [spec]), spec, args.quiet)
    if args.json:
        _emit(summary_dict(result, cached))
    else:
        print(format_run(result))
    return 0


def command_compare(args: argparse.Namespace) -> int:
    models = _names(args.models, "models")
    default = RECURRENT_ACTIVATION if set(models) & set(RECURRENT) else DEFAULT_ACTIVATIONS
    activations = _names(args.activations if args.activations is not None else default, "activations")
    inits = _names(args.inits, "inits")
    specs = [spec_from_args(args, model=m, activation=a, init=i) for m in models for a in activations for i in inits]
    specs = list({spec.key(): spec for spec in specs}.values())  # an lstm/gru takes tanh whatever is asked
    cache = open_cache(args, specs)
    runs = train_or_load_all(cache, specs, args.quiet)
    if args.json:
        _emit([summary_dict(result, cached) for result, cached in runs])
    else:
        print(format_compare([result for result, _ in runs]))
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    base = spec_from_args(args)
    plan = Sweep(base, parse_depths(args.depths), _names(args.activations, "activations"), _names(args.inits, "inits"))
    if args.out and Path(args.out).is_dir():
        raise UsageError(f"--out: {args.out} is a folder; give a file name for the CSV table")
    cache = open_cache(args, plan.points())
    done, _ = cached_table(plan, cache)
    if not args.quiet:
        print(f"sweep: {len(plan.points())} points, {len(done)} already cached", file=sys.stderr)
    open_bar = []  # the previous point's bar, closed before the next one starts

    def on_point(index: int, count: int, spec: RunSpec):
        while open_bar:
            open_bar.pop()()
        callback, close = progress_bar(f"[{index + 1}/{count}] {spec.label}", args.quiet)
        open_bar.append(close)
        return callback

    try:
        table = run_sweep(plan, cache, on_point)
    finally:
        while open_bar:
            open_bar.pop()()
    out = Path(args.out) if args.out else cache.root / f"sweep-{_sweep_name(plan)}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    if args.json:
        _emit(json_safe({"csv": str(out), "points": table.to_dict(orient="records")}))
    else:
        print(table.drop(columns="key").to_string(index=False, float_format="{:.4g}".format))
        print(f"saved {out}", file=sys.stderr)
    return 0


def command_reproduce(args: argparse.Namespace) -> int:
    reproduction = find(args.slug)
    overrides = {f.name: getattr(args, f.name) for f in fields(RunSpec) if getattr(args, f.name, None) is not None}
    if reproduction.depths:
        plan = reproduction.sweep(**RunSpec.from_params(overrides, reproduction.base).to_dict())
        cache = open_cache(args, plan.points())
        table = run_sweep(plan, cache, lambda i, n, spec: progress_bar(f"[{i + 1}/{n}] {spec.label}", args.quiet)[0])
        findings = reproduction.sweep_measure(table)
        shown = table.drop(columns="key").to_string(index=False, float_format="{:.4g}".format)
    else:
        base = RunSpec.from_params(overrides, reproduction.base)
        specs = [base.replace(**run) for run in reproduction.runs]
        cache = open_cache(args, specs)
        results = [result for result, _ in train_or_load_all(cache, specs, args.quiet)]
        findings = reproduction.measure(results)
        shown = format_compare(results)
    if args.json:
        _emit(
            json_safe(
                {"slug": reproduction.slug, "claim": reproduction.claim, "findings": [f.to_dict() for f in findings]}
            )
        )
    else:
        print(f"{reproduction.title}\nclaim: {reproduction.claim}\n{reproduction.note}\n\n{shown}\n")
        print("\n".join(finding.text for finding in findings))
    return 0


def command_show(args: argparse.Namespace) -> int:
    try:
        result = open_run(args.path)
    except RunFileError as err:
        raise UsageError(f"cannot show {args.path}: {err}") from None
    if args.json:
        _emit(summary_dict(result, cached=True))
    else:
        print(format_run(result))
    return 0


def _names(text: str, flag: str) -> tuple[str, ...]:
    """'sigmoid, relu' -> ('sigmoid', 'relu'); an empty list is a UsageError naming the flag."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise UsageError(f"--{flag}: {text!r} names none; give a comma-separated list")
    return names


def _sweep_name(plan: Sweep) -> str:
    return hashlib.sha256("|".join(spec.key() for spec in plan.points()).encode()).hexdigest()[:12]


def execute(args: argparse.Namespace) -> int:
    """Run the parsed command; every failure the user can cause is one line on stderr and an exit code."""
    try:
        return {
            "run": command_run,
            "compare": command_compare,
            "sweep": command_sweep,
            "reproduce": command_reproduce,
            "show": command_show,
        }[args.command](args)
    except (UsageError, SpecError, CacheError) as err:
        return error_exit(err)
    except BrokenPipeError:  # e.g. `... --json | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as err:  # a file the command writes (--out, the cache) cannot be written
        print(f"vg_core: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except DataError as err:
        print(f"vg_core: data error: {err}", file=sys.stderr)
        return 1
    except (MemoryError, torch.OutOfMemoryError) as err:  # the host's memory, or the GPU's
        print(
            f"vg_core: error: out of memory ({type(err).__name__}); use a smaller width, depth or batch",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return interrupted()
