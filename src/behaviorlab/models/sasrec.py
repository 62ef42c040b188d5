"""SASRec (Kang & McAuley, ICDM 2018): a causal Transformer over the history.

    x_t = e(a_t) + p_t                       action + learned position embedding, [B, L, D]
    x   = Dropout(LayerNorm(x))
    for each of n_layers blocks (post-norm, as in SASRec/RecBole):
        x = LayerNorm(x + Dropout(MultiHeadAttention(x, causal and padding mask)))
        x = LayerNorm(x + Dropout(W2 GELU(W1 x)))
    score(a | history up to t) = x_t . e(a)  (tied output, see neural.py)

Histories are left-padded, so position L-1 always holds the most recent action and a position
embedding means "how many steps ago". Attention uses torch's fused scaled_dot_product_attention;
explanations recompute the last block's attention weights from the predicting position.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from behaviorlab.config import StrictConfig
from behaviorlab.errors import ConfigError
from behaviorlab.models.neural import NeuralModel
from behaviorlab.models.training import NeuralConfig, Windows


class SASRecConfig(NeuralConfig):
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    inner_size: int = Field(256, ge=1)  # width of the feed-forward layer
    attention_dropout: float = Field(0.2, ge=0.0, lt=1.0)
    # Train on batches of windows of similar length (training.length_bucketed), each cut to its longest window:
    # the same windows every epoch, far less padding work on logs of short histories (Beauty: 9 events a user).
    # Off by default: on Beauty an epoch took 55-70 s instead of 135-150 s, but learned less (validation NDCG@10
    # 0.0438 against 0.0514 after 13 epochs), so the time to a given score was about the same (0.0444 at 1,171 s
    # against 0.0451 at 1,255 s; one seed each, contended); not yet a better default.
    length_buckets: bool = False
    # Prediction reads histories shortest first in batches of this many, each cut to its longest history: small
    # batches keep the few long histories from widening the rest (NeuralModel._log_probs).
    eval_batch_size: int = Field(128, ge=1)


class Block(nn.Module):
    """One post-norm Transformer block: causal multi-head self-attention, then a feed-forward layer."""

    def __init__(self, dim: int, heads: int, inner_size: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.n_heads, self.attention_dropout = heads, attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-12)
        self.ff = nn.Sequential(nn.Linear(dim, inner_size), nn.GELU(), nn.Linear(inner_size, dim))
        self.norm2 = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, L, D] -> q, k, v, each [B, H, L, D/H]."""
        b, length, dim = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.n_heads, dim // self.n_heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """x [B, L, D], allowed [B, 1, L, L] (query may attend to key) -> [B, L, D]."""
        q, k, v = self.heads(x)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.attention_dropout if self.training else 0.0)  # [B, H, L, D/H]
        attended = attended.transpose(1, 2).reshape(x.shape)  # [B, L, D]
        x = self.norm1(x + self.dropout(self.out(attended)))
        return self.norm2(x + self.dropout(self.ff(x)))

    def attention_weights(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """The softmax attention [B, H, L, L] that `forward` applies (recomputed for explanations)."""
        q, k, _ = self.heads(x)
        logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        return torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)


class Encoder(nn.Module):
    """Position embeddings and `n_layers` blocks: (x [B, L, D], real [B, L]) -> [B, L, D], causal."""

    def __init__(self, max_len: int, dim: int, n_layers: int, heads: int, inner_size: int, dropout: float,
                 attention_dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"embedding_dim ({dim}) must be a multiple of n_heads ({heads})")
        self.max_len = max_len
        self.position = nn.Embedding(max_len, dim)
        nn.init.normal_(self.position.weight, std=0.02)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, inner_size, dropout, attention_dropout) for _ in range(n_layers))

    def prepare(self, x: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = x.shape[1]
        positions = torch.arange(self.max_len - length, self.max_len, device=x.device)  # the last `length`
        x = self.dropout(self.norm(x + self.position(positions)))  # [B, L, D]
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()  # [L, L]
        # A query sees earlier real events, and always itself (so padding rows never see an empty set).
        allowed = causal & (real[:, None, :] | torch.eye(length, dtype=torch.bool, device=x.device))  # [B, L, L]
        return x, allowed[:, None]  # [B, 1, L, L], broadcast over heads

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        x, allowed = self.prepare(x, real)
        for block in self.blocks:
            x = block(x, allowed)
        return x

    def last_attention(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """[B, L]: the last block's attention from the last position, averaged over heads."""
        x, allowed = self.prepare(x, real)
        for block in self.blocks[:-1]:
            x = block(x, allowed)
        return self.blocks[-1].attention_weights(x, allowed)[:, :, -1, :].mean(dim=1)


class SASRecModel(NeuralModel):
    name: ClassVar[str] = "sasrec"
    config_class: ClassVar[type[StrictConfig]] = SASRecConfig
    config: SASRecConfig
    explanation_method: ClassVar[str] = "attention"
    reads_padding: ClassVar[bool] = False  # real queries never attend to padding keys; positions count from the end

    def training_lengths(self, windows: Windows) -> np.ndarray | None:
        return (windows.inputs != 0).sum(axis=1) if self.config.length_buckets else None

    def build_encoder(self) -> nn.Module:
        c = self.config
        return Encoder(c.max_len, c.embedding_dim, c.n_layers, c.n_heads, c.inner_size, c.dropout, c.attention_dropout)

    def _attributions(self, ids: torch.Tensor, ctx: torch.Tensor, target: int) -> np.ndarray:
        """[L] the last block's attention from the predicting position (the same for every target)."""
        network = self._network()
        network.eval()
        with torch.no_grad():
            weights = network.encoder.last_attention(network.action_embedding(ids), ids != 0)  # [1, L]
        return weights[0].cpu().numpy()
