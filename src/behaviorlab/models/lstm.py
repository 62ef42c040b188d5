"""An LSTM next-action model with its own softmax layer, the classic large-model behavior predictor:
an LSTM reads the history and p(a | history) = softmax(W h_t + b)_a, with W separate from the input
embeddings (untied) and a bias per action that can carry popularity. Explanations are gradient x
input on the history's embeddings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from behaviorlab.config import StrictConfig
from behaviorlab.models.neural import NeuralModel
from behaviorlab.models.recurrent import build_recurrent_encoder
from behaviorlab.models.training import NeuralConfig

if TYPE_CHECKING:
    from torch import nn


class LSTMConfig(NeuralConfig):
    hidden_size: int = Field(128, ge=1)
    n_layers: int = Field(1, ge=1)


class LSTMModel(NeuralModel):
    name: ClassVar[str] = "lstm"
    config_class: ClassVar[type[StrictConfig]] = LSTMConfig
    config: LSTMConfig
    tied_output: ClassVar[bool] = False

    def build_encoder(self) -> nn.Module:
        c = self.config
        return build_recurrent_encoder("lstm", c.embedding_dim, c.hidden_size, c.n_layers, c.dropout)
