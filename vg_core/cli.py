"""Command line: `python -m vg_core run|compare|sweep|reproduce|show`; flags mirror RunSpec's field names.

This module only parses, so that `--help` and a bad flag answer at once; the commands, and the engine they
import (torch), are in commands.py.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any

from .reproductions import REPRODUCTIONS
from .spec import CHOICES, RECURRENT, RunSpec, range_bounds

DEFAULT_ACTIVATIONS = "sigmoid,relu,swish"  # what `compare` contrasts by default
RECURRENT_ACTIVATION = "tanh"  # the activation a recurrent model gets when none is given (an Elman RNN is tanh)


class UsageError(Exception):
    """A bad flag: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No prefix matching: `--init` must not silently mean `--inits` or `--init-std`.
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(message)


def _spec_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per RunSpec field; values stay strings so RunSpec names the field when one is bad."""
    defaults = RunSpec()
    for f in fields(RunSpec):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.name == "residual":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help="x + f(x) skips")
        elif f.name in CHOICES:
            parser.add_argument(
                flag, default=None, help=f"{' | '.join(CHOICES[f.name])} (default {getattr(defaults, f.name)})"
            )
        else:
            low, high = range_bounds(f.name)
            parser.add_argument(flag, default=None, help=f"{low}..{high} (default {getattr(defaults, f.name)})")


def _common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one strict JSON object instead of tables")
    parser.add_argument("--cache-dir", default=None, help="result cache folder (default $VG_CACHE_DIR)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m vg_core", description="Train instrumented MLPs, CNNs and RNNs and show their gradient flow."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="train (or load from the cache) one spec and print a per-layer table")
    _spec_flags(run)
    _common_flags(run)
    compare = commands.add_parser("compare", help="several models, activations or inits, otherwise equal")
    _spec_flags(compare, skip=("model", "activation", "init"))
    compare.add_argument("--models", default="mlp", help="comma-separated models (mlp, cnn, rnn, lstm, gru)")
    compare.add_argument(
        "--activations",
        default=None,
        help=f"comma-separated activations (default {DEFAULT_ACTIVATIONS}; {RECURRENT_ACTIVATION} for recurrent ones)",
    )
    compare.add_argument("--inits", default="default", help="comma-separated inits")
    _common_flags(compare)
    sweep = commands.add_parser("sweep", help="one spec over several depths and activations, cached and resumable")
    _spec_flags(sweep, skip=("activation", "init", "depth"))
    sweep.add_argument("--depths", default="2,5,10,20,30,40,50", help="comma-separated depths")
    sweep.add_argument("--activations", default="relu,swish", help="comma-separated activations")
    sweep.add_argument("--inits", default="default", help="comma-separated inits")
    sweep.add_argument("--out", default=None, help="CSV file for the table (default: in the cache folder)")
    _common_flags(sweep)
    reproduce = commands.add_parser("reproduce", help="run a paper's experiment and check its claim")
    reproduce.add_argument("slug", choices=[r.slug for r in REPRODUCTIONS], help="which reproduction")
    _spec_flags(reproduce, skip=("activation", "init", "depth"))
    _common_flags(reproduce)
    show = commands.add_parser("show", help="print the per-layer table of a saved run (its folder or a .zip of it)")
    show.add_argument("path", help="a run's folder (RunResult.save, vg_core.watch) or a .zip of that folder")
    show.add_argument("--json", action="store_true", help="print one strict JSON object instead of tables")
    return parser


def spec_from_args(args: argparse.Namespace, **overrides: Any) -> RunSpec:
    """The RunSpec the flags describe (defaults: the article's network; a recurrent model's activation: tanh)."""
    given = {f.name: getattr(args, f.name) for f in fields(RunSpec) if getattr(args, f.name, None) is not None}
    values = {**given, **overrides}
    if str(values.get("model", "")).strip().lower() in RECURRENT and "activation" not in values:
        values["activation"] = RECURRENT_ACTIVATION
    return RunSpec.from_params(values)


def error_exit(err: Exception) -> int:
    """A bad flag or spec, in one line on stderr: exit code 2."""
    print(f"vg_core: error: {err}", file=sys.stderr)
    return 2


def interrupted() -> int:
    """Ctrl-C: one line, exit code 130."""
    print("vg_core: interrupted", file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from .commands import execute  # the engine (torch): imported only once the flags parse
    except UsageError as err:
        return error_exit(err)
    except KeyboardInterrupt:
        return interrupted()
    return execute(args)
