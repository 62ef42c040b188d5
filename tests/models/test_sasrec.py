"""SASRec's encoder on its own: the causal contract the next-action loss relies on."""

from __future__ import annotations

import torch

from behaviorlab.models.sasrec import Encoder


def test_a_position_never_sees_the_positions_after_it():
    torch.manual_seed(0)
    length, dim = 7, 16
    encoder = Encoder(max_len=length, dim=dim, n_layers=2, heads=2, inner_size=32, dropout=0.0, attention_dropout=0.0).eval()
    x = torch.randn(3, length, dim)                          # [B, L, D]
    real = torch.ones(3, length, dtype=torch.bool)
    real[0, :2] = False                                      # a left-padded history
    with torch.no_grad():
        before = encoder(x, real)                            # [B, L, D]
        for t in range(length - 1):
            changed = x.clone()
            changed[:, t + 1:] = torch.randn(3, length - t - 1, dim)  # every position after t
            after = encoder(changed, real)
            torch.testing.assert_close(after[:, :t + 1], before[:, :t + 1], rtol=0, atol=1e-6)
            assert not torch.allclose(after[:, t + 1:], before[:, t + 1:])  # the change did reach the later ones
