"""User-representation CTR model: p(y=1 | u, i) = sigmoid(theta^T [u; x_i; u * x_i]), or an MLP on it.

- Item features x_i [F]: the sentence embedding (all-MiniLM-L6-v2, 384 wide) of the item's
  vocabulary description, followed by a multi-hot of its categorical values (e.g. genres) when the
  log has a category column. They are fixed: the model learns only theta (or the MLP).
- User vector u [F]: the recency-weighted mean of the item features of the user's last `recent`
  actions (weight decay**i for the i-th most recent; decay 1 = the plain mean). This is the text of
  the user's history, embedded and pooled.
- A learned bias per item (theta's weight on a one-hot item id) carries how clickable an item is
  for anyone, which the item's text cannot say; `item_bias = false` leaves it out.
- The element-wise product u * x_i is appended because a linear score of [u; x_i] alone ranks every
  user's items in the same order (theta_u . u is constant per user); the product is what lets a
  logistic model prefer items *like the user's history*. `interaction = false` gives the plain form.

Training pairs: each observed (history, next item) is a positive, `negatives` uniformly sampled
other items with the same history are negatives (seeded); binary cross-entropy; early stopping on
the validation pairs' loss. As a `NextBehaviorModel` its next-action scores are the log-softmax of
the logits over all items, so ranking metrics (HR@10, NDCG@10) use the same code as every model.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
from pydantic import Field

from behaviorlab.config import StrictConfig
from behaviorlab.errors import DataError, ModelError
from behaviorlab.evaluate.metrics import auc, ranking_metrics, sampled_candidates, target_columns
from behaviorlab.models.base import BaseModel, log_softmax_rows
from behaviorlab.models.tabular import FitSettings, TrainingHistory, predict_batched, train_network
from behaviorlab.schema import ACTION, EventLog
from behaviorlab.sequences import encode_examples, examples_from_log

if TYPE_CHECKING:
    import torch

    from behaviorlab.progress import ProgressReporter
    from behaviorlab.sequences import NextEventExamples

STATE_FILE = "ctr.pt"


class CTRConfig(StrictConfig):
    head: Literal["logistic", "mlp"] = "logistic"
    hidden: int = Field(64, ge=1)          # MLP width
    interaction: bool = True               # append u * x_i to [u; x_i]
    item_bias: bool = True                 # a learned bias per item (the item id as a one-hot feature)
    recent: int = Field(20, ge=1)          # how many recent actions form the user vector
    recency_decay: float = Field(0.9, gt=0.0, le=1.0)
    negatives: int = Field(4, ge=1)        # sampled negatives per observed positive
    category_column: str | None = None     # an extra holding each item's categorical values
    category_separator: str = "|"
    max_examples: int | None = Field(None, ge=1)  # cap on training positives (seeded sample)
    fit: FitSettings = Field(default_factory=lambda: FitSettings(epochs=20, batch_size=1024, learning_rate=3e-3))
    seed: int = 0


def item_categories(log: EventLog, column: str, separator: str) -> dict[str, set[str]]:
    """action -> the set of categorical values it carries in `column` (split on `separator`)."""
    if column not in log.frame.columns:
        raise DataError(f"The log has no category column '{column}'",
                        hint=f"Choose one of its extras: {sorted(log.schema.extras)}, or leave category_column unset.")
    pairs = log.frame.select(ACTION, pl.col(column).cast(pl.String)).drop_nulls().unique()
    out: dict[str, set[str]] = {}
    for action, value in pairs.iter_rows():
        out.setdefault(action, set()).update(v.strip() for v in value.split(separator) if v.strip())
    return out


def build_network(features: np.ndarray, config: CTRConfig) -> torch.nn.Module:
    """The torch module (built in a function so that importing this file does not import torch)."""
    import torch
    from torch import nn

    class UserItemCTR(nn.Module):
        """logit(u, i) for padded history ids [B, R] and item ids [B]; `all_logits` scores every item."""

        def __init__(self) -> None:
            super().__init__()
            width = features.shape[1]                                   # F
            self.register_buffer("features", torch.as_tensor(features))  # [V + 1, F], row 0 = padding (zeros)
            out = config.hidden if config.head == "mlp" else 1
            # The first layer split by input part, W [out, 3F] = [W_u | W_x | W_ux], so that scoring
            # every item never materialises a [B, V, 3F] input.
            self.user_part = nn.Linear(width, out)
            self.item_part = nn.Linear(width, out, bias=False)
            self.product_part = nn.Linear(width, out, bias=False) if config.interaction else None
            self.output = nn.Linear(config.hidden, 1) if config.head == "mlp" else None
            # theta's weights on a one-hot item id: how clickable the item is for anyone (popularity)
            self.bias = nn.Embedding(features.shape[0], 1) if config.item_bias else None
            if self.bias is not None:
                nn.init.zeros_(self.bias.weight)
            decay = torch.tensor([config.recency_decay ** i for i in range(config.recent)][::-1], dtype=torch.float32)
            self.register_buffer("decay", decay)                        # [R], the most recent (last column) = 1

        def user_vectors(self, history: torch.Tensor) -> torch.Tensor:
            weights = self.decay[-history.shape[1]:] * (history > 0)     # [B, R], padding weighs 0
            pooled = (weights.unsqueeze(-1) * self.features[history]).sum(1)  # [B, F]
            return pooled / weights.sum(1, keepdim=True).clamp(min=1e-9)

        def head(self, hidden: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
            """Logits from first-layer pre-activations [..., out] and the items' ids [...]."""
            logits = hidden.squeeze(-1) if self.output is None else self.output(torch.relu(hidden)).squeeze(-1)
            return logits if self.bias is None else logits + self.bias(item_ids).squeeze(-1)

        def forward(self, history: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
            users, items = self.user_vectors(history), self.features[item]  # [B, F], [B, F]
            hidden = self.user_part(users) + self.item_part(items)          # [B, out]
            if self.product_part is not None:
                hidden = hidden + self.product_part(users * items)
            return self.head(hidden, item)                                   # [B]

        def all_logits(self, history: torch.Tensor) -> torch.Tensor:
            users, items = self.user_vectors(history), self.features[1:]     # [B, F], [V, F]
            hidden = self.user_part(users).unsqueeze(1) + self.item_part(items).unsqueeze(0)  # [B, V, out]
            if self.product_part is not None:
                # W_ux (u * x) = (W_ux * u) x: [B, out, F] @ [F, V] -> [B, out, V]
                scaled = self.product_part.weight.unsqueeze(0) * users.unsqueeze(1)
                hidden = hidden + (scaled @ items.T).transpose(1, 2)
            item_ids = torch.arange(1, self.features.shape[0], device=hidden.device)  # [V]
            return self.head(hidden, item_ids)                               # [B, V]

    return UserItemCTR()


class CTRModel(BaseModel):
    name: ClassVar[str] = "ctr"
    config_class: ClassVar[type[StrictConfig]] = CTRConfig
    config: CTRConfig

    def __init__(self, config: CTRConfig | None = None) -> None:
        super().__init__(config)
        self.network_: torch.nn.Module | None = None
        self.categories_: list[str] = []  # the multi-hot columns of the item features, in order
        self.training_history_: TrainingHistory | None = None

    # -- features -------------------------------------------------------------------------------
    def item_features(self, log: EventLog) -> np.ndarray:
        """float32 [V + 1, 384 + C]: row 0 is padding; row id = the action's text embedding + categories."""
        from behaviorlab.models.text_embeddings import embed_texts

        vocabulary = self.vocabulary
        text = embed_texts([vocabulary.describe(a) for a in vocabulary.actions])       # [V, 384]
        categories: dict[str, set[str]] = {}
        if self.config.category_column is not None:
            categories = item_categories(log, self.config.category_column, self.config.category_separator)
        self.categories_ = sorted(set().union(*categories.values())) if categories else []
        column = {c: j for j, c in enumerate(self.categories_)}
        multi_hot = np.zeros((len(vocabulary), len(self.categories_)), dtype=np.float32)  # [V, C]
        for row, action in enumerate(vocabulary.actions):
            multi_hot[row, [column[c] for c in categories.get(action, ())]] = 1.0
        table = np.concatenate([text, multi_hot], axis=1)
        return np.concatenate([np.zeros((1, table.shape[1]), dtype=np.float32), table])

    def _pairs(self, examples: NextEventExamples, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(history ids [P, R], item ids [P], labels [P]): each example's target (label 1) and
        `negatives` uniformly drawn other items (label 0) with the same history."""
        import torch

        histories, targets = encode_examples(examples, self.vocabulary, self.config.recent)  # [N, R], [N]
        n, k, v = len(targets), self.config.negatives, len(self.vocabulary)
        rng = np.random.default_rng(seed)
        drawn = rng.integers(1, v, size=(n, k))                          # ids 1..V-1, shifted past the target
        negatives = drawn + (drawn >= targets[:, None])                  # [N, k], never the target
        items = np.concatenate([targets, negatives.reshape(-1)])
        rows = np.concatenate([np.arange(n), np.repeat(np.arange(n), k)])
        labels = np.concatenate([np.ones(n), np.zeros(n * k)]).astype(np.float32)
        return torch.as_tensor(histories[rows]), torch.as_tensor(items), torch.as_tensor(labels)

    # -- learning -------------------------------------------------------------------------------
    def fit(self, train: EventLog, valid: NextEventExamples | None = None, *, warm_start: bool = False,
            progress: ProgressReporter | None = None) -> Self:
        """Learn theta (or the MLP) on train's (history, next item) pairs; early stopping on valid's pairs."""
        import torch

        self._adopt_vocabulary(train, warm_start)
        if len(self.vocabulary) < 2:
            raise ModelError("The CTR model needs at least two items to sample negatives from")
        torch.manual_seed(self.config.seed)
        if not warm_start or self.network_ is None:
            self.network_ = build_network(self.item_features(train), self.config)
        examples = examples_from_log(train, min_history=1, max_len=self.config.recent)
        if not len(examples):
            raise DataError("No training pairs: every user has a single event", hint="Train on users with 2+ events.")
        if self.config.max_examples is not None and len(examples) > self.config.max_examples:
            keep = np.sort(np.random.default_rng(self.config.seed).choice(len(examples), self.config.max_examples, replace=False))
            examples = type(examples)([examples.user_ids[i] for i in keep], [examples.histories[i] for i in keep],
                                      [examples.targets[i] for i in keep])
        loss = torch.nn.BCEWithLogitsLoss()
        pairs = self._pairs(examples, self.config.seed)
        valid_pairs = self._pairs(valid, self.config.seed + 1) if valid is not None and len(valid) else None
        self.training_history_ = train_network(self.network_, loss, pairs, valid_pairs, self.config.fit,
                                               self.config.seed, progress)
        return self

    # -- prediction -----------------------------------------------------------------------------
    def _network(self) -> torch.nn.Module:
        if self.network_ is None:
            raise ModelError("The ctr model is not fitted yet", hint="Call fit() (or `behaviorlab ctr train`) first.")
        return self.network_

    def logits(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        """float32 [N, V]: logit of p(click | user history, item) for every item."""
        import torch

        from behaviorlab.sequences import pad_left

        network = self._network()
        ids = torch.as_tensor(pad_left([self.vocabulary.ids_of(h) for h in histories], self.config.recent))  # [N, R]
        network.eval()
        with torch.no_grad():
            parts = [network.all_logits(ids[start:start + 64]) for start in range(0, len(ids), 64)]
        return (torch.cat(parts) if parts else torch.zeros((0, len(self.vocabulary)))).numpy()

    def click_probability(self, history: Sequence[str], items: Sequence[str]) -> np.ndarray:
        """float32 [len(items)]: p(y = 1 | u(history), x_item)."""
        import torch

        from behaviorlab.sequences import pad_left

        self.check_known([*history, *items])
        ids = torch.as_tensor(pad_left([self.vocabulary.ids_of(history)] * len(items), self.config.recent))
        logits = predict_batched(self._network(), [ids, torch.as_tensor(self.vocabulary.ids_of(items))])
        return torch.sigmoid(logits).numpy()

    def _log_probs(self, histories: Sequence[Sequence[str]], context: Mapping[str, Sequence[Any]]) -> np.ndarray:
        # [N, V]: the click logits normalised over all items (the next-item distribution).
        return log_softmax_rows(self.logits(histories)).astype(np.float32)

    # -- persistence ----------------------------------------------------------------------------
    def _state_files(self) -> dict[str, bytes]:
        import torch

        buffer = io.BytesIO()
        torch.save({"network": self._network().state_dict(), "categories": self.categories_}, buffer)
        return {STATE_FILE: buffer.getvalue()}

    def _restore_state(self, directory: Path) -> None:
        import torch

        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
        self.categories_ = list(state["categories"])
        self.network_ = build_network(state["network"]["features"].numpy(), self.config)
        self.network_.load_state_dict(state["network"])
        self.network_.eval()


def ctr_report(model: CTRModel, examples: NextEventExamples, *, negatives: int = 100, seed: int = 0,
               ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """AUC of held-out pairs (each target against `negatives` sampled other items, pooled over
    examples) and full-ranking metrics of each held-out next item among all items."""
    logits = model.logits(examples.histories)                            # [N, V]
    targets = target_columns(model, examples)                             # [N]
    k = min(negatives, logits.shape[1] - 1)
    paired, _ = sampled_candidates(logits, targets, k, seed)              # [N, 1 + k], the target first
    scores = np.concatenate([paired[:, 0], paired[:, 1:].reshape(-1)])
    labels = np.concatenate([np.ones(len(paired)), np.zeros(paired[:, 1:].size)])
    return {f"AUC ({k} sampled negatives)": auc(labels, scores), **ranking_metrics(logits, targets, ks)}
