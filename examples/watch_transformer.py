"""Your own loop with vg_core.watch: a small nn.TransformerEncoder classifying digits, one token per row.

    python examples/watch_transformer.py [--steps 300] [--out runs/transformer-digits]

Each 28x28 digit of mnist-sample (5,000 real digits, always installed) is 28 tokens (its rows), embedded
linearly with a learned position embedding, encoded by two pre-norm encoder layers and mean-pooled into a
linear head. Open the run on the page ("Your runs") or with `python -m vg_core show runs/transformer-digits`.
"""

from __future__ import annotations

import torch
from digit_rows import train_watched
from torch import nn


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


if __name__ == "__main__":
    train_watched(
        __doc__.splitlines()[0], "transformer-digits", RowTransformer, lambda params: torch.optim.AdamW(params, lr=1e-3)
    )
