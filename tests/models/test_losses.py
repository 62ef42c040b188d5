"""The training objectives: values on tiny hand-made cases, gradients, gBCE's beta, and the choice by catalog size."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from behaviorlab.config import parse_config
from behaviorlab.errors import ConfigError
from behaviorlab.models.loss_settings import LossSettings, choose_loss, describe, gbce_beta
from behaviorlab.models.losses import full_softmax, log_q_correction, make_objective, sampled_loss
from behaviorlab.models.neural import SequenceNetwork
from behaviorlab.models.recurrent import RecurrentEncoder


def test_gbce_beta_follows_the_paper_formula():
    # alpha = K / (V - 1); beta = alpha (t (1 - 1/alpha) + 1/alpha)
    alpha = 100 / 12100
    assert gbce_beta(100, 12101, 0.75) == pytest.approx(alpha * (0.75 * (1 - 1 / alpha) + 1 / alpha))
    assert gbce_beta(100, 12101, 0.0) == pytest.approx(1.0)  # t = 0 is plain bce
    assert gbce_beta(100, 12101, 1.0) == pytest.approx(alpha)  # t = 1 scales the positive by the sampling rate
    assert gbce_beta(500, 11, 0.75) == pytest.approx(1.0)  # more draws than actions: alpha capped at 1


def test_log_q_correction_on_a_tiny_example():
    proposal = torch.tensor([0.5, 0.25, 0.25])
    assert log_q_correction(proposal, 4, torch.tensor([0, 2])).tolist() == pytest.approx([math.log(2.0), math.log(1.0)])
    # one row, target score 1, negatives [0.5, 2] drawn with log Q [log 2, 0]; the target is not corrected
    positive, negative = torch.tensor([1.0]), torch.tensor([[0.5, 2.0]])
    loss = sampled_loss("sampled_softmax", positive, negative, torch.zeros(1, 2, dtype=torch.bool),
                        log_q=torch.tensor([math.log(2.0), 0.0]))
    corrected = [1.0, 0.5 - math.log(2.0), 2.0]
    expected = -(corrected[0] - math.log(sum(math.exp(c) for c in corrected)))
    assert float(loss) == pytest.approx(expected)


def test_sampled_losses_by_hand_and_accidental_hits_are_left_out():
    positive, negative = torch.tensor([2.0]), torch.tensor([[1.0, 3.0]])
    hit = torch.tensor([[False, True]])  # the second draw is the row's own target
    sig = torch.sigmoid
    assert float(sampled_loss("bpr", positive, negative, hit)) == pytest.approx(-math.log(float(sig(torch.tensor(1.0)))))
    bce = -math.log(float(sig(torch.tensor(2.0)))) - math.log(float(sig(torch.tensor(-1.0))))
    assert float(sampled_loss("bce", positive, negative, hit)) == pytest.approx(bce)
    gbce = -0.5 * math.log(float(sig(torch.tensor(2.0)))) - math.log(float(sig(torch.tensor(-1.0))))
    assert float(sampled_loss("gbce", positive, negative, hit, beta=0.5)) == pytest.approx(gbce)
    masked = sampled_loss("sampled_softmax", positive, negative, hit, log_q=torch.zeros(2))
    assert float(masked) == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + math.exp(1))))


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("name", ["bpr", "bce", "gbce", "sampled_softmax"])
def test_sampled_objectives_score_like_the_network_and_give_gradients(name, tied):
    torch.manual_seed(0)
    network = SequenceNetwork(30, 8, RecurrentEncoder("gru", 8, 8, 1, 0.0), [], tied_output=tied)
    hidden = torch.randn(5, 8, requires_grad=True)
    targets = torch.tensor([0, 3, 7, 29, 3])
    full = network.logits(hidden)  # [5, 30]
    columns = torch.tensor([1, 4, 29])
    assert torch.allclose(network.column_scores(hidden, columns), full[:, columns], atol=1e-6)
    assert torch.allclose(network.target_scores(hidden, targets), full[torch.arange(5), targets], atol=1e-6)
    settings = LossSettings(negatives=16, negative_sampler="popularity")
    objective = make_objective(settings, name, torch.arange(30))
    loss = objective(network, hidden, targets)
    loss.backward()
    assert torch.isfinite(loss) and hidden.grad is not None and hidden.grad.abs().sum() > 0
    weights = network.action_embedding.weight if tied else network.output.weight
    assert weights.grad is not None and weights.grad.abs().sum() > 0


def test_sampled_softmax_with_log_q_approaches_the_full_softmax_with_many_draws():
    torch.manual_seed(1)
    network = SequenceNetwork(20, 4, RecurrentEncoder("gru", 4, 4, 1, 0.0), [], tied_output=True)
    hidden, targets = torch.randn(3, 4), torch.tensor([1, 5, 19])
    exact = float(full_softmax(network, hidden, targets).detach())
    assert exact == pytest.approx(float(F.cross_entropy(network.logits(hidden), targets).detach()))
    for sampler in ("uniform", "popularity"):
        objective = make_objective(LossSettings(negatives=200_000, negative_sampler=sampler), "sampled_softmax",
                                   torch.arange(20) ** 2)
        assert float(objective(network, hidden, targets).detach()) == pytest.approx(exact, abs=0.02)


def test_auto_chooses_by_catalog_size_and_says_why():
    settings = LossSettings(full_softmax_max_actions=1000)
    assert choose_loss(settings, 1000) == "softmax" and choose_loss(settings, 1001) == "bpr"
    assert "full softmax over 900 actions (auto" in describe(settings, 900)
    assert "bpr with 256 uniform negatives" in describe(settings, 5000)
    assert choose_loss(LossSettings(loss="bpr"), 10) == "bpr"
    assert "set in the config" in describe(LossSettings(loss="bpr"), 10)


def test_loss_settings_are_strict():
    with pytest.raises(ConfigError, match="negatives"):
        parse_config(LossSettings, {"negatives": 0, "loss": "softmax"})
    with pytest.raises(ConfigError, match="did you mean 'negatives'"):
        parse_config(LossSettings, {"negatvies": 10})
