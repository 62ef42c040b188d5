"""Popularity: every history gets the same, add-alpha smoothed, action frequencies. The floor to beat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from pydantic import Field

from behaviorlab.config import StrictConfig
from behaviorlab.errors import ModelError, NotFittedError
from behaviorlab.models.base import SequenceModel

if TYPE_CHECKING:
    from behaviorlab.progress import ProgressReporter
    from behaviorlab.schema import EventLog
    from behaviorlab.sequences import NextEventExamples

STATE_FILE = "counts.npy"


class PopularityConfig(StrictConfig):
    alpha: float = Field(1.0, gt=0.0)  # add-alpha smoothing, so unseen actions keep a finite log-probability
    seed: int = 0  # no randomness; kept so every model config has a seed


class PopularityModel(SequenceModel):
    name: ClassVar[str] = "popularity"
    config_class: ClassVar[type[StrictConfig]] = PopularityConfig
    config: PopularityConfig

    def __init__(self, config: PopularityConfig | None = None) -> None:
        super().__init__(config)
        self.counts_: np.ndarray | None = None  # [V] float64 event counts

    def fit(self, train: EventLog, valid: NextEventExamples | None = None, *, warm_start: bool = False,
            progress: ProgressReporter | None = None) -> Self:
        vocabulary = self._adopt_vocabulary(train, warm_start)
        if not warm_start or self.counts_ is None:
            self.counts_ = np.zeros(len(vocabulary), dtype=np.float64)
        columns = vocabulary.columns_of(train.frame.get_column("action").to_list())
        np.add.at(self.counts_, columns, 1.0)
        if progress is not None:
            progress(1, 1, None)
        return self

    def _log_probs(self, histories: Sequence[Sequence[str]], context: Mapping[str, Sequence[Any]]) -> np.ndarray:
        if self.counts_ is None:
            raise NotFittedError(self.name)
        smoothed = self.counts_ + self.config.alpha
        log_probs = np.log(smoothed / smoothed.sum()).astype(np.float32)  # [V]
        return np.broadcast_to(log_probs, (len(histories), log_probs.size)).copy()  # [N, V]

    def _state_files(self) -> dict[str, bytes]:
        if self.counts_ is None:
            raise NotFittedError(self.name)
        return {STATE_FILE: _npy_bytes(self.counts_)}

    def _restore_state(self, directory: Path) -> None:
        self.counts_ = np.load(directory / STATE_FILE, allow_pickle=False)
        if self.counts_.shape != (len(self.vocabulary),):
            raise ModelError(f"{directory / STATE_FILE} does not match the vocabulary", hint="Re-train the model.")


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
