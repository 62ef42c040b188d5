"""Training windows cover every prefix's target exactly once, with enough history."""

from __future__ import annotations

import numpy as np
import pytest

from behaviorlab.errors import ModelError
from behaviorlab.models.training import make_windows


def _targets_with_context(windows, max_len):
    """(target, number of real inputs before and at that position) for every loss position."""
    out = []
    for inputs, targets in zip(windows.inputs, windows.targets, strict=True):
        for t in range(max_len):
            if targets[t]:
                out.append((int(targets[t]), int((inputs[:t + 1] != 0).sum())))
    return out


@pytest.mark.parametrize("length", [2, 5, 9, 10, 11, 23, 40])
def test_every_target_is_predicted_once_from_enough_history(length):
    max_len, stride = 8, 4
    ids = np.arange(1, length + 1)
    windows = make_windows([ids], [np.zeros((length, 0), dtype=np.int64)], max_len, stride)
    seen = _targets_with_context(windows, max_len)
    assert sorted(t for t, _ in seen) == list(range(2, length + 1))  # each of s[1:] exactly once
    for target, history in seen:
        assert history >= min(target - 1, max_len - stride)  # target id k has k-1 events before it
    # inputs are always the events just before each target (causal, no peeking)
    for inputs, targets in zip(windows.inputs, windows.targets, strict=True):
        real = targets != 0
        np.testing.assert_array_equal(targets[real], inputs[real] + 1)


def test_context_belongs_to_the_target_event():
    ids = np.array([5, 6, 7])
    context = np.array([[1], [2], [3]])
    windows = make_windows([ids], [context], max_len=4)
    real = windows.targets[0] != 0
    assert windows.targets[0][real].tolist() == [6, 7]
    assert windows.context[0][real, 0].tolist() == [2, 3]


def test_no_pairs_is_an_error():
    with pytest.raises(ModelError, match="fewer than 2 events"):
        make_windows([np.array([3])], [np.zeros((1, 0), dtype=np.int64)], max_len=4)


@pytest.mark.parametrize(("min_steps", "epochs_run"), [(0, 2), (7, 7), (50, 12)])
def test_patience_waits_for_the_minimum_number_of_steps_and_the_epoch_cap_still_holds(min_steps, epochs_run):
    """One batch an epoch and a validation score that only falls: patience 1 stops at epoch 2, unless the run
    has not yet made `min_steps` optimiser steps; `epochs` caps it either way. The best epoch stays the first."""
    import torch

    from behaviorlab.models.settings import TrainSettings
    from behaviorlab.models.training import Validation, train_network

    network = torch.nn.Linear(2, 1)
    data = {"inputs": torch.ones((4, 2), dtype=torch.int64)}
    scores = iter(np.linspace(0.9, 0.1, 20))

    def loss_fn(batch):
        return network(batch["inputs"].float()).pow(2).mean()

    settings = TrainSettings(epochs=12, batch_size=4, patience=1, min_steps=min_steps, threads=1, device="cpu")
    validation = Validation(lambda: float(next(scores)), metric="valid_ndcg10", higher_is_better=True)
    record = train_network(network, loss_fn, data, settings, 0, validation)
    assert len(record.epochs) == epochs_run and record.best_epoch == 1
