"""Your own loop with vg_core.watch: an nn.LSTM sequence classifier reading each digit row by row.

    python examples/watch_lstm.py [--steps 300] [--out runs/lstm-digits]

Each 28x28 digit of mnist-sample (5,000 real digits, always installed) is a sequence of 28 rows of 28 pixels;
the LSTM's last hidden state feeds a linear head. Open the run on the page ("Your runs") or with
`python -m vg_core show runs/lstm-digits`.
"""

from __future__ import annotations

import torch
from digit_rows import train_watched
from torch import nn


class RowLSTM(nn.Module):
    """(N, 28, 28) digits -> an LSTM over the 28 rows -> logits of 10 classes from the last hidden state."""

    def __init__(self, hidden: int = 64, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


if __name__ == "__main__":
    train_watched(__doc__.splitlines()[0], "lstm-digits", RowLSTM, lambda params: torch.optim.Adam(params, lr=2e-3))
