"""SASRec's encoder on its own: the causal contract the next-action loss relies on."""

from __future__ import annotations

import numpy as np
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


def test_a_prediction_does_not_depend_on_the_other_histories_of_its_batch(chain_log, monkeypatch):
    """SASRec drops a batch's all-padding columns (reads_padding False): a short history scores the same alone,
    beside a long one, and with every column of max_len kept."""
    from behaviorlab.models.registry import create_model

    model = create_model("sasrec", epochs=1, embedding_dim=16, inner_size=16, max_len=12, threads=1)
    model.fit(chain_log(n_users=20, length=14))
    short, long = ["a00", "a01"], [f"a{i % 12:02d}" for i in range(15)]  # the long one is cut to max_len
    alone = model._log_probs([short], {})[0]                  # [V], from 2 columns
    beside = model._log_probs([short, long], {})[0]           # [V], from 12 columns
    np.testing.assert_allclose(alone, beside, rtol=0, atol=1e-5)
    monkeypatch.setattr(type(model), "reads_padding", True)  # every column of max_len kept
    untrimmed = model._log_probs([short], {})[0]
    monkeypatch.undo()
    np.testing.assert_allclose(alone, untrimmed, rtol=0, atol=1e-5)
    assert model.predict_next_batch([short, long], [3, 3])[0] == model.predict_next(short, 3)
