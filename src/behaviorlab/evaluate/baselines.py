"""The Markov-chain baseline for synthetic data: what a cheap statistical generator fitted to the same
real (sub)training data gives, so that the LLM's own contribution to a scenario is visible.

Actions follow `models.markov.MarkovModel` (the project's one Markov chain); the first action of each
sequence is drawn from the real first actions. Every categorical extra (e.g. SmartThings' weekday,
hour bin, device) is drawn for each event from its empirical distribution given the action. Times:
positions 0..L-1, or, for timestamp logs, the event times of a randomly drawn real sequence (the
baseline models behaviour, not clocks).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import polars as pl
from pydantic import Field

from behaviorlab.config import StrictConfig
from behaviorlab.errors import EvaluationError
from behaviorlab.schema import ACTION, POSITION, TIMESTAMP, USER, EventLog


class MarkovBaselineConfig(StrictConfig):
    order: int = Field(1, ge=1, le=4)
    unigram_alpha: float = Field(0.01, gt=0.0)  # small: unseen actions stay rare in the samples
    seed: int = 0
    user_prefix: str = "markov-"


def _categorical_extras(log: EventLog) -> list[str]:
    return [c for c, kind in log.schema.extras.items() if kind in ("str", "bool", "int")]


def markov_synthetic(train: EventLog, lengths: Sequence[int], config: MarkovBaselineConfig | None = None) -> EventLog:
    """One synthetic sequence per entry of `lengths` (e.g. the LLM run's sequence lengths), with the
    same schema and vocabulary as `train`."""
    from behaviorlab.models.markov import MarkovConfig, MarkovModel

    config = config or MarkovBaselineConfig()
    if not lengths or min(lengths) < 1:
        raise EvaluationError("The Markov baseline needs at least one sequence length >= 1")
    real = train.sorted()
    real_seqs = list(real.action_sequences().values())
    if not real_seqs:
        raise EvaluationError("Cannot fit the Markov baseline on an empty log", hint="Pass real training events.")
    chain = MarkovModel(MarkovConfig(order=config.order, unigram_alpha=config.unigram_alpha)).fit(train)
    vocabulary = train.vocabulary
    rng = np.random.default_rng(config.seed)

    first = Counter(s[0] for s in real_seqs)
    first_actions = list(first)
    first_p = np.array([first[a] for a in first_actions], dtype=np.float64)
    first_p /= first_p.sum()

    extras = _categorical_extras(train)
    extra_given_action: dict[str, list[tuple]] = defaultdict(list)
    for row in real.frame.select(ACTION, *extras).iter_rows():
        extra_given_action[row[0]].append(row[1:])

    times: list[list] = []
    if train.time_column == TIMESTAMP:
        grouped = real.frame.group_by(USER, maintain_order=True).agg(pl.col(TIMESTAMP))
        times = grouped.get_column(TIMESTAMP).to_list()

    columns: dict[str, list] = {USER: [], train.time_column: [], ACTION: []} | {c: [] for c in extras}
    for i, length in enumerate(lengths):
        seq = [first_actions[rng.choice(len(first_actions), p=first_p)]]
        while len(seq) < length:
            p = chain.transition_probabilities(seq)
            seq.append(vocabulary.actions[rng.choice(len(p), p=p / p.sum())])
        if train.time_column == POSITION:
            stamps: list = list(range(length))
        else:
            source = times[rng.integers(len(times))]
            step = (source[-1] - source[-2]) if len(source) > 1 else np.timedelta64(1, "h").item()
            stamps = [source[j] if j < len(source) else source[-1] + step * (j - len(source) + 1) for j in range(length)]
        for action, stamp in zip(seq, stamps):
            columns[USER].append(f"{config.user_prefix}{i}")
            columns[train.time_column].append(stamp)
            columns[ACTION].append(action)
            pool = extra_given_action.get(action)  # None for an action never seen in train (smoothing)
            drawn = pool[rng.integers(len(pool))] if pool else (None,) * len(extras)
            for column, value in zip(extras, drawn):
                columns[column].append(value)
    for column in (c for c, kind in train.schema.extras.items() if c not in extras):
        columns[column] = [None] * len(columns[USER])  # float/datetime extras are not modelled
    frame = pl.DataFrame(columns, schema=train.schema.dtypes())
    return EventLog(frame, train.schema, vocabulary)
