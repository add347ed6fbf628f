"""What the digit-row examples share: mnist-sample digits as sequences of rows, and a watched training loop."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vg_core import watch
from vg_core.data import load_raw, normalise

BATCH = 64
PROBE = 256  # the fixed probe batch, from the test split


def digit_rows(images) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 28 rows, 28 pixels), normalised as the engine does."""
    return normalise(torch.from_numpy(images)).reshape(-1, 28, 28)


def train_watched(description: str, name: str, model: Callable[[], nn.Module], optimizer: Callable) -> None:
    """Parse --steps/--out, train `model()` on mnist-sample's rows with `optimizer(parameters)`, save the run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default=f"runs/{name}", help="the run's folder")
    args = parser.parse_args()
    data = load_raw("mnist-sample")
    x_train, y_train = digit_rows(data.train_images), torch.from_numpy(data.train_labels).long()
    probe = (digit_rows(data.test_images[:PROBE]), torch.from_numpy(data.test_labels[:PROBE]).long())

    torch.manual_seed(0)
    net = model()
    criterion = nn.CrossEntropyLoss()
    step_with = optimizer(net.parameters())
    order = torch.randperm(len(x_train))
    with watch(net, probe=probe, loss_fn=criterion, name=name, total_steps=args.steps) as w:
        for step in range(args.steps):
            index = order[(step * BATCH) % len(order) :][:BATCH]
            step_with.zero_grad()
            loss = criterion(net(x_train[index]), y_train[index])
            loss.backward()
            w.step(loss)
            step_with.step()
    w.result.save(args.out)
    print(f"{args.steps} steps, last loss {loss.item():.3f}; the run is in {args.out}")
