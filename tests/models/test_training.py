"""Training windows cover every prefix's target exactly once, with enough history; the training loop stops
by patience only after min_epochs and min_steps, judges its budget after every batch, and reports from inside
an epoch."""

from __future__ import annotations

import math

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


@pytest.mark.parametrize(("min_epochs", "min_steps", "epochs_run"), [(0, 0, 2), (0, 7, 7), (0, 50, 12), (5, 0, 5),
                                                                    (5, 7, 7), (20, 0, 12)])
def test_patience_waits_for_the_minimum_epochs_and_steps_and_the_epoch_cap_still_holds(min_epochs, min_steps, epochs_run):
    """One batch an epoch and a validation score that only falls: patience 1 stops at epoch 2, unless the run
    has not yet made `min_epochs` epochs or `min_steps` optimiser steps; `epochs` caps it either way. The best
    epoch stays the first."""
    import torch

    from behaviorlab.models.settings import TrainSettings
    from behaviorlab.models.training import Validation, train_network

    network = torch.nn.Linear(2, 1)
    data = {"inputs": torch.ones((4, 2), dtype=torch.int64)}
    scores = iter(np.linspace(0.9, 0.1, 20))

    def loss_fn(batch):
        return network(batch["inputs"].float()).pow(2).mean()

    settings = TrainSettings(epochs=12, batch_size=4, patience=1, min_epochs=min_epochs, min_steps=min_steps,
                             threads=1, device="cpu")
    validation = Validation(lambda: float(next(scores)), metric="valid_ndcg10", higher_is_better=True)
    record = train_network(network, loss_fn, data, settings, 0, validation)
    assert len(record.epochs) == epochs_run and record.best_epoch == 1


def _regression(seed: int = 0):
    """A small network with dropout (so resuming must restore torch's generator too), 40 rows, and its loss."""
    import torch

    torch.manual_seed(seed)
    network = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
    rows = torch.Generator().manual_seed(1)
    data = {"x": torch.randn((40, 3), generator=rows), "y": torch.randn((40, 1), generator=rows)}

    def loss_fn(batch):
        return (network(batch["x"]) - batch["y"]).pow(2).mean()

    return network, loss_fn, data


def _settings(**changes):
    from behaviorlab.models.settings import TrainSettings

    return TrainSettings(**{"epochs": 3, "batch_size": 4, "patience": 10, "threads": 1, "device": "cpu"} | changes)


def test_progress_hears_from_inside_the_epochs(monkeypatch):
    """The start of the first batch is reported (the epoch's size), then that batch at once (a long first epoch is
    not silent), then at most one every REPORT_SECONDS."""
    from behaviorlab.models import training

    heard = []
    network, loss_fn, data = _regression()
    training.train_network(network, loss_fn, data, _settings(), 0,
                           progress=lambda done, total, info=None: heard.append((done, total, dict(info or {}))))
    assert heard[0] == (0, 3, {"epoch": 1, "batch": 0, "batches": 10, "rows": 40})
    done, total, first = heard[1]
    assert (done, total, first["epoch"], first["batch"], first["batches"]) == (0, 3, 1, 1, 10)
    assert first["examples_per_s"] > 0 and first["eta_seconds"] > 0
    assert [(done, info["epoch"]) for done, _, info in heard if "batch" not in info] == [(1, 1), (2, 2), (3, 3)]

    monkeypatch.setattr(training, "REPORT_SECONDS", 0.0)
    heard.clear()
    network, loss_fn, data = _regression()
    training.train_network(network, loss_fn, data, _settings(epochs=2), 0,
                           progress=lambda done, total, info=None: heard.append((done, dict(info or {}))))
    assert heard[0][1]["batch"] == 0 and "eta_seconds" not in heard[0][1]  # only this call's first batch is announced
    inside = [(done, info["epoch"], info["batch"]) for done, info in heard if "eta_seconds" in info]
    assert inside == [(e - 1, e, b) for e in (1, 2) for b in range(1, 11)]
    assert inside[-1] and heard[-1][1]["epoch"] == 2 and "batch" not in heard[-1][1]  # the epoch's own report last


