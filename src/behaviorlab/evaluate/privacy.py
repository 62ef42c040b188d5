"""Privacy: does the synthetic data copy or reveal the real training records?

- exact copies: synthetic sequences equal to a training sequence, and synthetic n-gram windows that
  occur verbatim in training sequences; the same rates for real holdout sequences are the reference
  (short smart-home sequences repeat naturally, so a non-zero rate alone is not a leak);
- distance to closest record (DCR): synthetic -> train against real holdout -> train; a ratio of
  medians >= 1 means synthetic records sit no closer to the training data than unseen real ones do;
- membership inference: an attacker ranks records by their distance to the nearest synthetic record;
  the AUC of training members vs holdout non-members is near 0.5 when the data does not leak membership.

Distances are cosine distances between sequence feature vectors (action and bigram frequencies), so a
verbatim copy has distance 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from behaviorlab.config import StrictConfig
from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.fidelity import MetricRow, ngrams, sequences_of
from behaviorlab.schema import EventLog


class PrivacyConfig(StrictConfig):
    seed: int = 0
    window: int = 5  # length of the n-gram windows checked for verbatim copies
    max_records: int = 4000  # per side in DCR and membership inference


def copy_rate(candidates: Sequence[Sequence[str]], train: Sequence[Sequence[str]]) -> float:
    """Share of candidate sequences that equal some training sequence exactly."""
    train_set = {tuple(s) for s in train}
    return float(np.mean([tuple(s) in train_set for s in candidates])) if candidates else float("nan")


def copy_window(config: PrivacyConfig, synthetic: Sequence[Sequence[str]]) -> int:
    """The window length checked for verbatim copies: `config.window`, shortened to the shortest synthetic
    sequence so that short sequences are checked too (a 4-event copy of real events has no 5-event
    window); never below 2, since one event alone copies nothing."""
    return max(2, min(config.window, min(len(s) for s in synthetic)))


def window_copy_rate(candidates: Sequence[Sequence[str]], train: Sequence[Sequence[str]], n: int) -> float:
    """Share of the candidates' length-n windows that occur verbatim in a training sequence."""
    train_windows = {g for s in train for g in ngrams(s, n)}
    windows = [g for s in candidates for g in ngrams(s, n)]
    return float(np.mean([g in train_windows for g in windows])) if windows else float("nan")


def sequence_vectors(groups: Sequence[Sequence[Sequence[str]]]) -> list[sparse.csr_matrix]:
    """L2-normalised action+bigram count vectors [N_g, F] for each group, over one shared feature space."""
    columns: dict[tuple, int] = {}
    built = []
    for seqs in groups:
        data, indices, indptr = [], [], [0]
        for seq in seqs:
            counts: dict[int, float] = {}
            for token in [("a", a) for a in seq] + [("b", g) for g in ngrams(seq, 2)]:
                j = columns.setdefault(token, len(columns))
                counts[j] = counts.get(j, 0.0) + 1.0
            norm = np.sqrt(sum(v * v for v in counts.values())) or 1.0
            indices.extend(counts)
            data.extend(v / norm for v in counts.values())
            indptr.append(len(indices))
        built.append((data, indices, indptr, len(seqs)))
    return [sparse.csr_matrix((d, i, p), shape=(n, len(columns))) for d, i, p, n in built]


def nearest_distances(queries: sparse.csr_matrix, records: sparse.csr_matrix, block: int = 1024) -> np.ndarray:
    """Cosine distance [Q] from each query to its closest record (blocks keep memory at block x R)."""
    out = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], block):
        sims = (queries[start:start + block] @ records.T).toarray()  # [B, R]
        out[start:start + block] = 1.0 - sims.max(axis=1)
    return np.clip(out, 0.0, 2.0)


def _sample(seqs: list[list[str]], size: int, rng: np.random.Generator) -> list[list[str]]:
    if len(seqs) <= size:
        return seqs
    return [seqs[i] for i in rng.choice(len(seqs), size, replace=False)]


