"""The whole evaluation of a synthetic EventLog in one call: fidelity, diversity and personality, privacy.

`real_train` is what the generator may have seen (its exemplars came from there); `real_holdout` is
real data it never saw: the fidelity target (BehaviorGen compares with the real test data) and the
privacy reference. The result is plain data (JSON-ready) for the CLI and the HTML report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import Field

from behaviorlab.atomic import write_text_atomic
from behaviorlab.config import StrictConfig
from behaviorlab.errors import DataError, EvaluationError, Problem
from behaviorlab.evaluate.diversity import diversity_table, profile_consistency
from behaviorlab.evaluate.fidelity import NOT_COMPUTED, FidelityConfig, MetricRow, fidelity_table
from behaviorlab.evaluate.privacy import PrivacyConfig, privacy_table
from behaviorlab.schema import ACTION, SPLIT, USER, EventLog, Profile
from behaviorlab.sequences import published_parts

EVALUATION_FILE = "evaluation.json"  # evaluate-synthetic's results, by default beside the run they evaluate


class SyntheticEvaluationConfig(StrictConfig):
    fidelity: FidelityConfig = Field(default_factory=FidelityConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # only for logs without a published split
    seed: int = 0


@dataclass
class SyntheticEvaluation:
    """Tables of MetricRow per section, profile consistency, and what was compared."""

    fidelity: list[MetricRow]
    diversity: list[MetricRow]
    privacy: list[MetricRow]
    profile_consistency: dict[str, float] | None
    sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)  # where the real and synthetic data came from

    def to_json(self) -> str:
        payload = {
            "fidelity": [r.as_dict() for r in self.fidelity],
            "diversity": [r.as_dict() for r in self.diversity],
            "privacy": [r.as_dict() for r in self.privacy],
            "profile_consistency": self.profile_consistency,
            "sizes": self.sizes,
            "notes": self.notes,
            "inputs": self.inputs,
        }
        return json.dumps(payload, indent=1)

    @classmethod
    def from_json(cls, text: str) -> SyntheticEvaluation:
        try:
            payload = json.loads(text)
            return cls(
                fidelity=[MetricRow(**r) for r in payload["fidelity"]],
                diversity=[MetricRow(**r) for r in payload["diversity"]],
                privacy=[MetricRow(**r) for r in payload["privacy"]],
                profile_consistency=payload.get("profile_consistency"),
                sizes=payload.get("sizes", {}),
                notes=payload.get("notes", []),
                inputs=payload.get("inputs", {}),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError("Invalid evaluation JSON", [Problem(str(exc))],
                            hint="Re-run `behaviorlab evaluate-synthetic` to rewrite it.") from exc

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, self.to_json())


def train_and_holdout(real: EventLog, config: SyntheticEvaluationConfig) -> tuple[EventLog, EventLog, str]:
    """The real training part and a real holdout: the published split when the log has one (train vs
    test rows), else a seeded random share of the users. Returns (train, holdout, how)."""
    if SPLIT in real.frame.columns:
        train, _, holdout = published_parts(real)
        if train.n_events and holdout.n_events:
            return train, holdout, "published split: train rows vs test rows"
    users = sorted(real.users())
    if len(users) < 4:
        raise EvaluationError("The real log needs at least 4 users to hold some out", hint="Use a larger real log.")
    order = np.random.default_rng(config.seed).permutation(len(users))
    held = [users[i] for i in order[: max(2, round(len(users) * config.holdout_fraction))]]
    is_held = pl.col(USER).is_in(held)
    return (real.filter(~is_held), real.filter(is_held),
            (f"random {config.holdout_fraction:.0%} of users held out (seed {config.seed}); valid only if the "
            "generator was grounded on the other users"))


def _tables(real_train: EventLog, real_holdout: EventLog, synthetic: EventLog,
            config: SyntheticEvaluationConfig) -> dict[str, list[MetricRow]]:
    return {"fidelity": fidelity_table(real_holdout, synthetic, config.fidelity),
            "diversity": diversity_table(real_holdout, synthetic, config.seed),
            "privacy": privacy_table(real_train, real_holdout, synthetic, config.privacy)}


def check_comparable(real: EventLog, synthetic: EventLog) -> None:
    """Raise EvaluationError unless `synthetic` has sequences and every action it uses is one of `real`'s.

    Generation only writes actions of the real log it was grounded on, so an unknown action means the
    synthetic data came from other data; its metrics against `real` would be meaningless, not bad.
    """
    if synthetic.n_events == 0:
        raise EvaluationError("The synthetic data has no sequences to evaluate",
                              hint="Its generation run accepted none: see the run's manifest.json (attempts, issues), "
                                   "fix the cause and re-run generate.")
    known = set(real.vocabulary.actions)
    foreign = sorted(a for a in synthetic.frame.get_column(ACTION).unique().to_list() if a not in known)
    if foreign:
        raise EvaluationError(f"{len(foreign)} of the synthetic data's actions never occur in the real data "
                              f"(e.g. {foreign[:3]}): it was generated from other data",
                              hint="Pass the real data the run was generated from (--real).")


def evaluate_synthetic(real_train: EventLog, real_holdout: EventLog, synthetic: EventLog,
                       profiles: Mapping[str, Profile] | None = None,
                       config: SyntheticEvaluationConfig | None = None,
                       baseline: EventLog | None = None) -> SyntheticEvaluation:
    """Every synthetic-data metric, each beside its real-data reference and, when `baseline` is given
    (e.g. `baselines.markov_synthetic` of the same size), beside the same metric for that data."""
    config = config or SyntheticEvaluationConfig()
    check_comparable(real_train, synthetic)
    tables = _tables(real_train, real_holdout, synthetic, config)
    if baseline is not None:
        for section, rows in _tables(real_train, real_holdout, baseline, config).items():
            by_name = {row.name: row.value for row in rows}
            tables[section] = [replace(row, baseline=by_name.get(row.name)) for row in tables[section]]
    notes = [f"{row.name} {row.description}" for rows in tables.values() for row in rows
             if row.description.startswith(NOT_COMPUTED)]
    consistency = None
    if profiles:
        try:
            consistency = profile_consistency(synthetic, profiles)
        except EvaluationError as exc:
            notes.append(f"profile consistency not computed: {exc.message}")
    return SyntheticEvaluation(
        fidelity=tables["fidelity"], diversity=tables["diversity"], privacy=tables["privacy"],
        profile_consistency=consistency,
        sizes={"real_train_sequences": real_train.n_users, "real_holdout_sequences": real_holdout.n_users,
               "synthetic_sequences": synthetic.n_users, "synthetic_events": synthetic.n_events},
        notes=notes,
    )



def evaluate_against_real(real: EventLog, synthetic: EventLog, profiles: Mapping[str, Profile] | None = None, *,
                          seed: int = 0, baseline: bool = True) -> SyntheticEvaluation:
    """`behaviorlab evaluate-synthetic` as one call: `real` split into training part and holdout
    (`train_and_holdout`), every metric of `evaluate_synthetic`, and with `baseline` the same metrics for
    Markov-chain data of the same size fitted to the training part. `seed` seeds every sampled step."""
    from behaviorlab.evaluate.baselines import MarkovBaselineConfig, markov_synthetic

    config = SyntheticEvaluationConfig(seed=seed, fidelity=FidelityConfig(seed=seed), privacy=PrivacyConfig(seed=seed))
    check_comparable(real, synthetic)  # before the Markov baseline, which needs sequences to copy lengths from
    train, holdout, how = train_and_holdout(real, config)
    markov = None
    if baseline:
        markov = markov_synthetic(train, [len(s) for s in synthetic.action_sequences().values()], MarkovBaselineConfig(seed=seed))
    result = evaluate_synthetic(train, holdout, synthetic, profiles, config, baseline=markov)
    result.notes.insert(0, f"real data: {how}")
    return result