def test_the_budget_stops_inside_an_epoch_and_a_larger_one_continues_to_the_uninterrupted_weights(tmp_path):
    """A budget smaller than one batch stops after the first batch and saves where the epoch is; resumed without a
    budget, the run ends with exactly the weights and record of a run that was never stopped."""
    import torch

    from behaviorlab.models.checkpoint import Checkpoint
    from behaviorlab.models.training import train_network

    network, loss_fn, data = _regression()
    straight = train_network(network, loss_fn, data, _settings(), 0)
    expected = {k: v.clone() for k, v in network.state_dict().items()}

    checkpoint = Checkpoint(tmp_path / "checkpoint.pt", {"run": "regression"})
    network, loss_fn, data = _regression()
    stopped = train_network(network, loss_fn, data, _settings(max_train_seconds=1e-9), 0, checkpoint=checkpoint)
    assert stopped.stopped_by_time and stopped.epoch == 0
    position = checkpoint.load()["position"]
    assert position["batches"] == 1 and position["loss_sum"] > 0

    network, loss_fn, data = _regression(seed=7)  # other initial weights: the checkpoint's must replace them
    resumed = train_network(network, loss_fn, data, _settings(), 0, checkpoint=checkpoint)
    assert not resumed.stopped_by_time and checkpoint.load()["position"] is None
    assert [{k: v for k, v in e.items() if k != "train_seconds"} for e in resumed.epochs] == \
        [{k: v for k, v in e.items() if k != "train_seconds"} for e in straight.epochs]
    for key, value in expected.items():
        assert torch.equal(network.state_dict()[key], value), key


def test_a_checkpoint_is_saved_inside_an_epoch_every_checkpoint_seconds(tmp_path, monkeypatch):
    """With checkpoint_seconds shorter than a batch every batch saves; by default (60 s) only the epochs' ends do."""
    from behaviorlab.models.checkpoint import Checkpoint
    from behaviorlab.models.training import train_network

    saved = []
    monkeypatch.setattr(Checkpoint, "save", lambda self, state: saved.append(
        None if state["position"] is None else state["position"]["batches"]))
    checkpoint = Checkpoint(tmp_path / "checkpoint.pt", {"run": "regression"})
    network, loss_fn, data = _regression()
    train_network(network, loss_fn, data, _settings(epochs=2), 0, checkpoint=checkpoint)
    assert saved == [None, None]
    saved.clear()
    network, loss_fn, data = _regression()
    train_network(network, loss_fn, data, _settings(epochs=2, checkpoint_seconds=1e-9), 0, checkpoint=checkpoint)
    assert saved == [*range(1, 11), None] * 2


def test_a_tie_keeps_the_later_weights_without_resetting_patience():
    """Scores 0.5, 0.5, 0.5: the third epoch's weights are kept, and patience 2 still stops the run there."""
    from behaviorlab.models.training import Validation, train_network

    network, loss_fn, data = _regression()
    scores = iter([0.5, 0.5, 0.5, 0.9])
    validation = Validation(lambda: next(scores), metric="valid_ndcg10", higher_is_better=True)
    record = train_network(network, loss_fn, data, _settings(epochs=4, patience=2, min_epochs=0, min_steps=0), 0,
                           validation)
    assert (record.epoch, record.best_epoch, record.epochs_without_gain) == (3, 3, 2)


