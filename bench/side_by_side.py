"""A comparison's runs side by side: three of the article's nets (784-1000x5-10, SGD, batch 100) against one.

The CLI's `compare` trains the article's net with sigmoid, ReLU and Swish. On a GPU it trains them side by
side (vg_core.side_by_side: a thread and a CUDA stream per run), so that the small batch does not leave the GPU
idle. Three variants, each with all probes on, on Fashion-MNIST (Debian's dataset-fashion-mnist), interleaved
(A B C, C B A, ...) so that load from other processes hits them alike, fastest round of each:

  one              the sigmoid net alone
  one after another  the three nets, one after another (the CLI on a CPU)
  side by side     the three nets side by side (the CLI on a GPU)

Target (the speed issue): side by side within 1.5x the time of one. Also reported: samples/s of all runs
together, and their training FLOP/s as a fraction of torch.mm on the net's own GEMM shapes (as
bench/throughput.py counts them). The runs side by side must end with the numbers they end with one after
another; the largest difference in their final training loss is reported.

    python bench/side_by_side.py --device cuda      # 3 epochs of 60,000 samples, 2 rounds
    python bench/side_by_side.py --quick            # smoke run: 3,000 samples, 1 epoch, 1 round
    python bench/side_by_side.py --render bench/out/side-by-side-cuda.json
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.article import sync  # noqa: E402
from bench.throughput import (  # noqa: E402
    FLOP_PER_SAMPLE,
    benchmark_parser,
    interleaved,
    machine,
    matmul_rates,
    quick,
    save,
    vg_spec,
)
from vg_core import side_by_side  # noqa: E402
from vg_core.cli import DEFAULT_ACTIVATIONS  # noqa: E402
from vg_core.train import resolve_device, train  # noqa: E402

ACTIVATIONS = DEFAULT_ACTIVATIONS.split(",")  # what `compare` trains by default
VARIANTS = ("one", "one_after_another", "side_by_side")
TARGET = 1.5  # side by side within this many times one run's time


def run_variant(name: str, n_train: int, epochs: int, device: torch.device) -> dict:
    """Seconds and final training losses of one variant, end to end (models, data, probes, evaluations)."""
    base = vg_spec(n_train, epochs, device)
    specs = [base.replace(activation=activation) for activation in ACTIVATIONS[: 1 if name == "one" else None]]
    jobs = [lambda stop, spec=spec: train(spec, lambda progress: stop.is_set()) for spec in specs]
    sync(device)
    started = time.perf_counter()
    results = side_by_side.run_all(jobs, device, side_by_side=name == "side_by_side")
    sync(device)
    return {
        "seconds": time.perf_counter() - started,
        "runs": len(specs),
        "final_train_loss": [float(result.history["train_loss"].iloc[-1]) for result in results],
    }


def measure(args: argparse.Namespace, device: torch.device) -> dict:
    run_variant("side_by_side", 1000, 1, device)  # warm-up (not timed): data read, kernels loaded, pools started
    run = {name: functools.partial(run_variant, name, args.n_train, args.epochs, device) for name in VARIANTS}
    rounds = interleaved(run, args.repeats, lambda timing: f"{timing['seconds']:8.1f} s")
    return {
        **machine(device),
        "n_train": min(args.n_train, 60_000),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "activations": ACTIVATIONS,
        "matmul": matmul_rates(device, args.matmul_seconds),
        "rounds": rounds,
    }


def figures(raw: dict) -> dict:
    """The reported figures, from what `measure` recorded (also used to re-render a saved JSON)."""
    rounds = raw["rounds"]
    seconds = {name: min(r[name]["seconds"] for r in rounds) for name in VARIANTS}
    medians = {name: statistics.median(r[name]["seconds"] for r in rounds) for name in VARIANTS}
    samples = {name: rounds[0][name]["runs"] * raw["n_train"] * raw["epochs"] for name in VARIANTS}
    rates = {name: samples[name] / seconds[name] for name in VARIANTS}
    gflops = {name: rates[name] * FLOP_PER_SAMPLE / 1e9 for name in VARIANTS}
    apart = [r["one_after_another"]["final_train_loss"] for r in rounds]
    together = [r["side_by_side"]["final_train_loss"] for r in rounds]
    return {
        **raw,
        "seconds": seconds,
        "seconds_median": medians,
        "samples_per_s": rates,
        "gflops": gflops,
        "fraction_of_net_gemm_rate": {name: gflops[name] / raw["matmul"]["net_gemms_gflops"] for name in VARIANTS},
        "side_by_side_over_one": seconds["side_by_side"] / seconds["one"],
        "one_after_another_over_one": seconds["one_after_another"] / seconds["one"],
        "largest_final_loss_difference": max(
            abs(a - b) for losses_a, losses_b in zip(apart, together) for a, b in zip(losses_a, losses_b)
        ),
    }


def table(r: dict) -> str:
    mm = r["matmul"]
    ratio = r["side_by_side_over_one"]
    lines = [
        f"{r['device_name']} ({r['device']}, {r['threads']} torch threads): the article's net, "
        f"{r['n_train']:,} Fashion-MNIST samples x {r['epochs']} epoch(s) per run, all probes, fastest of "
        f"{r['repeats']} interleaved round(s)",
        "",
        "| | runs | seconds | samples/s (all runs) | share of torch.mm on the net's GEMMs |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, label in zip(VARIANTS, ("one run (sigmoid)", "one after another", "side by side")):
        lines.append(
            f"| {label} | {r['rounds'][0][name]['runs']} | {r['seconds'][name]:.1f} | "
            f"{r['samples_per_s'][name]:,.0f} | {r['fraction_of_net_gemm_rate'][name]:.0%} |"
        )
    lines += [
        "",
        f"side by side / one: {ratio:.2f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'missed'}); "
        f"one after another / one: {r['one_after_another_over_one']:.2f}x",
        f"torch.mm on the net's GEMMs: {mm['net_gemms_gflops']:.0f} GFLOP/s; 2048^2: {mm['square_2048_gflops']:.0f}",
        f"largest difference in a final training loss, side by side against one after another: "
        f"{r['largest_final_loss_difference']:.2g}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = benchmark_parser(__doc__, "auto", "side-by-side").parse_args(argv)
    if args.render:
        print(table(figures(json.loads(Path(args.render).read_text()))))
        return 0
    quick(args)
    device = resolve_device(args.device)
    started = time.perf_counter()
    result = figures(measure(args, device))
    result["benchmark_seconds"] = time.perf_counter() - started
    save(args, "side-by-side", device.type, result)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
