"""Resumable training: an interrupted fit, between epochs or inside one, resumed from its checkpoint ends
exactly where an uninterrupted one does; a checkpoint of another run or of another format is refused."""

from __future__ import annotations

import numpy as np
import pytest

from behaviorlab.errors import ModelError
from behaviorlab.models.checkpoint import fingerprint
from behaviorlab.models.registry import create_model
from behaviorlab.sequences import leave_one_out

# Dropout > 0 so that resuming must also restore torch's global generator; patience high enough to run every epoch.
TINY = {"embedding_dim": 8, "max_len": 6, "epochs": 4, "batch_size": 16, "threads": 1, "patience": 10,
        "learning_rate": 5e-3, "dropout": 0.3, "device": "cpu"}


@pytest.fixture(scope="module")
def split(chain_log):
    return leave_one_out(chain_log(n_users=30, length=10))


class Interrupt:
    """A progress reporter that records the epochs it hears of and presses Ctrl-C after epoch `after`."""

    def __init__(self, after: int | None = None) -> None:
        self.after = after
        self.epochs: list[int] = []

    def __call__(self, done, total, info=None):
        if info is not None and "batch" in info:  # a report from inside an epoch
            return
        self.epochs.append(done)
        if done == self.after:
            raise KeyboardInterrupt


def weights(model) -> dict[str, np.ndarray]:
    return {name: t.detach().cpu().numpy() for name, t in model.network_.state_dict().items()}


def without_times(record) -> list[dict[str, float]]:
    return [{k: v for k, v in e.items() if k != "train_seconds"} for e in record.epochs]


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_interrupted_fit_resumes_to_the_weights_of_an_uninterrupted_one(name, split, tmp_path):
    straight = create_model(name, **TINY).fit(split.train, split.valid)

    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        create_model(name, **TINY).fit(split.train, split.valid, progress=Interrupt(after=2), checkpoint=checkpoint)
    assert checkpoint.is_file()
    heard = Interrupt()
    resumed = create_model(name, **TINY).fit(split.train, split.valid, progress=heard, checkpoint=checkpoint)

    assert heard.epochs == [3, 4]  # only the epochs after the interruption were trained
    assert without_times(resumed.training_record_) == without_times(straight.training_record_)
    assert resumed.training_record_.best_epoch == straight.training_record_.best_epoch
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(weights(resumed)[key], value, err_msg=key)
    np.testing.assert_array_equal(resumed.predict_scores(split.test), straight.predict_scores(split.test))


