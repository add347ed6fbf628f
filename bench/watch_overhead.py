"""What vg_core.watch costs: the same training loop with and without it, interleaved in one process (A B A B).

torchvision's resnet18 (weights=None, num_classes=10) on random 3x28x28 inputs, batches of 128, SGD, the
default snapshot schedule (no total_steps: steps 0, 1, 2, 4, ..., 256 and the end) and a 128-sample probe batch.
Each pair runs both loops from the same initial weights on the same batches; the ratio watched / plain of each
pair is reported, and their median (shared machines are noisy).

    python bench/watch_overhead.py [--steps 300] [--pairs 2] [--device auto]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vg_core import watch
from vg_core.train import resolve_device

BATCH = 128
PROBE = 128


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_loop(model: nn.Module, batches, probe, device: torch.device, watched: bool) -> tuple[float, dict]:
    """Seconds for the whole loop (a watched one includes its final probe and the result's frames), and the
    watched run's meta (its probe count and probe time; empty for a plain loop)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    sync(device)
    started = time.perf_counter()
    with watch(model, probe=probe, loss_fn=criterion, name="bench") if watched else nullcontext() as w:
        for x, y in batches:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            if w is not None:
                w.step(loss)
            optimizer.step()
    result = w.result if w is not None else None  # building the frames is part of the cost
    sync(device)
    elapsed = time.perf_counter() - started
    return elapsed, {} if result is None else {"probes": len(result.snapshot_steps), **result.meta["timings"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=2, help="A B pairs (plain, then watched)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    initial = torchvision.models.resnet18(weights=None, num_classes=10).to(device)
    batches = [
        (torch.randn(BATCH, 3, 28, 28, device=device), torch.randint(0, 10, (BATCH,), device=device))
        for _ in range(args.steps)
    ]
    probe = (torch.randn(PROBE, 3, 28, 28, device=device), torch.randint(0, 10, (PROBE,), device=device))
    timed_loop(copy.deepcopy(initial), batches[:5], probe, device, watched=True)  # warm-up
    ratios = []
    for pair in range(args.pairs):
        plain, _ = timed_loop(copy.deepcopy(initial), batches, probe, device, watched=False)
        watched, meta = timed_loop(copy.deepcopy(initial), batches, probe, device, watched=True)
        ratios.append(watched / plain)
        print(
            f"pair {pair + 1}: plain {plain:.2f} s, watched {watched:.2f} s, ratio {watched / plain:.3f} "
            f"({meta['probes']} probes, {meta['probe_s']:.2f} s of probing)"
        )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    median = statistics.median(ratios)
    print(f"resnet18 3x28x28, batch {BATCH}, {args.steps} steps on {name}: median ratio {median:.3f}")


if __name__ == "__main__":
    main()
