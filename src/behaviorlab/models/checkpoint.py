"""Training checkpoints: an interrupted torch training run resumes at its next batch, exactly.

A checkpoint is one file, rewritten atomically after every epoch and every so often inside one, holding
everything the next batch depends on (the training loop in training.py decides what that is) together with the identity of the
run it belongs to: the model name, its whole config, and fingerprints of the data. It resumes that
run only; a checkpoint of any other run is refused, naming what differs.

The file is a torch archive read back in weights_only mode: it may hold tensors and plain values
(dicts, lists, numbers, strings), never code, so loading a checkpoint cannot run anything.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from behaviorlab.atomic import atomic_path
from behaviorlab.errors import ModelError
from behaviorlab.models.settings import RESUMABLE_WITH_CHANGES, TrainSettings

CHECKPOINT_FORMAT = 3  # 2: the loop's counters live in its TrainingRecord; 3: and its position inside an epoch


def fingerprint(*parts: np.ndarray | bytes) -> str:
    """A cheap identity of arrays and byte strings: dtypes, shapes and a BLAKE2 hash of the contents."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            part = np.ascontiguousarray(part)
            digest.update(f"array {part.dtype.str} {part.shape}|".encode())
            digest.update(part.data)
        else:
            digest.update(f"bytes {len(part)}|".encode())
            digest.update(part)
    return digest.hexdigest()


def run_identity(model: str, config: TrainSettings, training: Sequence[np.ndarray | bytes],
                 validation: Sequence[np.ndarray | bytes] | None, start: str = "fresh") -> dict[str, Any]:
    """What makes two fits the same run: the model, its config, fingerprints of the data, and the start.

    The settings that decide only when to stop (RESUMABLE_WITH_CHANGES) are left out, so a run may be
    resumed with a larger budget. `start` is "fresh", or "warm: " and a fingerprint of the starting weights."""
    return {
        "model": model,
        "config": config.model_dump(mode="json", exclude=set(RESUMABLE_WITH_CHANGES)),
        "training data": fingerprint(*training),
        "validation data": "none" if validation is None else fingerprint(*validation),
        "start": start,
    }


def _differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two identities, config keys by name (e.g. "config (learning_rate)")."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            differences.append(f"{key} ({', '.join(keys)})")
        else:
            differences.append(key)
    return differences


@dataclass(frozen=True)
class Checkpoint:
    """Where one training run keeps its state between batches, and which run that is.

    `identity` is JSON-like (strings, numbers, lists, dicts): e.g. {"model": "sasrec", "config": {...},
    "training data": fingerprint(...)}. Two runs with equal identities compute the same epochs.
    """

    path: Path
    identity: Mapping[str, Any]

    def load(self) -> dict[str, Any] | None:
        """The saved training state, or None when the file does not exist yet."""
        if not self.path.exists():
            return None
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
            raise ModelError(f"{self.path} is not a readable training checkpoint: {exc}",
                             hint="Delete it to start the training afresh.") from exc
        if not isinstance(saved, dict) or not isinstance(saved.get("format"), int):
            raise ModelError(f"{self.path} is not a training checkpoint", hint="Delete it to start the training afresh.")
        if saved["format"] != CHECKPOINT_FORMAT:
            raise ModelError(f"{self.path} is a training checkpoint of format {saved['format']}, written by "
                             f"{'an older' if saved['format'] < CHECKPOINT_FORMAT else 'a newer'} behaviorlab; this one "
                             f"continues format {CHECKPOINT_FORMAT} only",
                             hint="Delete it to start the training afresh, or continue it with the behaviorlab "
                                  "version that wrote it.")
        differences = _differences(saved["identity"], self.identity)
        if differences:
            raise ModelError(f"{self.path} belongs to another training run: its {'; '.join(differences)} differ",
                             hint="Resume with the same model, config and data as the interrupted run, "
                                  "or delete the checkpoint to start afresh.")
        return saved["state"]

    def save(self, state: Mapping[str, Any]) -> None:
        """Replace the file with `state` in one rename: an interruption leaves the previous save's."""
        with atomic_path(self.path) as tmp:
            torch.save({"format": CHECKPOINT_FORMAT, "identity": dict(self.identity), "state": dict(state)}, tmp)