def privacy_values(train: EventLog, holdout: EventLog, synthetic: EventLog, config: PrivacyConfig) -> dict[str, float]:
    """Copy rates, DCR and membership-inference AUC of `synthetic` relative to the real `train` log;
    `holdout` is real data the generator never saw (the reference)."""
    from sklearn.metrics import roc_auc_score

    train_seqs, holdout_seqs, synth_seqs = sequences_of(train), sequences_of(holdout), sequences_of(synthetic)
    if not train_seqs or not holdout_seqs or not synth_seqs:
        raise EvaluationError("Privacy metrics need train, holdout and synthetic sequences",
                              hint="Check that none of the three logs is empty.")
    rng = np.random.default_rng(config.seed)
    w = copy_window(config, synth_seqs)
    values = {
        "exact_copy_rate": copy_rate(synth_seqs, train_seqs),
        "holdout_exact_copy_rate": copy_rate(holdout_seqs, train_seqs),
        "copy_window": float(w),
        f"window{w}_copy_rate": window_copy_rate(synth_seqs, train_seqs, w),
        f"holdout_window{w}_copy_rate": window_copy_rate(holdout_seqs, train_seqs, w),
    }
    synth_q = _sample(synth_seqs, config.max_records, rng)
    holdout_q = _sample(holdout_seqs, config.max_records, rng)
    members = _sample(train_seqs, len(holdout_q), rng)
    v_train, v_synth, v_holdout, v_members = sequence_vectors([train_seqs, synth_q, holdout_q, members])
    dcr_synth = nearest_distances(v_synth, v_train)
    dcr_holdout = nearest_distances(v_holdout, v_train)
    values["dcr_synthetic_median"] = float(np.median(dcr_synth))
    values["dcr_holdout_median"] = float(np.median(dcr_holdout))
    values["dcr_synthetic_zero_share"] = float(np.mean(dcr_synth < 1e-9))
    values["dcr_holdout_zero_share"] = float(np.mean(dcr_holdout < 1e-9))
    values["dcr_ratio"] = (float(np.mean(dcr_synth)) / float(np.mean(dcr_holdout))
                           if np.mean(dcr_holdout) > 0 else float("nan"))
    # Membership inference: members were in the generator's training data, the holdout was not; a record
    # close to some synthetic record is guessed a member (score = -distance).
    d_members = nearest_distances(v_members, v_synth)
    d_holdout = nearest_distances(v_holdout, v_synth)
    labels = np.r_[np.ones(len(d_members)), np.zeros(len(d_holdout))]
    values["membership_auc"] = float(roc_auc_score(labels, -np.r_[d_members, d_holdout]))
    return values


def privacy_table(train: EventLog, holdout: EventLog, synthetic: EventLog,
                  config: PrivacyConfig | None = None) -> list[MetricRow]:
    config = config or PrivacyConfig()
    v = privacy_values(train, holdout, synthetic, config)
    w = int(v["copy_window"])
    shortened = f", shortened from {config.window} to the shortest synthetic sequence" if w < config.window else ""
    return [
        MetricRow("exact_copy_rate", v["exact_copy_rate"], v["holdout_exact_copy_rate"], "lower",
                  "share of synthetic sequences equal to a training sequence (reference: real holdout)"),
        MetricRow(f"window{w}_copy_rate", v[f"window{w}_copy_rate"], v[f"holdout_window{w}_copy_rate"], "lower",
                  f"share of {w}-event windows found verbatim in training sequences (reference: real holdout{shortened})"),
        MetricRow("dcr_median", v["dcr_synthetic_median"], v["dcr_holdout_median"], "higher",
                  "median cosine distance to the closest training sequence (reference: real holdout)"),
        MetricRow("dcr_zero_share", v["dcr_synthetic_zero_share"], v["dcr_holdout_zero_share"], "lower",
                  "share of records at distance 0 from a training sequence (reference: real holdout)"),
        MetricRow("dcr_ratio", v["dcr_ratio"], 1.0, "1.0",
                  "mean DCR synthetic->train over mean DCR holdout->train (>= 1 is safe)"),
        MetricRow("membership_auc", v["membership_auc"], 0.5, "0.5",
                  "AUC of a distance-to-synthetic attack telling training members from holdout (0.5 is safe)"),
    ]
