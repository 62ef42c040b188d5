"""Fidelity: how closely a synthetic EventLog matches a real one, read against a real-vs-real reference.

Every metric is computed twice against the same real target: for the synthetic data, and for a disjoint
real sample of the same size (the reference: the value that sampling noise alone gives). Divergences are Jensen-Shannon in
bits (log base 2), so they lie in [0, 1]: 0 for identical distributions, 1 for disjoint supports.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from scipy import sparse

from behaviorlab.config import StrictConfig
from behaviorlab.errors import EvaluationError
from behaviorlab.schema import ACTION, HOUR_BINS, TIMESTAMP, USER, WEEKDAYS, EventLog

HOUR_BIN_COLUMN = "hour_bin"
NOT_COMPUTED = "not computed"  # a row whose value is NaN starts its description with this, then says why
WEEKDAY_COLUMN = "weekday"


class FidelityConfig(StrictConfig):
    seed: int = 0
    ngram_orders: tuple[int, ...] = (2, 3)
    cv_folds: int = 5
    max_sequences: int = 4000  # per side for the classifier; more adds time, not information


@dataclass(frozen=True)
class MetricRow:
    """One line of an evaluation table: the value, the real-vs-real reference, and which way is good."""

    name: str
    value: float
    reference: float | None
    ideal: str  # "lower", "higher", "0.5" or "1.0": how to read the value
    description: str
    baseline: float | None = None  # the same metric for a baseline generator's data (e.g. a Markov chain)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# --- distributions --------------------------------------------------------------------------------

def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """JSD in bits between two non-negative vectors over the same support (normalised here)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        raise EvaluationError("Cannot compare an empty distribution", hint="Both logs need events for this metric.")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return max(0.0, (kl(p) + kl(q)) / 2)


def counts_jsd(a: Iterable[Hashable], b: Iterable[Hashable]) -> float:
    """JSD (bits) between the empirical distributions of two samples of categories."""
    ca, cb = Counter(a), Counter(b)
    support = sorted(set(ca) | set(cb), key=repr)
    return jensen_shannon(np.array([ca[s] for s in support]), np.array([cb[s] for s in support]))


def ngrams(sequence: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(sequence[i:i + n]) for i in range(len(sequence) - n + 1)]


def sequences_of(log: EventLog) -> list[list[str]]:
    """Each user's actions in time order (one user = one sequence)."""
    return list(log.action_sequences().values())


