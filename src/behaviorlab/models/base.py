"""The next-behavior model protocol, and the small base class every model here builds on.

A model learns from an `EventLog` (every prefix of every user's sequence is a training example),
chooses checkpoints on validation examples only, and scores every action of its vocabulary for a
history. Column j of a score matrix always belongs to `vocabulary.actions[j]`.

A saved model is a directory: `model.json` (the manifest: the kind's registry name, the format
version, the config and free-form metadata), `vocabulary.json`, and the model's own state files.
Every saved kind uses this layout, the next-behavior models here and the task models (time-to-next,
next hour bin, daily counts, the anomaly detector), so `registry.load_model` opens any of them. It is
written beside the target and renamed into place, so a reader never sees half a model.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from behaviorlab.atomic import check_output_path
from behaviorlab.config import StrictConfig, parse_config
from behaviorlab.errors import ModelError, NotFittedError
from behaviorlab.schema import Vocabulary

if TYPE_CHECKING:
    from behaviorlab.progress import ProgressReporter
    from behaviorlab.schema import EventLog
    from behaviorlab.sequences import NextEventExamples

FORMAT_VERSION = 1
MANIFEST = "model.json"
VOCABULARY = "vocabulary.json"
TRAIN_DIGEST = "train_digest"  # metadata key: EventLog.digest() of the log the model was fitted on


@runtime_checkable
class NextBehaviorModel(Protocol):
    """What every next-behavior predictor offers (see the module docstring)."""

    name: ClassVar[str]

    def fit(self, train: EventLog, valid: NextEventExamples | None = None, *, warm_start: bool = False,
            progress: ProgressReporter | None = None) -> Self: ...

    def predict_scores(self, examples: NextEventExamples) -> np.ndarray: ...

    def predict_next(self, history: Sequence[str], k: int = 10,
                     context: Mapping[str, str] | None = None) -> list[tuple[str, float]]: ...

    def predict_next_batch(self, histories: Sequence[Sequence[str]], ks: Sequence[int],
                           contexts: Sequence[Mapping[str, str] | None] | None = None) -> list[list[tuple[str, float]]]: ...

    def score(self, history: Sequence[str], next_action: str, context: Mapping[str, str] | None = None) -> float: ...

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path) -> Self: ...


@runtime_checkable
class CountsFailures(Protocol):
    """A model whose single predictions can fail (an LLM's unusable answer): a failed example's scores
    stay flat, which the ranking metrics count as a miss, and the model counts the failures.

    `failure_report()` gives {"requests": predictions asked for, "failures": how many failed, then one
    count per failure kind} over every prediction since the model was created or loaded.
    """

    def failure_report(self) -> dict[str, int]: ...


class SequenceModel(ABC):
    """The base of the next-behavior models (a NextBehaviorModel: it scores the action that follows a
    sequence): vocabulary handling, top-k, scoring, and the saved-directory layout.

    A subclass sets `name` and `config_class`, implements `fit`, `_log_probs` (log-probabilities
    [N, V] for N histories) and `_state_files` / `_restore_state` for persistence.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[StrictConfig]]

    def __init__(self, config: StrictConfig | None = None) -> None:
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise ModelError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.vocabulary_: Vocabulary | None = None
        # Free-form JSON facts saved with the model (e.g. the data and split it was trained on).
        self.metadata_: dict[str, Any] = {}

    # -- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def fit(self, train: EventLog, valid: NextEventExamples | None = None, *, warm_start: bool = False,
            progress: ProgressReporter | None = None) -> Self: ...

    @abstractmethod
    def _log_probs(self, histories: Sequence[Sequence[str]], context: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """float32 [N, V] log-probabilities of each action following each history."""

    @abstractmethod
    def _state_files(self) -> dict[str, bytes]:
        """The learned state as named files (besides the manifest and the vocabulary)."""

    @abstractmethod
    def _restore_state(self, directory: Path) -> None:
        """Read back what `_state_files` wrote; the vocabulary is already restored."""

    # -- shared behaviour ---------------------------------------------------------------------
    @property
    def vocabulary(self) -> Vocabulary:
        if self.vocabulary_ is None:
            raise NotFittedError(self.name)
        return self.vocabulary_

    def _adopt_vocabulary(self, train: EventLog, warm_start: bool) -> Vocabulary:
        """Fix the vocabulary at the first fit; a warm start must see the same vocabulary."""
        if warm_start:
            fitted = self.vocabulary
            if train.vocabulary.actions != fitted.actions:
                raise ModelError(
                    "warm_start needs the same action vocabulary as the first fit",
                    hint="Build both logs with the domain's full vocabulary (EventLog(..., vocabulary=...)).",
                )
            return fitted
        self.vocabulary_ = train.vocabulary
        return train.vocabulary

    def unknown_actions(self, actions: Sequence[str]) -> list[str]:
        """The distinct actions of `actions` the model has never heard of, sorted."""
        vocabulary = self.vocabulary
        return sorted({a for a in actions if a not in vocabulary})

    def check_known(self, actions: Sequence[str]) -> None:
        """Raise one ModelError naming every action the model has never heard of."""
        unknown = self.unknown_actions(actions)
        if unknown:
            raise ModelError(
                f"{len(unknown)} actions are not in the model's vocabulary: {unknown[:10]}",
                hint="Use actions from the training data's vocabulary (see the model's vocabulary.json).",
            )

    def context_values(self) -> Mapping[str, Sequence[str]] | None:
        """The context this model reads: column -> the values it learned; {} reads none; None takes any text."""
        return {}

    def check_context(self, context: Mapping[str, str] | None) -> None:
        """Raise one ModelError for context keys the model does not read or values it never saw in training.

        A column left out is fine (it is then unknown); a request's context is checked, a split's is not
        (unseen values in data are expected and map to 'unknown').
        """
        accepted = self.context_values()
        if not context or accepted is None:
            return
        if not accepted:
            raise ModelError(f"The {self.name} model reads no context, but got {sorted(context)}",
                             hint="Drop the context, or train a neural model with context_columns (e.g. weekday, hour_bin).")
        problems = [f"it reads no {key!r}" for key in context if key not in accepted]
        problems += [f"{key}={value!r} never occurs in its training data" for key, value in context.items()
                     if key in accepted and str(value) not in accepted[key]]
        if problems:
            known = "; ".join(f"{key}: {', '.join(values[:24])}{' ...' if len(values) > 24 else ''}"
                              for key, values in accepted.items())
            raise ModelError(f"Invalid context for the {self.name} model: {'; '.join(problems)}", hint=f"Known values: {known}.")

    def predict_scores(self, examples: NextEventExamples) -> np.ndarray:
        """float32 [N, V]: log-probabilities of every action for every example's history."""
        self.check_known([a for history in examples.histories for a in history])
        if not len(examples):
            return np.zeros((0, len(self.vocabulary)), dtype=np.float32)
        return self._log_probs(examples.histories, examples.context).astype(np.float32, copy=False)

    def _single(self, history: Sequence[str], context: Mapping[str, str] | None) -> np.ndarray:
        self.check_known(history)
        self.check_context(context)
        return self._log_probs([list(history)], {key: [value] for key, value in (context or {}).items()})[0]

    def predict_next(self, history: Sequence[str], k: int = 10,
                     context: Mapping[str, str] | None = None) -> list[tuple[str, float]]:
        """The k most likely next actions with their probabilities, most likely first."""
        return self.predict_next_batch([history], [k], [context])[0]

    def predict_next_batch(self, histories: Sequence[Sequence[str]], ks: Sequence[int],
                           contexts: Sequence[Mapping[str, str] | None] | None = None) -> list[list[tuple[str, float]]]:
        """`predict_next` for N histories in one forward pass: history i gets its ks[i] most likely next actions.

        Every history and context is checked first (one ModelError for all unknown actions); a context
        column that some requests leave out is None (unknown) for them.
        """
        contexts = list(contexts) if contexts is not None else [None] * len(histories)
        if not len(ks) == len(contexts) == len(histories):
            raise ModelError(f"predict_next_batch got {len(histories)} histories, {len(ks)} ks and {len(contexts)} contexts",
                             hint="Give one k and one context (or None) per history.")
        small = sorted({k for k in ks if k < 1})
        if small:
            raise ModelError(f"k must be at least 1, got {small}")
        self.check_known([a for history in histories for a in history])
        for context in contexts:
            self.check_context(context)
        columns = sorted({key for context in contexts if context for key in context})
        values = {key: [(context or {}).get(key) for context in contexts] for key in columns}
        log_probs = self._log_probs([list(h) for h in histories], values)  # [N, V]
        ranked = []
        for row, k in zip(log_probs, ks, strict=True):
            top = np.argsort(-row, kind="stable")[:k]
            ranked.append([(self.vocabulary.actions[j], float(np.exp(row[j]))) for j in top])
        return ranked

    def score(self, history: Sequence[str], next_action: str, context: Mapping[str, str] | None = None) -> float:
        """log p(next_action | history)."""
        self.check_known([next_action])
        return float(self._single(history, context)[self.vocabulary.column_of(next_action)])

    def files(self) -> dict[str, bytes]:
        """The saved directory's files by name (what `save` writes)."""
        files = manifest_file(self.name, self.config, self.metadata_)
        files[VOCABULARY] = self.vocabulary.to_json().encode()
        files.update(self._state_files())
        return files

    def save(self, path: str | Path) -> None:
        write_directory_atomic(path, self.files())

    @classmethod
    def load(cls, path: str | Path) -> Self:
        directory, manifest = open_saved(path, cls.name)
        model = cls(parse_config(cls.config_class, manifest.get("config", {}), where=f"config in {directory / MANIFEST}"))
        model.vocabulary_ = read_vocabulary(directory)
        model.metadata_ = dict(manifest.get("metadata") or {})
        model._restore_state(directory)
        return model


def log_softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of a [N, V] array, computed stably in float64."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def manifest_file(name: str, config: StrictConfig, metadata: Mapping[str, Any], **state: Any) -> dict[str, bytes]:
    """{MANIFEST: the manifest} of a saved directory of kind `name`; `state` adds small JSON facts of the kind."""
    manifest = {"name": name, "format_version": FORMAT_VERSION, "config": config.model_dump(mode="json"),
                "metadata": dict(metadata), **state}
    return {MANIFEST: json.dumps(manifest, indent=2).encode()}


def open_saved(path: str | Path, name: str) -> tuple[Path, dict[str, Any]]:
    """(directory, manifest) of a saved directory that must hold the kind `name`."""
    directory = Path(path)
    manifest = read_manifest(directory)
    if manifest["name"] != name:
        raise ModelError(f"{directory} holds a '{manifest['name']}' model, not '{name}'",
                         hint="Load it with behaviorlab.models.registry.load_model(path).")
    return directory, manifest


def read_vocabulary(directory: Path) -> Vocabulary:
    return Vocabulary.from_json((directory / VOCABULARY).read_text(encoding="utf-8"))


# Layouts that older versions of behaviorlab wrote, by a file only they have: what they hold and how to
# make them again.
OLDER_LAYOUTS = {
    "config.json": ("a time-to-next or next-hour-bin model", "`behaviorlab timing gaps --out` or `timing hour-bin --out`"),
    "detector.json": ("an anomaly detector", "`behaviorlab anomaly train --out`"),
}


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a saved model directory, checked for the keys this version writes."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        older = next((layout for file, layout in OLDER_LAYOUTS.items() if (directory / file).is_file()), None)
        if older is not None:
            raise ModelError(f"{directory} holds {older[0]} saved by an older version of behaviorlab (no {MANIFEST})",
                             hint=f"Re-train it with {older[1]}: this version saves every model with a {MANIFEST} manifest.")
        unfinished = any(directory.glob("*.pt"))  # a training checkpoint: the run stopped before saving
        raise ModelError(f"{directory} is not a saved model (no {MANIFEST})"
                         + ("; it holds the checkpoint of an unfinished training run" if unfinished else ""),
                         hint="Finish it with the same training command and --resume." if unfinished
                         else "Pass the directory written by a training command's --out (e.g. `behaviorlab train --out`).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{manifest_path} is not valid JSON: {exc}", hint="Re-train the model; the file is damaged.") from exc
    if not isinstance(manifest, dict) or "name" not in manifest:
        raise ModelError(f"{manifest_path} has no model name", hint="Re-train the model; the file is damaged.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{directory} holds a '{manifest['name']}' model in format version {manifest.get('format_version')}; "
                         f"this version of behaviorlab reads format {FORMAT_VERSION}",
                         hint="Open it with the behaviorlab version that saved it, or re-train the model with this one.")
    return manifest


def write_directory_atomic(path: str | Path, files: Mapping[str, bytes]) -> None:
    """Write `files` into a fresh directory beside `path`, then swap it into place.

    An existing directory at `path` is only replaced once the new one is complete; if anything
    fails, `path` is left as it was.
    """
    target = check_output_path(path, directory=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A plain mkdir under a unique name, not mkdtemp: the saved model gets the umask's mode (mkdtemp's
    # 0700 would hide it from other users and services).
    staging = target.parent / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    try:
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)  # a name may hold a folder: "model/model.json"
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if target.exists():
            os.replace(target, old)
        try:
            os.replace(staging, target)
        except OSError:
            if old.exists():
                os.replace(old, target)  # put the previous model back
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
