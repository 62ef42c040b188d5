"""GRU4Rec and the LSTM next-action model: one recurrent encoder, two cells, one config.

- GRU4Rec (Hidasi et al., ICLR 2016) with a full-vocabulary cross-entropy loss, as in RecBole: a GRU
  reads the history; the score of action a after position t is h_t . e(a) (tied output).
- The LSTM model, the classic large-model behavior predictor: an LSTM reads the history and
  p(a | history) = softmax(W h_t + b)_a, with W separate from the input embeddings (untied) and a
  bias per action that can carry popularity.

The encoder, between the shared embeddings and output layer of neural.py:

    x = Dropout(e(a_1..a_L))                [B, L, D]
    h = RNN(x)                              [B, L, hidden]   (GRU or LSTM, n_layers, batch_first)
    out = W h                               [B, L, D]        (so the output layer can score actions)

An RNN is causal by construction. Histories are left-padded; padding embeddings are zero, so the
state that reaches the first real event is the same for every history of the same padded length.
Explanations are gradient x input on the history's embeddings (neural.py).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from behaviorlab.config import StrictConfig
from behaviorlab.models.neural import NeuralModel
from behaviorlab.models.training import NeuralConfig

CELLS: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}


class RecurrentConfig(NeuralConfig):
    hidden_size: int = Field(128, ge=1)
    n_layers: int = Field(1, ge=1)


class RecurrentEncoder(nn.Module):
    def __init__(self, cell: Literal["gru", "lstm"], dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.rnn = CELLS[cell](dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.project = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """x [B, L, D], real [B, L] (unused: zero padding embeddings carry no signal) -> [B, L, D]."""
        states, _ = self.rnn(self.dropout(x))  # [B, L, hidden]
        return self.project(states)


class RecurrentModel(NeuralModel):
    """A NeuralModel whose encoder is a RecurrentEncoder with the subclass's `cell`."""

    config_class: ClassVar[type[StrictConfig]] = RecurrentConfig
    config: RecurrentConfig
    cell: ClassVar[Literal["gru", "lstm"]]

    def build_encoder(self) -> nn.Module:
        c = self.config
        return RecurrentEncoder(self.cell, c.embedding_dim, c.hidden_size, c.n_layers, c.dropout)


class GRU4RecModel(RecurrentModel):
    name: ClassVar[str] = "gru4rec"
    cell: ClassVar[Literal["gru", "lstm"]] = "gru"


class LSTMModel(RecurrentModel):
    name: ClassVar[str] = "lstm"
    cell: ClassVar[Literal["gru", "lstm"]] = "lstm"
    tied_output: ClassVar[bool] = False