def hour_bins_of(log: EventLog) -> list[str] | None:
    """The 3-hour bin of every event (None where unknown): the `hour_bin` column, or derived from timestamps;
    None when the log has neither."""
    if HOUR_BIN_COLUMN in log.frame.columns:
        return log.frame.get_column(HOUR_BIN_COLUMN).to_list()
    if log.time_column == TIMESTAMP:
        return [HOUR_BINS[h // 3] for h in log.frame.get_column(TIMESTAMP).dt.hour().to_list()]
    return None


def weekdays_of(log: EventLog) -> list[str] | None:
    if WEEKDAY_COLUMN in log.frame.columns:
        return log.frame.get_column(WEEKDAY_COLUMN).to_list()
    if log.time_column == TIMESTAMP:
        return [WEEKDAYS[d - 1] for d in log.frame.get_column(TIMESTAMP).dt.weekday().to_list()]
    return None


def gap_bins_of(log: EventLog) -> list[int] | None:
    """Inter-event gaps within each user, binned as floor(log2(seconds + 1)); None without timestamps."""
    if log.time_column != TIMESTAMP:
        return None
    gaps = (
        log.frame.sort([USER, TIMESTAMP])
        .select(pl.col(TIMESTAMP).diff().over(USER).dt.total_seconds().alias("gap"))
        .drop_nulls()
        .get_column("gap")
        .to_numpy()
    )
    return [math.floor(math.log2(max(g, 0) + 1)) for g in gaps]


def transition_matrix(seqs: Sequence[Sequence[str]], actions: Sequence[str]) -> np.ndarray:
    """First-order transition counts [A, A]: row = previous action, column = next action."""
    index = {a: i for i, a in enumerate(actions)}
    counts = np.zeros((len(actions), len(actions)), dtype=np.float64)
    for seq in seqs:
        for prev, nxt in itertools.pairwise(seq):
            counts[index[prev], index[nxt]] += 1
    return counts


def transition_distance(real: Sequence[Sequence[str]], synthetic: Sequence[Sequence[str]]) -> float:
    """Mean total-variation distance between the rows of the two transition matrices, weighted by how often
    the real data leaves each action. 0 = same transitions; 1 = no next-action in common (or never seen)."""
    actions = sorted({a for s in real for a in s} | {a for s in synthetic for a in s})
    r, s = transition_matrix(real, actions), transition_matrix(synthetic, actions)
    weights = r.sum(axis=1)
    if weights.sum() == 0:
        raise EvaluationError("The real data has no transitions", hint="Sequences need at least two events.")
    distances = np.ones(len(actions))
    seen = s.sum(axis=1) > 0
    real_rows = r[seen] / np.maximum(r[seen].sum(axis=1, keepdims=True), 1)
    synth_rows = s[seen] / s[seen].sum(axis=1, keepdims=True)
    distances[seen] = 0.5 * np.abs(real_rows - synth_rows).sum(axis=1)
    return float((distances * weights).sum() / weights.sum())


def ngram_overlap(real: Sequence[Sequence[str]], synthetic: Sequence[Sequence[str]], n: int) -> tuple[float, float]:
    """(precision, recall) of n-grams: share of synthetic n-gram occurrences that occur in the real data, and
    share of distinct real n-grams that the synthetic data produces."""
    real_set = {g for s in real for g in ngrams(s, n)}
    synth = [g for s in synthetic for g in ngrams(s, n)]
    if not real_set or not synth:
        return float("nan"), float("nan")
    precision = sum(g in real_set for g in synth) / len(synth)
    recall = len(real_set & set(synth)) / len(real_set)
    return precision, recall


# --- discriminative score -------------------------------------------------------------------------

def sequence_features(logs: Sequence[EventLog]) -> list[sparse.csr_matrix]:
    """Per-sequence features for each log, over a shared column space: action and bigram frequencies
    (normalised by sequence length), log length, hour-bin and weekday histograms where available."""
    per_log = [log.frame.sort([USER, log.time_column], maintain_order=True) for log in logs]
    use_bins = all(hour_bins_of(log) is not None for log in logs)
    use_days = all(weekdays_of(log) is not None for log in logs)
    columns: dict[Hashable, int] = {}
    rows: list[list[dict[int, float]]] = []
    for log, frame in zip(logs, per_log):
        bins = hour_bins_of(log.with_frame(frame)) if use_bins else None
        days = weekdays_of(log.with_frame(frame)) if use_days else None
        users = frame.get_column(USER).to_list()
        actions = frame.get_column(ACTION).to_list()
        log_rows: list[dict[int, float]] = []
        start = 0
        while start < len(users):
            end = start
            while end < len(users) and users[end] == users[start]:
                end += 1
            seq = actions[start:end]
            tokens: list[Hashable] = [("a", a) for a in seq] + [("b", g) for g in ngrams(seq, 2)]
            if bins is not None:
                tokens += [("h", b) for b in bins[start:end]]
            if days is not None:
                tokens += [("d", d) for d in days[start:end]]
            feats: dict[int, float] = {}
            for token, count in Counter(tokens).items():
                feats[columns.setdefault(token, len(columns))] = count / len(seq)
            feats[columns.setdefault(("len",), len(columns))] = math.log(len(seq))
            log_rows.append(feats)
            start = end
        rows.append(log_rows)
    matrices = []
    for log_rows in rows:
        data, indices, indptr = [], [], [0]
        for feats in log_rows:
            indices.extend(feats)
            data.extend(feats.values())
            indptr.append(len(indices))
        matrices.append(sparse.csr_matrix((data, indices, indptr), shape=(len(log_rows), len(columns))))
    return matrices


def discriminative_auc(real: EventLog, synthetic: EventLog, config: FidelityConfig) -> float:
    """Cross-validated ROC AUC of a logistic regression telling real from synthetic sequences (0.5 = cannot)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x_real, x_synth = sequence_features([real, synthetic])
    rng = np.random.default_rng(config.seed)
    size = min(x_real.shape[0], x_synth.shape[0], config.max_sequences)
    if size < config.cv_folds:
        raise EvaluationError(f"Need at least {config.cv_folds} sequences on each side for the classifier, got {size}",
                              hint="Generate more sequences (generate --n-users).")
    x = sparse.vstack([x_real[rng.choice(x_real.shape[0], size, replace=False)],
                       x_synth[rng.choice(x_synth.shape[0], size, replace=False)]]).tocsr()
    y = np.r_[np.ones(size), np.zeros(size)]
    folds = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    scores = cross_val_predict(LogisticRegression(max_iter=2000), x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


# --- the table ------------------------------------------------------------------------------------

def _take_users(log: EventLog, users: list[str]) -> EventLog:
    return log.filter(pl.col(USER).is_in(users))


@dataclass(frozen=True)
class MatchedSamples:
    """A real target, and a real and a synthetic sample of the same number of sequences to compare with it.

    Every size-sensitive metric (n-gram recall, distinct-n, sampling noise in a JSD) then sees the same
    sample size on both sides, so the real sample's value is a fair reference for the synthetic one.
    """

    target: EventLog  # real sequences the samples are compared with
    real: EventLog  # real sequences disjoint from the target
    synthetic: EventLog


def matched_samples(real: EventLog, synthetic: EventLog, seed: int = 0) -> MatchedSamples:
    """Split the real users at random (seeded) into a sample of min(synthetic users, half the real users)
    and the target (the rest); draw a synthetic sample of the same size."""
    real_users, synth_users = sorted(real.users()), sorted(synthetic.users())
    if len(real_users) < 2 or not synth_users:
        raise EvaluationError("Need at least two real users and one synthetic user to compare",
                              hint="Check that neither log is empty.")
    size = min(len(synth_users), len(real_users) // 2)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real_users))
    sample = [real_users[i] for i in order[:size]]
    target = [real_users[i] for i in order[size:]]
    synth_sample = [synth_users[i] for i in rng.permutation(len(synth_users))[:size]]
    return MatchedSamples(_take_users(real, target), _take_users(real, sample), _take_users(synthetic, synth_sample))


def _known(values: list | None) -> list:
    return [v for v in values or [] if v is not None]


def fidelity_values(real: EventLog, synthetic: EventLog, config: FidelityConfig) -> dict[str, float]:
    """Every fidelity metric of `synthetic` against `real`; metrics a log cannot support are left out."""
    real_seqs, synth_seqs = sequences_of(real), sequences_of(synthetic)
    values = {
        "action_jsd": counts_jsd(real.frame.get_column(ACTION).to_list(), synthetic.frame.get_column(ACTION).to_list()),
        "length_jsd": counts_jsd([len(s) for s in real_seqs], [len(s) for s in synth_seqs]),
        "transition_distance": transition_distance(real_seqs, synth_seqs),
    }
    for name, extract in (("hour_bin_jsd", hour_bins_of), ("weekday_jsd", weekdays_of), ("gap_jsd", gap_bins_of)):
        a, b = _known(extract(real)), _known(extract(synthetic))
        if a and b:
            values[name] = counts_jsd(a, b)
    for n in config.ngram_orders:
        precision, recall = ngram_overlap(real_seqs, synth_seqs, n)
        values[f"ngram{n}_precision"] = precision
        values[f"ngram{n}_recall"] = recall
    if min(real.n_users, synthetic.n_users) >= config.cv_folds:  # else the row says why it is missing
        values["discriminator_auc"] = discriminative_auc(real, synthetic, config)
    return values


_DESCRIPTIONS = {
    "action_jsd": ("lower", "JSD (bits) of the action marginal"),
    "hour_bin_jsd": ("lower", "JSD (bits) of the 3-hour-bin distribution"),
    "weekday_jsd": ("lower", "JSD (bits) of the weekday distribution"),
    "length_jsd": ("lower", "JSD (bits) of the sequence-length distribution"),
    "gap_jsd": ("lower", "JSD (bits) of inter-event gaps (log2-second bins)"),
    "transition_distance": ("lower", "weighted mean total-variation distance of first-order transition rows"),
    "discriminator_auc": ("0.5", "cross-validated AUC of a real-vs-synthetic classifier"),
}


def fidelity_table(real: EventLog, synthetic: EventLog, config: FidelityConfig | None = None) -> list[MetricRow]:
    """Synthetic vs a real target, each metric beside its value for a disjoint real sample of the same size
    (see `matched_samples`)."""
    config = config or FidelityConfig()
    samples = matched_samples(real, synthetic, config.seed)
    values = fidelity_values(samples.target, samples.synthetic, config)
    reference = fidelity_values(samples.target, samples.real, config)
    rows = []
    for name, value in values.items():
        if name.startswith("ngram"):
            n, kind = name[5:].split("_")
            ideal, text = "higher", (f"share of synthetic {n}-grams seen in the real data" if kind == "precision"
                                     else f"share of real {n}-grams the synthetic data produces")
        else:
            ideal, text = _DESCRIPTIONS[name]
        rows.append(MetricRow(name, value, reference.get(name), ideal, text))
    if "discriminator_auc" not in values:
        size = min(samples.target.n_users, samples.synthetic.n_users)
        rows.append(MetricRow("discriminator_auc", math.nan, None, "0.5",
                              f"{NOT_COMPUTED}: the {config.cv_folds}-fold classifier needs at least {config.cv_folds} "
                              f"sequences on each side, the samples have {size}; generate more sequences"))
    return rows
