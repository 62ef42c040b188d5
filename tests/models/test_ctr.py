"""The user-representation CTR model learns from the text of histories and from item categories."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from behaviorlab.errors import DataError, ModelError
from behaviorlab.evaluate.ctr import ctr_report
from behaviorlab.metrics import ranking_report
from behaviorlab.models.ctr import CTRConfig, CTRModel, item_categories
from behaviorlab.models.registry import create_model, load_model
from behaviorlab.schema import EventLog, Schema, Vocabulary
from behaviorlab.sequences import leave_one_out

SPACE = ["a space adventure with starships and aliens", "astronauts explore a distant planet",
         "a galactic war between robot fleets", "a rocket crew lost near a black hole",
         "alien invaders attack a space station", "a starship captain fights pirates in orbit"]
ROMANCE = ["a romantic comedy about a wedding", "two lovers meet again in Paris",
           "a love story between a baker and a florist", "a heartfelt romance on a summer beach",
           "a couple falls in love at a dance", "a bride and groom plan their honeymoon"]


def taste_log(n_users: int = 80, length: int = 8, seed: int = 0, descriptive: bool = True) -> EventLog:
    """Each user watches items of one taste (space or romance), 10% of the time the other one.

    descriptive=False gives every item the same text and puts the taste in a `genre` column only.
    """
    rng = np.random.default_rng(seed)
    items = [f"s{i}" for i in range(len(SPACE))] + [f"r{i}" for i in range(len(ROMANCE))]
    descriptions = dict(zip(items, SPACE + ROMANCE, strict=True)) if descriptive else {i: "a movie" for i in items}
    genre = {i: ("sci-fi|action" if i.startswith("s") else "romance|comedy") for i in items}
    rows: dict[str, list] = {"user_id": [], "position": [], "action": [], "genre": []}
    for u in range(n_users):
        taste = "s" if u % 2 else "r"
        for t in range(length):
            side = taste if rng.random() < 0.9 else ("r" if taste == "s" else "s")
            item = f"{side}{int(rng.integers(6))}"
            rows["user_id"].append(f"u{u:03d}")
            rows["position"].append(t)
            rows["action"].append(item)
            rows["genre"].append(genre[item])
    schema = Schema(name="tastes", domain="items", time="position", extras={"genre": "str"}, action_meaning="movie")
    return EventLog(pl.DataFrame(rows, schema=schema.dtypes()), schema, Vocabulary.from_actions(items, descriptions))


FAST = {"epochs": 15, "batch_size": 32, "learning_rate": 1e-2, "patience": 3}  # ~12 steps an epoch on ~400 examples


@pytest.fixture(scope="module")
def split():
    torch.set_num_threads(1)
    return leave_one_out(taste_log())


@pytest.fixture(scope="module")
def fitted(split):
    return CTRModel(CTRConfig(**FAST, recent=5)).fit(split.train, split.valid)


def test_learns_the_users_taste_from_history_text(split, fitted):
    report = ctr_report(fitted, split.test, negatives=11)
    popularity = ranking_report(create_model("popularity").fit(split.train), split.test, ks=(1, 5, 10))
    # With 90% in-taste choices and 5 of the 11 negatives of the same taste, the best AUC is about 0.72.
    assert report["AUC (11 sampled negatives)"] > 0.65
    assert report["HR@5"] > popularity["HR@5"] + 0.2


def test_click_probability_prefers_items_like_the_history(fitted):
    space_history = ["s0", "s1", "s2"]
    p = fitted.click_probability(space_history, ["s3", "r3"])
    assert 0.0 < p[1] < p[0] < 1.0


def test_plain_linear_form_cannot_personalise(split):
    """Without u * x_i a logistic model ranks items the same for every user (theta_u . u is constant)."""
    model = CTRModel(CTRConfig(**FAST, recent=5, interaction=False, seen_feature=False)).fit(split.train, split.valid)
    logits = model.logits([["s0", "s1"], ["r0", "r1"]])
    assert np.array_equal(np.argsort(logits[0]), np.argsort(logits[1]))


def test_categories_carry_the_signal_when_text_does_not():
    log = taste_log(descriptive=False)
    parts = leave_one_out(log)
    blind = CTRModel(CTRConfig(**FAST, recent=5)).fit(parts.train, parts.valid)
    with_genre = CTRModel(CTRConfig(**FAST, recent=5, category_column="genre")).fit(parts.train, parts.valid)
    assert with_genre.categories_ == ["action", "comedy", "romance", "sci-fi"]
    auc_blind = ctr_report(blind, parts.test, negatives=11)["AUC (11 sampled negatives)"]
    auc_genre = ctr_report(with_genre, parts.test, negatives=11)["AUC (11 sampled negatives)"]
    assert auc_genre > 0.65 and auc_genre > auc_blind + 0.1


@pytest.mark.parametrize(("head", "objective"), [("mlp", "softmax+bce"), ("mlp", "bce"), ("logistic", "bce")])
def test_other_heads_and_objectives_learn_too(split, head, objective):
    model = CTRModel(CTRConfig(**FAST, recent=5, head=head, hidden=16, objective=objective)).fit(split.train, split.valid)
    assert ctr_report(model, split.test, negatives=11)["AUC (11 sampled negatives)"] > 0.65


def test_raw_features_without_projection_still_learn(split):
    model = CTRModel(CTRConfig(**FAST, recent=5, projection=None)).fit(split.train, split.valid)
    assert ctr_report(model, split.test, negatives=11)["AUC (11 sampled negatives)"] > 0.65


def test_seen_weight_learns_that_films_are_not_watched_twice():
    """Users who never repeat an item: the learned seen weight turns negative and nobody is
    recommended, first, an item they already had; popularity keeps recommending those."""
    rng = np.random.default_rng(1)
    items = [f"m{i}" for i in range(12)]
    rows: dict[str, list] = {"user_id": [], "position": [], "action": []}
    for u in range(80):
        for t, item in enumerate(rng.permutation(items)[:8]):
            rows["user_id"].append(f"u{u:03d}")
            rows["position"].append(t)
            rows["action"].append(str(item))
    schema = Schema(name="films", domain="items", time="position", action_meaning="movie")
    log = EventLog(pl.DataFrame(rows, schema=schema.dtypes()), schema,
                   Vocabulary.from_actions(items, {i: f"film number {i[1:]}" for i in items}))
    parts = leave_one_out(log)
    model = CTRModel(CTRConfig(**FAST, recent=8)).fit(parts.train, parts.valid)
    assert float(model.network_.seen_weight.detach()) < -1.0
    top = [model.predict_next(h, k=1)[0][0] for h in parts.test.histories]
    assert not any(first in history for first, history in zip(top, parts.test.histories, strict=True))
    popularity = ranking_report(create_model("popularity").fit(parts.train), parts.test, ks=(1,))
    assert ctr_report(model, parts.test, ks=(1,))["HR@1"] > popularity["HR@1"] + 0.1


def test_fit_never_reads_the_test_events():
    """Two logs that differ only in each user's last (test) event train identical models."""
    log = taste_log()
    last = log.frame.with_row_index("_row").group_by("user_id").agg(pl.col("_row").max()).get_column("_row")
    frame = log.frame.with_row_index("_row").with_columns(
        pl.when(pl.col("_row").is_in(last.implode())).then(pl.lit("s5")).otherwise(pl.col("action")).alias("action"),
    ).drop("_row")
    changed = log.with_frame(frame)
    first, second = leave_one_out(log), leave_one_out(changed)
    assert first.test.targets != second.test.targets
    models = [CTRModel(CTRConfig(**FAST, recent=5)).fit(parts.train, parts.valid) for parts in (first, second)]
    histories = first.valid.histories
    assert np.array_equal(models[0].logits(histories), models[1].logits(histories))


def test_save_load_gives_identical_predictions(split, fitted, tmp_path):
    fitted.save(tmp_path / "ctr")
    loaded = load_model(tmp_path / "ctr")
    assert isinstance(loaded, CTRModel)
    assert np.array_equal(loaded.predict_scores(split.test), fitted.predict_scores(split.test))


def test_item_categories_and_errors():
    log = taste_log(n_users=4)
    categories = item_categories(log, "genre", "|")
    assert categories["s0"] == {"sci-fi", "action"}
    with pytest.raises(DataError, match="no category column"):
        item_categories(log, "colour", "|")


def test_loading_weights_of_another_model_version_is_a_typed_error(fitted, tmp_path):
    fitted.save(tmp_path / "ctr")
    state = torch.load(tmp_path / "ctr" / "ctr.pt", weights_only=True)
    del state["network"]["seen_weight"]  # as saved by a version without the seen feature
    torch.save(state, tmp_path / "ctr" / "ctr.pt")
    with pytest.raises(ModelError, match="does not fit this version"):
        load_model(tmp_path / "ctr")
