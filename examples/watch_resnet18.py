"""Your own loop with vg_core.watch: torchvision's resnet18 (untrained, 10 classes) on Fashion-MNIST.

    python examples/watch_resnet18.py [--steps 300] [--out runs/resnet18-fashion]

Images are 3x28x28 (the grey channel repeated), batches of 128, SGD with momentum. Fashion-MNIST is read from
/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist) by vg_core.data; without it the 5,000-digit
mnist-sample is used instead, with a message. Open the run on the page ("Your runs") or with
`python -m vg_core show runs/resnet18-fashion`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vg_core import watch
from vg_core.data import DataError, load_raw, normalise
from vg_core.train import resolve_device

BATCH = 128
PROBE = 128  # the fixed probe batch, from the test split


def images(raw: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 3, 28, 28), normalised as the engine does, the channel repeated."""
    return normalise(raw).reshape(-1, 1, 28, 28).repeat(1, 3, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps (a few hundred: minutes on a CPU)")
    parser.add_argument("--out", default="runs/resnet18-fashion", help="the run's folder")
    args = parser.parse_args()
    try:
        data = load_raw("fashion-mnist")
    except DataError as err:
        print(f"{err}\nUsing mnist-sample (5,000 handwritten digits) instead.")
        data = load_raw("mnist-sample")
    device = resolve_device("auto")
    x_train, y_train = images(torch.from_numpy(data.train_images)), torch.from_numpy(data.train_labels).long()
    x_probe = images(torch.from_numpy(data.test_images[:PROBE])).to(device)
    y_probe = torch.from_numpy(data.test_labels[:PROBE]).long().to(device)

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    order = torch.randperm(len(x_train))
    with watch(
        model, probe=(x_probe, y_probe), loss_fn=criterion, name="resnet18 fashion", total_steps=args.steps
    ) as w:
        for step in range(args.steps):
            index = order[(step * BATCH) % len(order) :][:BATCH]
            x, y = x_train[index].to(device), y_train[index].to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            w.step(loss)
            optimizer.step()
    w.result.save(args.out)
    print(f"{data.name}: {args.steps} steps, last loss {loss.item():.3f}; the run is in {args.out}")


if __name__ == "__main__":
    main()
