"""MiniLM text embeddings (offline, from the installed package) and the action-embedding init."""

from __future__ import annotations

import numpy as np
import pytest

from behaviorlab.models.registry import create_model
from behaviorlab.models.text_embeddings import EMBEDDING_DIM, action_embedding_init, embed_texts
from behaviorlab.schema import Vocabulary
from behaviorlab.sequences import leave_one_out

# Loading sentence-transformers and MiniLM takes ~10-20 s on the 2-core machine (once per process).
pytestmark = pytest.mark.slow


def test_embeddings_are_unit_vectors_that_reflect_meaning():
    vectors = embed_texts(["turn the living room light on", "switch on the lamp in the lounge", "quarterly stock market report"])
    assert vectors.shape == (3, EMBEDDING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3


@pytest.mark.parametrize("dim", [4, 16])  # fewer and more dimensions than the 6 actions span
def test_action_init_keeps_similar_descriptions_close(dim):
    descriptions = {"on": "light switch on", "on2": "lamp turned on", "off": "light switch off",
                    "tv": "television power on", "door": "front door lock locked", "cam": "camera motion detected"}
    vocabulary = Vocabulary(tuple(descriptions), descriptions)
    table = action_embedding_init(vocabulary, dim, seed=0, std=0.02)
    assert table.shape == (6, dim) and table.dtype == np.float32
    assert table.std() == pytest.approx(0.02, rel=1e-3)
    distance = lambda a, b: np.linalg.norm(table[vocabulary.id_of(a) - 1] - table[vocabulary.id_of(b) - 1])
    assert distance("on", "on2") < distance("on", "door")
    np.testing.assert_array_equal(table, action_embedding_init(vocabulary, dim, seed=0, std=0.02))  # deterministic


def test_frozen_text_init_stays_fixed_and_finetune_moves(chain_log):
    split = leave_one_out(chain_log(n_users=30, length=10))
    config = {"embedding_dim": 8, "max_len": 4, "epochs": 2, "threads": 1, "device": "cpu"}
    init = action_embedding_init(split.train.vocabulary, 8, seed=0, std=0.02)
    frozen = create_model("gru4rec", text_init="frozen", **config).fit(split.train, split.valid)
    np.testing.assert_allclose(frozen.network_.action_embedding.weight[1:].detach().numpy(), init, atol=1e-7)
    tuned = create_model("gru4rec", text_init="finetune", **config).fit(split.train, split.valid)
    assert np.abs(tuned.network_.action_embedding.weight[1:].detach().numpy() - init).max() > 1e-4
