"""Training scenarios: aligning synthetic logs and the order of fits each scenario performs."""

from __future__ import annotations

import pytest

from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.utility import TRAINING_SCENARIOS, align_synthetic, combine, train_scenario
from behaviorlab.sequences import NextEventExamples


class RecordingModel:
    """Records each fit as (user-id prefixes seen, warm_start); enough to check the scenario's recipe."""

    name = "recording"

    def __init__(self) -> None:
        self.fits: list[tuple[set[str], bool]] = []

    def fit(self, train, valid=None, *, warm_start=False, progress=None):
        self.fits.append(({u.split("-")[0] for u in train.users()}, warm_start))
        return self


VALID = NextEventExamples(["v"], [["a"]], ["b"])


def test_each_scenario_fits_in_its_order(sequences_log) -> None:
    real = sequences_log([["a", "b"], ["b", "a"]], vocabulary=["a", "b", "c"], prefix="real-")
    synth = align_synthetic(sequences_log([["c", "a"]], prefix="gen-"), real)
    recipes = {}
    for scenario in TRAINING_SCENARIOS:
        model = train_scenario(scenario, RecordingModel, real, synth, VALID)
        recipes[scenario] = model.fits
    assert recipes["real_only"] == [({"real"}, False)]
    assert recipes["real_continued"] == [({"real"}, False), ({"real"}, True)]
    assert recipes["synthetic_only"] == [({"syn"}, False)]
    assert recipes["pretrain_augment"] == [({"syn"}, False), ({"real"}, True)]
    assert recipes["finetune_replace"] == [({"real"}, False), ({"syn"}, True)]
    assert recipes["finetune_augment"] == [({"real"}, False), ({"real", "syn"}, True)]


def test_scenarios_need_synthetic_data(sequences_log) -> None:
    real = sequences_log([["a", "b"]])
    with pytest.raises(EvaluationError):
        train_scenario("pretrain_augment", RecordingModel, real, None, VALID)
    assert train_scenario("real_continued", RecordingModel, real, None, VALID).fits == [({"u0"}, False), ({"u0"}, True)]


def test_align_takes_real_schema_and_vocabulary(sequences_log) -> None:
    real = sequences_log([["a", "b"]], vocabulary=["a", "b", "c"], hour_bins=[["(0~3)", "(3~6)"]])
    synth = sequences_log([["c", "a"]], persons=["p1"])  # has profile_id, lacks hour_bin
    aligned = align_synthetic(synth, real)
    assert aligned.schema == real.schema and aligned.vocabulary == real.vocabulary
    assert aligned.frame.get_column("hour_bin").null_count() == 2
    assert aligned.users() == ["syn-u0"]
    assert combine(real, aligned).n_users == 2


def test_align_lists_every_unknown_action(sequences_log) -> None:
    real = sequences_log([["a", "b"]])
    with pytest.raises(EvaluationError) as info:
        align_synthetic(sequences_log([["x", "y"]]), real)
    assert "'x'" in str(info.value) and "'y'" in str(info.value)
