"""What vg_core.watch costs: the same training loop with and without it, in lockstep in one process.

torchvision's resnet18 (weights=None, num_classes=10) on random 3x28x28 inputs, batches of 128, SGD, the
default snapshot schedule (no total_steps: steps 0, 1, 2, 4, ..., 256 and the end) and a probe batch of 128
samples (--probe: the probe's forward and backward pass costs as much as a training step on that many).

Two copies of the net start from the same weights and see the same batches: a plain loop and a watched one.
They take turns step by step (plain step 1, watched step 1, plain step 2, ...; which goes first alternates), and
each step is timed on its own, so load from other processes on a shared machine hits both alike. The watched
total includes its probes, the final probe on leaving the block and building the result's frames. The figure is
watched seconds / plain seconds; the script also reports the probes' share and the per-step cost outside them.

    python bench/watch_overhead.py [--steps 300] [--probe 128] [--device auto]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vg_core import watch
from vg_core.train import resolve_device

BATCH = 128


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Loop:
    """One training loop over the shared batches, timed step by step (`watched`: inside vg_core.watch)."""

    def __init__(self, model: nn.Module, probe, device: torch.device, watched: bool):
        self.model, self.device = model, device
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        self.criterion = nn.CrossEntropyLoss()
        self.watch = watch(model, probe=probe, loss_fn=self.criterion, name="bench") if watched else None
        self.seconds = 0.0

    def timed(self, work) -> None:
        sync(self.device)
        started = time.perf_counter()
        work()
        sync(self.device)
        self.seconds += time.perf_counter() - started

    def start(self) -> None:
        if self.watch is not None:
            self.timed(self.watch.__enter__)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        def work() -> None:
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(x), y)
            loss.backward()
            if self.watch is not None:
                self.watch.step(loss)
            self.optimizer.step()

        self.timed(work)

    def finish(self) -> dict:
        """Leave the block (its final probe) and build the result's frames; the watched run's meta timings."""
        if self.watch is None:
            return {}
        found = {}

        def work() -> None:
            self.watch.__exit__(None, None, None)
            result = self.watch.result
            found.update(probes=len(result.snapshot_steps), **result.meta["timings"])

        self.timed(work)
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--probe", type=int, default=128, help="probe batch size")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    initial = torchvision.models.resnet18(weights=None, num_classes=10).to(device)
    batches = [
        (torch.randn(BATCH, 3, 28, 28, device=device), torch.randint(0, 10, (BATCH,), device=device))
        for _ in range(args.steps)
    ]
    probe = (torch.randn(args.probe, 3, 28, 28, device=device), torch.randint(0, 10, (args.probe,), device=device))
    warm = Loop(copy.deepcopy(initial), probe, device, watched=True)  # first-call costs of both code paths
    warm.start()
    for x, y in batches[:3]:
        warm.step(x, y)
    warm.finish()
    plain = Loop(copy.deepcopy(initial), probe, device, watched=False)
    watched = Loop(copy.deepcopy(initial), probe, device, watched=True)
    watched.start()
    started = time.perf_counter()
    for number, (x, y) in enumerate(batches):
        for loop in (plain, watched) if number % 2 == 0 else (watched, plain):
            loop.step(x, y)
    meta = watched.finish()
    wall = time.perf_counter() - started
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    outside = watched.seconds - meta["probe_s"]
    print(
        f"resnet18 3x28x28, batch {BATCH}, probe batch {args.probe}, {args.steps} steps on {name} "
        f"({wall:.0f} s in all):\n"
        f"  plain {plain.seconds:.1f} s, watched {watched.seconds:.1f} s: ratio {watched.seconds / plain.seconds:.3f}\n"
        f"  {meta['probes']} probes, {meta['probe_s']:.1f} s ({meta['probe_s'] / meta['probes']:.2f} s each, a plain "
        f"step {plain.seconds / args.steps:.2f} s); outside the probes the watched loop took "
        f"{outside / plain.seconds:.3f}x the plain one"
    )


if __name__ == "__main__":
    main()
