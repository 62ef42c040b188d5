"""Order-k Markov chain with interpolated absolute-discount back-off: the strong, cheap baseline.

For a context c of n previous actions (n = k, k-1, ..., 1) and an action a:

    p_n(a | c) = max(N(c, a) - d, 0) / N(c)  +  d * T(c) / N(c) * p_{n-1}(a | c without its oldest action)

where N(c, a) counts c followed by a in training, N(c) = sum_a N(c, a), T(c) is the number of
distinct actions seen after c, and d the discount. A context never seen backs off entirely to
p_{n-1}. The base p_0 is the add-alpha smoothed unigram, so every action keeps some probability
and each p_n sums to one over the vocabulary (which makes `log_likelihood` a proper score for
anomaly and outlier filters).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from pydantic import Field

from behaviorlab.config import StrictConfig
from behaviorlab.errors import ModelError, NotFittedError
from behaviorlab.models.base import SequenceModel
from behaviorlab.models.explain import Contribution, Explanation

if TYPE_CHECKING:
    from behaviorlab.progress import ProgressReporter
    from behaviorlab.schema import EventLog
    from behaviorlab.sequences import NextEventExamples

STATE_FILE = "counts.json"


class MarkovConfig(StrictConfig):
    order: int = Field(2, ge=1, le=8)
    discount: float = Field(0.75, gt=0.0, lt=1.0)  # absolute discount d of the back-off
    unigram_alpha: float = Field(1.0, gt=0.0)  # add-alpha smoothing of the order-0 distribution
    seed: int = 0  # no randomness; kept so every model config has a seed


class MarkovModel(SequenceModel):
    name: ClassVar[str] = "markov"
    config_class: ClassVar[type[StrictConfig]] = MarkovConfig
    config: MarkovConfig

    def __init__(self, config: MarkovConfig | None = None) -> None:
        super().__init__(config)
        self.unigram_counts_: np.ndarray | None = None  # [V] float64
        # context (tuple of column indices, oldest first) -> Counter(next column index -> count)
        self.transitions_: dict[tuple[int, ...], Counter[int]] = {}

    # -- learning -------------------------------------------------------------------------------
    def fit(self, train: EventLog, valid: NextEventExamples | None = None, *, warm_start: bool = False,
            progress: ProgressReporter | None = None) -> Self:
        """Count every transition of every order; a warm start adds to the counts it already has.

        There is nothing to tune iteratively, so `valid` is not used.
        """
        vocabulary = self._adopt_vocabulary(train, warm_start)
        if not warm_start or self.unigram_counts_ is None:
            self.unigram_counts_ = np.zeros(len(vocabulary), dtype=np.float64)
            self.transitions_ = defaultdict(Counter)
        else:
            self.transitions_ = defaultdict(Counter, self.transitions_)
        sequences = train.action_sequences()
        for done, actions in enumerate(sequences.values(), start=1):
            columns = vocabulary.columns_of(actions)
            np.add.at(self.unigram_counts_, columns, 1.0)
            for i, current in enumerate(columns):
                for n in range(1, min(self.config.order, i) + 1):
                    self.transitions_[tuple(columns[i - n:i])][current] += 1
            if progress is not None:
                progress(done, len(sequences), None)
        self.transitions_ = dict(self.transitions_)
        return self

    # -- probabilities --------------------------------------------------------------------------
    def _unigram(self) -> np.ndarray:
        if self.unigram_counts_ is None:
            raise NotFittedError(self.name)
        smoothed = self.unigram_counts_ + self.config.unigram_alpha
        return smoothed / smoothed.sum()

    def _columns(self, history: Sequence[str]) -> list[int]:
        return self.vocabulary.columns_of(list(history)[-self.config.order:])

    def _distribution(self, context: list[int]) -> np.ndarray:
        """p_n(. | context) over the vocabulary, n = len(context), by the recursion in the docstring."""
        probabilities = self._unigram()
        d = self.config.discount
        for n in range(1, len(context) + 1):  # from the shortest context up to the full one
            counts = self.transitions_.get(tuple(context[-n:]))
            if not counts:
                continue
            total = sum(counts.values())
            mass_left = d * len(counts) / total
            discounted = np.zeros_like(probabilities)
            discounted[list(counts)] = np.maximum(np.fromiter(counts.values(), dtype=np.float64) - d, 0.0) / total
            probabilities = discounted + mass_left * probabilities
        return probabilities

    def transition_probabilities(self, history: Sequence[str]) -> np.ndarray:
        """float64 [V]: p(next action | the last `order` actions of history), column j = actions[j]."""
        self.check_known(history)
        return self._distribution(self._columns(history))

    def log_likelihood(self, sequence: Sequence[str]) -> float:
        """Sum over events of log p(event | its prefix); the first event is scored by the unigram."""
        self.check_known(sequence)
        columns = self.vocabulary.columns_of(sequence)
        total = 0.0
        for i, current in enumerate(columns):
            context = columns[max(0, i - self.config.order):i]
            total += float(np.log(self._distribution(context)[current]))
        return total

    def _log_probs(self, histories: Sequence[Sequence[str]], context: Mapping[str, Sequence[Any]]) -> np.ndarray:
        # [N, V]; the event context (weekday, hour bin) is not part of a Markov chain's state.
        return np.log(np.stack([self._distribution(self._columns(h)) for h in histories])).astype(np.float32)

    # -- explanation ----------------------------------------------------------------------------
    def explain(self, history: Sequence[str], action: str, context: Mapping[str, str] | None = None) -> Explanation:
        """Which past events (the back-off contexts) gave `action` its probability, with their counts.

        Order n's discounted term is credited to the n-th last event, the one that order adds to
        the context; what the unigram contributes is credited to no event (plain popularity).
        """
        self.check_known([*history, action])
        target = self.vocabulary.column_of(action)
        context_columns = self._columns(history)
        d = self.config.discount
        terms: list[tuple[int, float, str]] = []  # (order, probability share, count note)
        scale = 1.0  # product of the back-off weights of the longer contexts already applied
        for n in range(len(context_columns), 0, -1):  # longest context first
            counts = self.transitions_.get(tuple(context_columns[-n:]))
            if not counts:
                continue
            total = sum(counts.values())
            share = scale * max(counts.get(target, 0) - d, 0.0) / total
            terms.append((n, share, f"seen {counts.get(target, 0)} times after the last {n} event{'s' if n > 1 else ''}, of {total}"))
            scale *= d * len(counts) / total
        unigram_share = scale * self._unigram()[target]
        contributions = [
            Contribution(position=len(history) - n, action=history[len(history) - n], weight=share, detail=note)
            for n, share, note in terms
        ]
        return Explanation(
            action=action, probability=float(sum(share for _, share, _ in terms) + unigram_share), method="transition counts",
            contributions=contributions,
            note=f"{unigram_share:.4f} of the probability comes from overall popularity (no history).",
        )

    # -- persistence ----------------------------------------------------------------------------
    def _state_files(self) -> dict[str, bytes]:
        if self.unigram_counts_ is None:
            raise NotFittedError(self.name)
        state = {
            "unigram_counts": self.unigram_counts_.tolist(),
            "transitions": [[list(ctx), list(counts), list(counts.values())] for ctx, counts in self.transitions_.items()],
        }
        return {STATE_FILE: json.dumps(state).encode()}

    def _restore_state(self, directory: Path) -> None:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        self.unigram_counts_ = np.asarray(state["unigram_counts"], dtype=np.float64)
        if self.unigram_counts_.shape != (len(self.vocabulary),):
            raise ModelError(f"{directory / STATE_FILE} does not match the vocabulary", hint="Re-train the model.")
        self.transitions_ = {tuple(ctx): Counter(dict(zip(nexts, counts, strict=True))) for ctx, nexts, counts in state["transitions"]}