class InterruptInside:
    """A progress reporter that presses Ctrl-C inside epoch `epoch` after batch `batch` (every batch is heard)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.at = (epoch, batch)

    def __call__(self, done, total, info=None):
        if info is not None and (info.get("epoch"), info.get("batch")) == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize(("name", "loss"), [("sasrec", "softmax"), ("lstm", "softmax"), ("sasrec", "gbce")])
def test_a_fit_interrupted_inside_an_epoch_resumes_at_its_next_batch(name, loss, split, tmp_path, monkeypatch):
    """Saved after every batch (checkpoint_seconds below a batch's time), interrupted after batch 1 of epoch 2:
    the resumed fit trains the rest of epoch 2 and ends with the uninterrupted weights and record (with a
    sampled objective too: the resumed batches draw the negatives the uninterrupted ones drew)."""
    import torch

    from behaviorlab.models import training

    monkeypatch.setattr(training, "REPORT_SECONDS", 0.0)
    config = TINY | {"checkpoint_seconds": 1e-9, "loss": loss, "negatives": 8}
    straight = create_model(name, **config).fit(split.train, split.valid)
    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        create_model(name, **config).fit(split.train, split.valid, progress=InterruptInside(2, 1), checkpoint=checkpoint)
    state = torch.load(checkpoint, weights_only=True)["state"]
    assert state["position"]["batches"] == 1 and len(state["record"]["epochs"]) == 1  # inside epoch 2
    heard = Interrupt()
    resumed = create_model(name, **config).fit(split.train, split.valid, progress=heard, checkpoint=checkpoint)
    assert heard.epochs == [2, 3, 4]
    assert without_times(resumed.training_record_) == without_times(straight.training_record_)
    for key, value in straight.network_.state_dict().items():
        assert torch.equal(resumed.network_.state_dict()[key], value), key


def test_a_checkpoint_of_an_older_format_is_an_error_that_says_so(split, tmp_path):
    import torch

    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"format": 2, "identity": {}, "state": {}}, checkpoint)
    with pytest.raises(ModelError, match="format 2, written by an older behaviorlab") as error:
        create_model("sasrec", **TINY).fit(split.train, split.valid, checkpoint=checkpoint)
    assert "Delete it" in error.value.hint


def test_a_finished_checkpoint_gives_back_the_same_model_without_training(split, tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    config = TINY | {"patience": 1, "epochs": 6}  # may stop early: the stop must be remembered too
    first = create_model("sasrec", **config).fit(split.train, split.valid, checkpoint=checkpoint)
    heard = Interrupt()
    again = create_model("sasrec", **config).fit(split.train, split.valid, progress=heard, checkpoint=checkpoint)
    assert heard.epochs == []
    timed = ("baseline_seconds",)  # the Markov baseline is fitted again after each fit: its time is measured anew
    assert {k: v for k, v in again.training_record_.to_dict().items() if k not in timed} == \
        {k: v for k, v in first.training_record_.to_dict().items() if k not in timed}
    np.testing.assert_array_equal(again.predict_scores(split.test), first.predict_scores(split.test))


def test_a_run_stopped_by_its_epoch_budget_continues_when_resumed_with_a_larger_one(split, tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    straight = create_model("sasrec", **TINY).fit(split.train, split.valid)
    create_model("sasrec", **TINY | {"epochs": 2}).fit(split.train, split.valid, checkpoint=checkpoint)
    heard = Interrupt()
    longer = create_model("sasrec", **TINY).fit(split.train, split.valid, progress=heard, checkpoint=checkpoint)
    assert heard.epochs == [3, 4]
    assert without_times(longer.training_record_) == without_times(straight.training_record_)


def test_a_checkpoint_of_another_run_is_refused(split, chain_log, tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        create_model("sasrec", **TINY).fit(split.train, split.valid, progress=Interrupt(after=1), checkpoint=checkpoint)
    saved = checkpoint.read_bytes()

    with pytest.raises(ModelError, match=r"config \(learning_rate\)") as changed:
        create_model("sasrec", **TINY | {"learning_rate": 1e-2}).fit(split.train, split.valid, checkpoint=checkpoint)
    assert "delete the checkpoint" in changed.value.hint
    other = leave_one_out(chain_log(n_users=30, length=10, seed=1))
    with pytest.raises(ModelError, match="training data; validation data"):
        create_model("sasrec", **TINY).fit(other.train, other.valid, checkpoint=checkpoint)
    with pytest.raises(ModelError, match="model"):
        create_model("gru4rec", **TINY).fit(split.train, split.valid, checkpoint=checkpoint)
    assert checkpoint.read_bytes() == saved  # a refused checkpoint is left as it was


def test_a_damaged_checkpoint_is_an_error_with_a_hint(split, tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable training checkpoint") as error:
        create_model("sasrec", **TINY).fit(split.train, split.valid, checkpoint=checkpoint)
    assert "Delete it" in error.value.hint


def test_fingerprint_sees_contents_shape_and_type():
    a = np.arange(6, dtype=np.int64)
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.reshape(2, 3))
    assert fingerprint(a) != fingerprint(a.astype(np.int32))
    assert fingerprint(a) != fingerprint(a[::-1])
    assert fingerprint(a, b"x") != fingerprint(a, b"y")
