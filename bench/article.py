"""The seed article's Fashion-MNIST training loop as written, runnable on its own as a whole process.

It imports only what the article imports (torch, torchvision), so that `bench/throughput.py --whole-process`
can time it as a user would run it, start-up included, against `python -m vg_core run`. Data: torchvision's
FashionMNIST class over the un-gzipped IDX files in <root>/FashionMNIST/raw/ (throughput.py unpacks Debian's
files there); download=False keeps it off the network.

    python bench/article.py --root bench/out/torchvision --epochs 1
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torchvision
import torchvision.transforms as transforms
from torch import nn, optim

BATCH = 100


class DeepSigmoidNet(nn.Module):
    """The article's network, verbatim."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 1000)
        self.fc2 = nn.Linear(1000, 1000)
        self.fc3 = nn.Linear(1000, 1000)
        self.fc4 = nn.Linear(1000, 1000)
        self.fc5 = nn.Linear(1000, 1000)
        self.fc6 = nn.Linear(1000, 10)

    def forward(self, x):
        x = x.view(-1, 28 * 28)
        x = torch.sigmoid(self.fc1(x))
        x = torch.sigmoid(self.fc2(x))
        x = torch.sigmoid(self.fc3(x))
        x = torch.sigmoid(self.fc4(x))
        x = torch.sigmoid(self.fc5(x))
        x = self.fc6(x)
        return x


def trainset(root: str, n_train: int) -> torch.utils.data.Dataset:
    """torchvision's own FashionMNIST class with the article's transform (the first n_train samples)."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    full = torchvision.datasets.FashionMNIST(root=root, train=True, transform=transform)
    return full if n_train >= len(full) else torch.utils.data.Subset(full, range(n_train))


def sync(device: torch.device) -> None:
    """Wait for queued device work before a timer is read."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(data: torch.utils.data.Dataset, epochs: int, device: torch.device, seed: int) -> dict:
    """The article's training loop as written; the one addition moves each batch to `device` (a no-op on CPU)."""
    torch.manual_seed(seed)
    sync(device)
    started = time.perf_counter()
    trainloader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True, num_workers=2)
    net = DeepSigmoidNet().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    for _epoch in range(epochs):
        running_loss = 0.0
        for i, batch in enumerate(trainloader, 0):  # noqa: B007 (i is read after the loop, as in the article)
            inputs, labels = batch
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
    sync(device)
    return {"seconds": time.perf_counter() - started, "final_epoch_loss": running_loss / (i + 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="folder holding FashionMNIST/raw/ (un-gzipped IDX files)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--n-train", type=int, default=60_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    result = run(trainset(args.root, args.n_train), args.epochs, torch.device(args.device), seed=0)
    print(
        f"{args.epochs} epoch(s) in {result['seconds']:.1f} s, last epoch's mean loss {result['final_epoch_loss']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
