"""The settings of the sequence models' training objective, and the choice of it by catalog size.

Torch-free (like settings.py), so a config can be read and checked without loading torch; the
objectives themselves, with their equations, are in losses.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from behaviorlab.config import StrictConfig

LossName = Literal["softmax", "bpr", "bce", "gbce", "sampled_softmax"]

# Up to this many actions `loss = "auto"` trains on the full softmax, above it on bpr. Cost: a SASRec step on
# Amazon Beauty (12,101 actions, d=64, 2 layers, 128 windows) with 256 negatives per window took 0.52x the full
# softmax's (one core, the two interleaved in one process; the encoder is the rest), and the softmax's share grows
# with V. Quality per epoch, since bce/gbce start from the calibrated offset (losses.py): validation NDCG@10 of
# every sampled objective within 0.97-1.08x the full softmax's on a generated 1,500-action chain after 4 epochs
# (bpr highest; tests/models/test_losses.py), gbce equal to it on MovieLens-100k (0.0111, 0.0187 after epochs 1-2
# against 0.0105, 0.0187), and on Beauty's first 5,000 users (all 12,101 actions) gbce 0.0082, 0.0096 after
# epochs 1-2 against the full softmax's 0.0093, 0.0101: a little below it per epoch, at about half its cost.
# Before that fix, with the whole of Beauty and a 4-minute budget, the full softmax reached the best validation
# score (0.0187 after 2 epochs; bpr 0.0160 after 4). The sampled objectives may now win on time at Beauty's size,
# but that has not been measured on the whole log to its best epoch, so the full softmax stays the default while
# it is affordable; the threshold, twice the largest catalog measured, is an extrapolation, not a measurement.
# bpr stays the choice above it: it learned on every log tried, and ranked highest on the chain.
FULL_SOFTMAX_MAX_ACTIONS = 25000


class LossSettings(StrictConfig):
    """How a sequence model's loss is computed (part of every torch sequence model's config)."""

    loss: Literal["auto", "softmax", "bpr", "bce", "gbce", "sampled_softmax"] = "auto"
    negatives: int = Field(256, ge=1)  # K, drawn for each training window by the sampled objectives
    negative_sampler: Literal["uniform", "popularity"] = "uniform"  # the proposal q of the negatives
    gbce_t: float = Field(0.75, ge=0.0, le=1.0)  # gSASRec's calibration t (0.75 in the paper)
    full_softmax_max_actions: int = Field(FULL_SOFTMAX_MAX_ACTIONS, ge=1)  # "auto": softmax up to this many


def choose_loss(settings: LossSettings, n_actions: int) -> LossName:
    """The objective a run trains on: the configured one, or by catalog size for "auto".

    Full softmax costs O(V) per position against O(K) for the sampled objectives; it is exact and needs no
    negatives' settings, so it stays the default while it is affordable; above the threshold bpr (see
    FULL_SOFTMAX_MAX_ACTIONS)."""
    if settings.loss != "auto":
        return settings.loss
    return "softmax" if n_actions <= settings.full_softmax_max_actions else "bpr"


def gbce_beta(negatives: int, n_actions: int, t: float) -> float:
    """gSASRec's beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (V - 1), the negative sampling rate
    (at most 1: K draws with replacement can outnumber the V - 1 other actions)."""
    alpha = min(1.0, negatives / max(n_actions - 1, 1))
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def describe(settings: LossSettings, n_actions: int) -> str:
    """One line for the training log: which objective a run on n_actions trains on, and why."""
    name = choose_loss(settings, n_actions)
    why = "set in the config" if settings.loss != "auto" else (
        f"auto: {n_actions} actions {'<=' if name == 'softmax' else '>'} full_softmax_max_actions "
        f"{settings.full_softmax_max_actions}")
    if name == "softmax":
        return f"loss: full softmax over {n_actions} actions ({why})"
    extra = f", beta {gbce_beta(settings.negatives, n_actions, settings.gbce_t):.4g}" if name == "gbce" and n_actions > 1 else ""
    return f"loss: {name} with {settings.negatives} {settings.negative_sampler} negatives per window{extra} ({why})"
