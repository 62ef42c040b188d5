"""The recurrent encoder GRU4Rec and the LSTM model share: embeddings -> RNN -> back to width D.

    x = Dropout(e(a_1..a_L))                [B, L, D]
    h = RNN(x)                              [B, L, hidden]   (GRU or LSTM, n_layers, batch_first)
    out = W h                               [B, L, D]        (so the output layer can score actions)

An RNN is causal by construction. Histories are left-padded; padding embeddings are zero, so the
state that reaches the first real event is the same for every history of the same padded length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn


def build_recurrent_encoder(kind: Literal["gru", "lstm"], dim: int, hidden: int, layers: int, dropout: float) -> nn.Module:
    from torch import nn

    cell = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]

    class RecurrentEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dropout = nn.Dropout(dropout)
            self.rnn = cell(dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
            self.project = nn.Linear(hidden, dim)

        def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
            """x [B, L, D], real [B, L] (unused: zero padding embeddings carry no signal) -> [B, L, D]."""
            states, _ = self.rnn(self.dropout(x))  # [B, L, hidden]
            return self.project(states)

    return RecurrentEncoder()
