"""The anomaly task's split: the published train/valid/test parts, each of them needed."""

from __future__ import annotations

import polars as pl
import pytest

from behaviorlab.errors import DataError
from behaviorlab.evaluate.anomaly import split_logs
from behaviorlab.schema import EventLog, Schema


def test_split_logs_gives_the_published_parts(make_home_log) -> None:
    train, valid, test = split_logs(make_home_log(n_train=6, n_valid=3, n_test=2))
    assert (train.n_users, valid.n_users, test.n_users) == (6, 3, 2)


def test_split_logs_needs_the_split_column_and_every_part(make_home_log) -> None:
    log = make_home_log(n_train=6, n_valid=3, n_test=2)
    schema = Schema.model_validate(log.schema.model_dump() | {"extras": {"hour_bin": "str"}})
    with pytest.raises(DataError, match="no 'split' column"):
        split_logs(EventLog(log.frame.drop("split"), schema, log.vocabulary))
    no_valid = EventLog(log.frame.filter(pl.col("split") != "valid"), log.schema, log.vocabulary)
    with pytest.raises(DataError, match="no valid rows"):
        split_logs(no_valid)