def test_the_record_says_when_the_kept_weights_may_fall_short():
    from behaviorlab.models.training import Validation, train_network

    network, loss_fn, data = _regression()
    rising = iter([0.1, 0.2, 0.3])
    validation = Validation(lambda: next(rising), metric="valid_ndcg10", higher_is_better=True, examples=3)
    record = train_network(network, loss_fn, data, _settings(), 0, validation)
    assert [w.split(":")[0] for w in record.warnings] == [
        "training ended by its epoch cap at epoch 3, 0 after the best one (3) and before patience (10) judged it done",
        "only 3 validation examples chose epoch 3"]

    network, loss_fn, data = _regression()
    stopped = train_network(network, loss_fn, data, _settings(max_train_seconds=1e-9), 0, validation)
    assert stopped.warnings == [("the time budget ran out inside epoch 1 (batch 1 of 10): the weights were never "
                                 "validated; resume with a larger budget")]

    network, loss_fn, data = _regression()
    falling = iter([0.3, 0.2, 0.1])
    many = Validation(lambda: next(falling), metric="valid_ndcg10", higher_is_better=True, examples=500)
    assert train_network(network, loss_fn, data, _settings(patience=2, min_epochs=0, min_steps=0), 0,
                         many).warnings == []  # stopped by patience, on enough examples


def test_length_bucketed_batches_hold_every_row_once_and_rows_of_similar_length():
    """Each full batch is a run of one sorted pool, the short batch comes last (so slicing by batch size finds every
    batch), and the same generator state gives the same order (a resumed epoch draws it again)."""
    import torch

    from behaviorlab.models.training import BUCKET_POOL_BATCHES, length_bucketed

    rows, batch = 1003, 8
    lengths = torch.randint(1, 51, (rows,), generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    order = length_bucketed(torch.randperm(rows, generator=generator), lengths, batch, generator)
    assert sorted(order.tolist()) == list(range(rows))
    batches = order.split(batch)
    assert [len(b) for b in batches[:-1]] == [batch] * (rows // batch) and len(batches[-1]) == rows % batch
    for b in batches[:-1]:
        assert lengths[b].tolist() == sorted(lengths[b].tolist())
    plain = torch.randperm(rows, generator=torch.Generator().manual_seed(3)).split(batch)
    spread = float(np.mean([float(lengths[b].max() - lengths[b].min()) for b in batches[:-1]]))
    assert spread < 0.25 * float(np.mean([float(lengths[b].max() - lengths[b].min()) for b in plain[:-1]]))
    assert BUCKET_POOL_BATCHES * batch < rows  # the test crosses pools
    generator.set_state(state)
    again = length_bucketed(torch.randperm(rows, generator=generator), lengths, batch, generator)
    assert torch.equal(order, again)


@pytest.mark.parametrize(("fraction", "epochs_run"), [(0.0, 32), (0.5, 45), (0.05, 32), (1.0, 60)])
def test_patience_grows_with_the_epochs_to_the_best_one(fraction, epochs_run):
    """A score that rises for 30 epochs, then falls: patience 2 stops at epoch 32, unless the fraction of the best
    epoch is larger (0.5 x 30 = 15: epoch 45); the epoch cap (60) still holds."""
    import torch

    from behaviorlab.models.settings import TrainSettings
    from behaviorlab.models.training import Validation, train_network

    network = torch.nn.Linear(2, 1)
    data = {"inputs": torch.ones((4, 2), dtype=torch.int64)}
    scores = iter([*np.linspace(0.1, 0.9, 30), *np.linspace(0.8, 0.1, 30)])

    def loss_fn(batch):
        return network(batch["inputs"].float()).pow(2).mean()

    settings = TrainSettings(epochs=60, batch_size=4, patience=2, patience_fraction=fraction, min_epochs=0, min_steps=0,
                             threads=1, device="cpu")
    validation = Validation(lambda: float(next(scores)), metric="valid_ndcg10", higher_is_better=True)
    record = train_network(network, loss_fn, data, settings, 0, validation)
    assert (record.epoch, record.best_epoch) == (epochs_run, 30)
    assert settings.patience_after(30) == max(2, math.ceil(fraction * 30))
