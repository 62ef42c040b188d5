"""Training objectives of the torch sequence models: the full softmax, and sampled ones for large catalogs.

Every objective maps the hidden states of the M positions of a batch that take loss, hidden [M, D], and
their target columns, targets [M] (0-based: column j = vocabulary.actions[j]), to a scalar mean loss. A
score s(h, j) comes from the network (`ScoredNetwork`): h . e_j with the tied output, W_j h + b_j untied.

    softmax          -log softmax(s(h, .))_y over all V actions                      cost O(M V D)
    bpr              -mean_k log sigmoid(s_y - s_k)                                  cost O(M K D)
    bce              -log sigmoid(s_y) - sum_k log sigmoid(-s_k)
    gbce             -beta log sigmoid(s_y) - sum_k log sigmoid(-s_k)   (gSASRec, Petrov & Macdonald,
                     RecSys 2023), beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (V - 1): a
                     model trained on K negatives is over-confident by the sampling rate; t in [0, 1]
                     calibrates (t = 0 is bce, t = 1 fully corrects it)
    sampled_softmax  -log softmax([s_y, s_k - log Q(k)])_0, Q(j) = K q(j) the expected count of j
                     among the K draws from the proposal q (log-Q correction, Bengio & Senecal 2008):
                     sum_k exp(s_k) / Q(k) over the draws that are not the target estimates the
                     softmax's normaliser without its target term, so the loss tends to the full
                     softmax's as K grows; without the correction, frequently drawn actions are
                     over-penalised
The K negatives are drawn once per batch, shared by its M positions (one [K, D] lookup and an [M, K]
matrix product instead of M x K lookups), from the proposal q: uniform over the V actions, or
proportional to each action's count among the training targets ("popularity"). A draw that hits a row's
own target is masked out of that row. Draws use torch's global generator, which the training loop's
checkpoints save, so a resumed run draws the negatives an uninterrupted run draws.

The settings, the choice of the objective by catalog size and gbce's beta are torch-free, in
loss_settings.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from behaviorlab.models.loss_settings import LossName, LossSettings, gbce_beta


def log_q_correction(proposal: torch.Tensor, negatives: int, columns: torch.Tensor) -> torch.Tensor:
    """log Q(j) = log(K q(j)) for `columns` (any shape): what sampled softmax subtracts from each score."""
    return torch.log(negatives * proposal[columns])


class ScoredNetwork(Protocol):
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [M, D] -> scores [M, V] of every action."""

    def column_scores(self, hidden: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """hidden [M, D], columns [K] -> scores [M, K] of those actions."""

    def target_scores(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """hidden [M, D], targets [M] -> [M]: each row's score of its own target."""


Objective = Callable[[ScoredNetwork, torch.Tensor, torch.Tensor], torch.Tensor]  # (network, hidden, targets) -> loss


@dataclass(frozen=True)
class SampledObjective:
    """A sampled objective over V actions; `proposal` [V] is q (sums to 1)."""

    name: LossName
    proposal: torch.Tensor
    negatives: int
    beta: float = 1.0  # gbce's weight of the positive term

    def __call__(self, network: ScoredNetwork, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        proposal = self.proposal.to(hidden.device)
        drawn = torch.multinomial(proposal, self.negatives, replacement=True)  # [K] columns
        positive = network.target_scores(hidden, targets)  # [M]
        negative = network.column_scores(hidden, drawn)  # [M, K]
        hit = drawn[None, :] == targets[:, None]  # [M, K]: a row's own target drawn as a negative
        log_q = log_q_correction(proposal, self.negatives, drawn) if self.name == "sampled_softmax" else None  # [K]
        return sampled_loss(self.name, positive, negative, hit, self.beta, log_q)


def sampled_loss(name: LossName, positive: torch.Tensor, negative: torch.Tensor, hit: torch.Tensor, beta: float = 1.0,
                 log_q: torch.Tensor | None = None) -> torch.Tensor:
    """The mean loss of M rows from their target scores positive [M], negative scores [M, K] and the mask
    hit [M, K] of negatives that are the row's target (left out); the negatives' log Q [K] for sampled_softmax."""
    kept = (~hit).to(negative.dtype)  # [M, K]
    if name == "bpr":
        per_negative = -F.logsigmoid(positive[:, None] - negative) * kept  # [M, K]
        return (per_negative.sum(dim=1) / kept.sum(dim=1).clamp(min=1.0)).mean()
    if name in ("bce", "gbce"):
        return (-beta * F.logsigmoid(positive) - (F.logsigmoid(-negative) * kept).sum(dim=1)).mean()
    if name == "sampled_softmax":
        if log_q is None:
            raise ValueError("sampled_softmax needs the negatives' log-Q corrections")
        corrected = torch.cat([positive[:, None], (negative - log_q[None, :]).masked_fill(hit, float("-inf"))],
                              dim=1)  # [M, 1 + K]
        return -torch.log_softmax(corrected, dim=1)[:, 0].mean()
    raise ValueError(f"{name} is not a sampled objective")


def full_softmax(network: ScoredNetwork, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over all V actions: logits [M, V]."""
    return F.cross_entropy(network.logits(hidden), targets)


def make_objective(settings: LossSettings, name: LossName, target_counts: torch.Tensor) -> Objective:
    """The objective `name` (from `choose_loss`) for a catalog whose training targets occur target_counts [V] times."""
    if name == "softmax":
        return full_softmax
    n_actions = int(target_counts.shape[0])
    if settings.negative_sampler == "popularity":
        weights = target_counts.double() + 1.0  # +1: an action never seen as a target can still be a negative
    else:
        weights = torch.ones(n_actions, dtype=torch.float64)
    proposal = (weights / weights.sum()).float()  # [V]
    beta = gbce_beta(settings.negatives, n_actions, settings.gbce_t) if name == "gbce" and n_actions > 1 else 1.0
    return SampledObjective(name, proposal, settings.negatives, beta)
