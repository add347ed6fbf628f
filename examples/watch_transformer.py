"""Your own loop with vg_core.watch: a small nn.TransformerEncoder classifying digits, one token per row.

    python examples/watch_transformer.py [--steps 300] [--out runs/transformer-digits]

Each 28x28 digit of mnist-sample (5,000 real digits, always installed) is 28 tokens (its rows), embedded
linearly with a learned position embedding, encoded by two pre-norm encoder layers and mean-pooled into a
linear head. Open the run on the page ("Your runs") or with `python -m vg_core show runs/transformer-digits`.
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


class RowTransformer(nn.Module):
    """(N, 28, 28) digits -> 28 row tokens -> TransformerEncoder -> mean over tokens -> logits of 10 classes."""

    def __init__(self, width: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.embed = nn.Linear(28, width)
        self.position = nn.Embedding(28, width)
        block = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x) + self.position(torch.arange(x.shape[1], device=x.device))
        return self.head(self.encoder(tokens).mean(1))


def digit_rows(images) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 28 rows, 28 pixels), normalised as the engine does."""
    return normalise(torch.from_numpy(images)).reshape(-1, 28, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default="runs/transformer-digits", help="the run's folder")
    args = parser.parse_args()
    data = load_raw("mnist-sample")
    x_train, y_train = digit_rows(data.train_images), torch.from_numpy(data.train_labels).long()
    probe = (digit_rows(data.test_images[:PROBE]), torch.from_numpy(data.test_labels[:PROBE]).long())

    torch.manual_seed(0)
    model = RowTransformer()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    order = torch.randperm(len(x_train))
    with watch(model, probe=probe, loss_fn=criterion, name="transformer digits", total_steps=args.steps) as w:
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
