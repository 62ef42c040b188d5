"""Training objectives of the torch sequence models: the full softmax, and sampled ones for large catalogs.

Every objective maps the hidden states of a batch of B windows, hidden [B, L, D], and their target columns,
targets [B, L] (0-based: column j = vocabulary.actions[j]; -1 where a position takes no loss), to the mean
loss over the M positions that take loss. A score s(h, j) comes from the network (`ScoredNetwork`):
h . e_j with the tied output, W_j h + b_j untied.

    softmax          -log softmax(s(h, .))_y over all V actions                      cost O(M V D)
    bpr              -mean_k log sigmoid(s_y - s_k)                                  cost O(B L K D)
    bce              -log sigmoid(s_y) - sum_k log sigmoid(-s_k)
    gbce             -beta log sigmoid(s_y) - sum_k log sigmoid(-s_k)   (gSASRec, Petrov & Macdonald,
                     RecSys 2023), beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (V - 1): a
                     model trained on K negatives is over-confident by the sampling rate; t in [0, 1]
                     calibrates (t = 0 is bce, t = 1 fully corrects it; the correction assumes uniform q)
    sampled_softmax  -log softmax([s_y, s_k - log Q(k)])_0, Q(j) = K q(j) the expected count of j
                     among the K draws from the proposal q (log-Q correction, Bengio & Senecal 2008):
                     sum_k exp(s_k) / Q(k) over the draws that are not the target estimates the
                     softmax's normaliser without its target term, so the loss tends to the full
                     softmax's as K grows; without the correction, frequently drawn actions are
                     over-penalised
bce and gbce score with a constant offset, log(beta / K) (`calibrated_offset`): a fresh network then starts at
the best common score instead of spending its first epochs pushing every score down (the reason is there).

Each window (one training sequence) of a batch draws its own K negatives from the proposal q, shared by
its positions: negatives [B, K], scored by one batched product hidden [B, L, D] x [B, D, K]. The proposal
is uniform over the V actions, or proportional to each action's count among the training targets
("popularity"). A draw that hits a position's own target is masked out of that position's terms, so a
positive is never its own negative. Why per window, not once per batch: K draws a batch give only K of
the V action embeddings a negative gradient in a step (256 of Beauty's 12,101: each about every 47th
step); B x K draws reach each about B K / V times a step (2.7 on Beauty), as gSASRec's draws per position
do (MovieLens-100k, gbce: validation NDCG@10 0.0166 after epoch 1 against 0.0059 with draws per batch),
at a fraction of their cost: a step with gSASRec's [M, K, D] gather took as long as the full softmax's on
Beauty (0.97x), one with the batched product 0.52x and one with a batch's shared draws 0.43x (one core).
Draws use torch's global generator, which the training loop's checkpoints save, so a resumed run draws the
negatives an uninterrupted run draws.

The settings, the choice of the objective by catalog size and gbce's beta are torch-free, in
loss_settings.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from behaviorlab.models.loss_settings import LossName, LossSettings, gbce_beta

NO_LOSS = -1  # the target column of a position that takes no loss


def log_q_correction(proposal: torch.Tensor, negatives: int, columns: torch.Tensor) -> torch.Tensor:
    """log Q(j) = log(K q(j)) for `columns` (any shape): what sampled softmax subtracts from each score."""
    return torch.log(negatives * proposal[columns])


class ScoredNetwork(Protocol):
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [M, D] -> scores [M, V] of every action."""

    def column_scores(self, hidden: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """hidden [B, L, D], each window's columns [B, K] -> scores [B, L, K] of those actions."""

    def target_scores(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """hidden [M, D], targets [M] -> [M]: each row's score of its own target."""


Objective = Callable[[ScoredNetwork, torch.Tensor, torch.Tensor], torch.Tensor]  # (network, hidden, targets) -> loss


@dataclass(frozen=True)
class SampledObjective:
    """A sampled objective over V actions; `proposal` [V] is q (sums to 1), `uniform` when q is uniform."""

    name: LossName
    proposal: torch.Tensor
    negatives: int
    beta: float = 1.0  # gbce's weight of the positive term
    uniform: bool = True
    offset: float = 0.0  # added to every score inside the loss (bce/gbce: `calibrated_offset`)

    def draw(self, windows: int) -> torch.Tensor:
        """[windows, K] columns drawn from q with replacement, K for each window."""
        if self.uniform:  # the same distribution as multinomial over a flat q, without building its table
            return torch.randint(0, self.proposal.shape[0], (windows, self.negatives), device=self.proposal.device)
        return torch.multinomial(self.proposal, windows * self.negatives, replacement=True).view(windows, self.negatives)

    def __call__(self, network: ScoredNetwork, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        scored = targets != NO_LOSS  # [B, L]
        drawn = self.draw(hidden.shape[0]).to(hidden.device)  # [B, K]
        positive = network.target_scores(hidden[scored], targets[scored]) + self.offset  # [M]
        negative = network.column_scores(hidden, drawn)[scored] + self.offset  # [B, L, K] -> [M, K]
        hit = (drawn[:, None, :] == targets[:, :, None])[scored]  # [M, K]: a position's own target drawn
        log_q = None
        if self.name == "sampled_softmax":
            log_q = log_q_correction(self.proposal.to(hidden.device), self.negatives, drawn)  # [B, K]
            log_q = log_q[:, None, :].expand(-1, targets.shape[1], -1)[scored]  # [M, K]
        return sampled_loss(self.name, positive, negative, hit, self.beta, log_q)


def sampled_loss(name: LossName, positive: torch.Tensor, negative: torch.Tensor, hit: torch.Tensor, beta: float = 1.0,
                 log_q: torch.Tensor | None = None) -> torch.Tensor:
    """The mean loss of M rows from their target scores positive [M], negative scores [M, K] and the mask
    hit [M, K] of negatives that are the row's target (left out); the negatives' log Q [M, K] for sampled_softmax.

    bce and gbce sum their K negative terms, as gSASRec does (its mean over the 1 + K terms differs by the
    constant factor 1 + K, which Adam's step does not see)."""
    kept = (~hit).to(negative.dtype)  # [M, K]
    if name == "bpr":
        per_negative = -F.logsigmoid(positive[:, None] - negative) * kept  # [M, K]
        return (per_negative.sum(dim=1) / kept.sum(dim=1).clamp(min=1.0)).mean()
    if name in ("bce", "gbce"):
        return (-beta * F.logsigmoid(positive) - (F.logsigmoid(-negative) * kept).sum(dim=1)).mean()
    if name == "sampled_softmax":
        if log_q is None:
            raise ValueError("sampled_softmax needs the negatives' log-Q corrections")
        corrected = torch.cat([positive[:, None], (negative - log_q).masked_fill(hit, float("-inf"))],
                              dim=1)  # [M, 1 + K]
        return -torch.log_softmax(corrected, dim=1)[:, 0].mean()
    raise ValueError(f"{name} is not a sampled objective")


def full_softmax(network: ScoredNetwork, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over all V actions at the positions that take loss: logits [M, V]."""
    scored = targets != NO_LOSS  # [B, L]
    return F.cross_entropy(network.logits(hidden[scored]), targets[scored])


def make_objective(settings: LossSettings, name: LossName, target_counts: torch.Tensor) -> Objective:
    """The objective `name` (from `choose_loss`) for a catalog whose training targets occur target_counts [V] times."""
    if name == "softmax":
        return full_softmax
    n_actions = int(target_counts.shape[0])
    uniform = settings.negative_sampler == "uniform"
    if uniform:
        weights = torch.ones(n_actions, dtype=torch.float64)
    else:
        weights = target_counts.double() + 1.0  # +1: an action never seen as a target can still be a negative
    proposal = (weights / weights.sum()).float()  # [V]
    beta = gbce_beta(settings.negatives, n_actions, settings.gbce_t) if name == "gbce" and n_actions > 1 else 1.0
    offset = calibrated_offset(settings.negatives, beta) if name in ("bce", "gbce") else 0.0
    return SampledObjective(name, proposal, settings.negatives, beta, uniform, offset)


def calibrated_offset(negatives: int, beta: float) -> float:
    """log(beta / K): the score that minimises bce/gbce when every action gets the same one.

    Such a model pays -beta log sigmoid(s) - K log sigmoid(-s) a position, least where beta (1 - sigmoid(s)) =
    K sigmoid(s). Shifting every score by this constant inside the loss starts a fresh network (scores near 0)
    at that minimum instead of at sigmoid = 1/2, where the K negative terms' gradient is K/2 times the
    positive one's: without the shift, the first steps only push every score down together, and Adam's
    second moments, which remember those gradients for about 1,000 steps, then shrink the steps that learn
    which action follows (a 2,000-action chain: validation NDCG@10 under 0.01 for 6 epochs, where bpr and
    the full softmax reach 0.5). A constant moves no ranking, and the scores the model serves are a softmax."""
    return math.log(beta / negatives)
