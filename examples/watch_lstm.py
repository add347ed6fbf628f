"""Your own loop with vg_core.watch: an nn.LSTM sequence classifier reading each digit row by row.

    python examples/watch_lstm.py [--steps 300] [--out runs/lstm-digits]

Each 28x28 digit of mnist-sample (5,000 real digits, always installed) is a sequence of 28 rows of 28 pixels;
the LSTM's last hidden state feeds a linear head. Open the run on the page ("Your runs") or with
`python -m vg_core show runs/lstm-digits`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vg_core import watch
from vg_core.data import load_raw, normalise

BATCH = 64
PROBE = 256


class RowLSTM(nn.Module):
    """(N, 28, 28) digits -> an LSTM over the 28 rows -> logits of 10 classes from the last hidden state."""

    def __init__(self, hidden: int = 64, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def digit_rows(images) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 28 rows, 28 pixels), normalised as the engine does."""
    return normalise(torch.from_numpy(images)).reshape(-1, 28, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default="runs/lstm-digits", help="the run's folder")
    args = parser.parse_args()
    data = load_raw("mnist-sample")
    x_train, y_train = digit_rows(data.train_images), torch.from_numpy(data.train_labels).long()
    probe = (digit_rows(data.test_images[:PROBE]), torch.from_numpy(data.test_labels[:PROBE]).long())

    torch.manual_seed(0)
    model = RowLSTM()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    order = torch.randperm(len(x_train))
    with watch(model, probe=probe, loss_fn=criterion, name="lstm digits", total_steps=args.steps) as w:
        for step in range(args.steps):
            index = order[(step * BATCH) % len(order) :][:BATCH]
            optimizer.zero_grad()
            loss = criterion(model(x_train[index]), y_train[index])
            loss.backward()
            w.step(loss)
            optimizer.step()
    w.result.save(args.out)
    print(f"{args.steps} steps, last loss {loss.item():.3f}; the run is in {args.out}")


if __name__ == "__main__":
    main()
