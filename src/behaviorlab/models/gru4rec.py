"""GRU4Rec (Hidasi et al., ICLR 2016) with a full-vocabulary cross-entropy loss, as in RecBole:
a GRU reads the history; the score of action a after position t is h_t . e(a) (tied output).
Explanations are gradient x input on the history's embeddings.
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


class GRU4RecConfig(NeuralConfig):
    hidden_size: int = Field(128, ge=1)
    n_layers: int = Field(1, ge=1)


class GRU4RecModel(NeuralModel):
    name: ClassVar[str] = "gru4rec"
    config_class: ClassVar[type[StrictConfig]] = GRU4RecConfig
    config: GRU4RecConfig

    def build_encoder(self) -> nn.Module:
        c = self.config
        return build_recurrent_encoder("gru", c.embedding_dim, c.hidden_size, c.n_layers, c.dropout)
