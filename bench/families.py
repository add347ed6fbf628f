"""Samples per second for one training epoch of each model family at its page preset's size.

Usage: python bench/families.py [--device cpu|cuda] [--json]. Each family trains its preset's run for one
epoch with probes off (vg_core.train.train(spec, probes=False)), timed end to end; the best of --rounds rounds.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from vg_core.presets import PRESETS
from vg_core.train import train

# The page preset, and its run, that stands for each family.
FAMILY_PRESETS = {
    "mlp": ("activations", 0),
    "cnn": ("cnn-residual", 0),
    "rnn": ("rnn-vs-lstm", 0),
    "lstm": ("rnn-vs-lstm", 1),
    "gru": ("rnn-vs-lstm", 2),
}


def samples_per_second(family: str, device: str, rounds: int) -> dict:
    preset, run = FAMILY_PRESETS[family]
    spec = PRESETS[preset].specs()[run].replace(epochs=1, device=device)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        result = train(spec, probes=False)
        best = min(best, time.perf_counter() - started)
    n_train = result.meta["dataset"]["n_train"]
    return {"family": family, "spec": spec.label, "n_train": n_train, "seconds": best, "samples_per_s": n_train / best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [samples_per_second(family, args.device, args.rounds) for family in FAMILY_PRESETS]
    if args.json:
        print(json.dumps({"device": args.device, "threads": torch.get_num_threads(), "rows": rows}, indent=2))
        return
    for row in rows:
        print(f"{row['family']:5} {row['spec']:40} {row['samples_per_s']:10,.0f} samples/s ({row['seconds']:.2f} s)")


if __name__ == "__main__":
    main()
