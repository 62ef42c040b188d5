"""User-representation CTR model: p(y=1 | u, i) = sigmoid(theta^T [u; x_i; u * x_i] + b_i + w_s s(u, i)), or an MLP.

- Item features [F]: the sentence embedding (all-MiniLM-L6-v2, 384 wide) of the item's vocabulary
  description, followed by a multi-hot of its categorical values (e.g. genres) when the log has a
  category column. They are fixed; x_i = Q f_i is their learned linear projection to `projection`
  dimensions (`projection = None` uses f_i itself).
- User vector u [d]: the recency-weighted mean of the projected features of the user's last
  `recent` actions (weight decay**j for the j-th most recent), i.e. u = P (pooled history text)
  with its own learned map P. This is the text of the user's history, embedded and pooled.
- The element-wise product u * x_i is what lets the score prefer items *like the user's history*
  (theta^T [u; x_i] alone ranks every user's items in the same order). On the raw MiniLM vectors
  it is a diagonal bilinear form u^T diag(theta) x_i, which is weak; after the projections it is
  the low-rank bilinear form f_u^T P^T diag(theta) Q f_i, which is the main gain (below).
- b_i, a learned bias per item (theta's weight on the one-hot item id), carries how clickable an
  item is for anyone, which its text cannot say; it starts at the item's centred log count in the
  training log, where the softmax would take it anyway.
- s(u, i) = 1 when item i is among the user's last `recent` actions (`seen_feature`); its learned
  weight w_s says whether people come back to what they had (apps, devices: positive) or not
  (films: strongly negative).

Training: each (history, next item) of the training log with `negatives` uniformly drawn other items
(fixed, seeded). objective = "softmax+bce" (default) adds two losses: the softmax cross-entropy of the
next item over all items (what ranking needs) and the binary cross-entropy of the target against
its sampled negatives (what keeps sigmoid(logit) a probability: that the user picks this item rather
than a random one, at 1 : `negatives` odds). objective = "bce" is the pointwise BCE alone. Early
stopping on the same loss over the validation examples. As a `NextBehaviorModel` its next-action
scores are the log-softmax of the logits over all items, so ranking metrics use the shared code.

Measured on MovieLens-100k, leave-one-out, VALIDATION examples only (943 users, 1,682 items, ranking
over all items; there popularity gets HR@10 0.038, NDCG@10 0.017, AUC 0.786 and Markov 0.102, 0.051),
one change at a time, seed 0; seeds move HR@10 by about 0.01. The rows before the last come
from a scratch copy of this model with the same math; the last is this code
(`bench/tasks.py --stages ctr --ctr-on valid`).
                                                                     HR@10  NDCG@10  AUC(100)
  old default: raw features, BCE, 4 negatives, 30k of the 97k
    training examples, 8 epochs, recent 20, decay 0.9                0.024  0.013    0.777
  all 97k examples, up to 30 epochs (it was undertrained)            0.050  0.020    0.833
  softmax over all items instead of BCE; item biases from log counts 0.054  0.023    0.827
  + learned projections P, Q to 64 before [u; x; u*x]                0.111  0.051    0.862
  + seen feature (then a recency-weighted count), learning rate 1e-2 0.143  0.074    0.866
  softmax+bce instead of softmax                                     0.147  0.075    0.881
  seen as 0/1, recent 50, decay 0.7                                  0.171  0.092    0.891
  recent 100                                                         0.190  0.103    0.894
  the defaults, this code (100 s fit on one core, best epoch 9)      0.186  0.100    0.893
Starting the item biases at zero instead of the log counts costs about 0.01 HR@10 (0.180 and 0.182
against 0.190 and 0.194 at recent 100, seeds 0 and 1; seed 2 gives 0.181 with log counts).
Neutral or worse, so not taken: projection 32 or 128 (0.150, 0.144 against 0.147); decay 0.5 at
recent 20 (0.123 against 0.141 for 0.7 and 0.143 for 0.9); decay 0.8 or 0.9 at recent 100 (0.178,
0.176 from zero biases, against 0.180 for 0.7); recent 200 (0.195, twice the cost); a sampled
softmax over 100 uniform negatives (0.104, and slower than the full softmax at 1.7k items); BCE
alone with everything else (0.133, 0.063, AUC 0.893). The MLP head with objective = "bce" (recent
50) reaches 0.163, 0.080 and the highest AUC, 0.903; on the softmax objective it costs batch x
items x hidden per step (15 minutes an epoch on one core here), so train it with "bce".
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from behaviorlab.config import StrictConfig
from behaviorlab.errors import DataError, ModelError, NotFittedError
from behaviorlab.models.base import SequenceModel, log_softmax_rows
from behaviorlab.models.checkpoint import Checkpoint, fingerprint, run_identity
from behaviorlab.models.settings import TrainSettings
from behaviorlab.models.training import TrainingRecord, loss_validation, predict_batched, train_network
from behaviorlab.schema import ACTION, EventLog
from behaviorlab.sequences import encode_examples, examples_from_log

if TYPE_CHECKING:
    from behaviorlab.progress import ProgressReporter
    from behaviorlab.sequences import NextEventExamples

STATE_FILE = "ctr.pt"


class CTRConfig(TrainSettings):
    head: Literal["logistic", "mlp"] = "logistic"
    hidden: int = Field(64, ge=1)          # MLP width
    projection: int | None = Field(64, ge=1)  # width of the learned maps P, Q before [u; x; u*x]; None = raw features
    interaction: bool = True               # append u * x_i to [u; x_i]
    item_bias: bool = True                 # a learned bias per item, started at its centred log count
    seen_feature: bool = True              # a learned weight on "item i is among the user's recent actions"
    recent: int = Field(100, ge=1)         # how many recent actions form the user vector (and the seen window)
    recency_decay: float = Field(0.7, gt=0.0, le=1.0)
    objective: Literal["softmax+bce", "bce"] = "softmax+bce"
    negatives: int = Field(4, ge=1)        # sampled negatives per observed positive
    category_column: str | None = None     # an extra holding each item's categorical values
    category_separator: str = "|"
    max_examples: int | None = Field(None, ge=1)  # cap on training positives (seeded sample)
    # training; no min_steps (an epoch is many steps here)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(1024, ge=1)
    learning_rate: float = Field(1e-2, gt=0.0)
    patience: int = Field(3, ge=1)  # epochs without a lower validation loss before stopping
    min_steps: int = Field(0, ge=0)
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


class UserItemCTR(nn.Module):
    """Logits for padded history ids [B, R] and candidate ids [B, K], or every item when none are given."""

    def __init__(self, features: np.ndarray, *, head: Literal["logistic", "mlp"], hidden: int, projection: int | None,
                 interaction: bool, item_bias: bool, seen_feature: bool, recent: int, recency_decay: float,
                 bias_start: np.ndarray | None = None) -> None:
        """`bias_start` [V + 1] starts the per-item biases; None starts them at zero (as before loading weights)."""
        super().__init__()
        rows, width = features.shape                                 # V + 1, F
        self.register_buffer("features", torch.as_tensor(features))  # [V + 1, F], row 0 = padding (zeros)
        d = projection or width
        self.user_map = nn.Linear(width, d, bias=False) if projection else None  # P
        self.item_map = nn.Linear(width, d, bias=False) if projection else None  # Q
        out = hidden if head == "mlp" else 1
        # The first layer split by input part, W [out, 3d] = [W_u | W_x | W_ux], so that scoring
        # every item never materialises a [B, V, 3d] input for the logistic head.
        self.user_part = nn.Linear(d, out)
        self.item_part = nn.Linear(d, out, bias=False)
        self.product_part = nn.Linear(d, out, bias=False) if interaction else None
        self.output = nn.Linear(hidden, 1) if head == "mlp" else None
        self.bias = nn.Embedding(rows, 1) if item_bias else None
        if self.bias is not None:
            start = np.zeros(rows, dtype=np.float32) if bias_start is None else bias_start
            self.bias.weight.data.copy_(torch.as_tensor(start, dtype=torch.float32).unsqueeze(1))
        self.seen_weight = nn.Parameter(torch.zeros(1)) if seen_feature else None  # w_s
        decay = torch.tensor([recency_decay ** j for j in range(recent)][::-1], dtype=torch.float32)
        self.register_buffer("decay", decay)                        # [R], the most recent (last column) = 1

    def user_vectors(self, history: torch.Tensor) -> torch.Tensor:
        # P (weighted mean of f) = weighted mean of (P f): project the [V + 1, F] table once.
        table = self.features if self.user_map is None else self.user_map(self.features)  # [V + 1, d]
        weights = self.decay[-history.shape[1]:] * (history > 0)     # [B, R], padding weighs 0
        pooled = (weights.unsqueeze(-1) * table[history]).sum(1)     # [B, d]
        return pooled / weights.sum(1, keepdim=True).clamp(min=1e-9)

    def item_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        items = self.features[ids]                                   # [..., F]
        return items if self.item_map is None else self.item_map(items)  # [..., d]

    def forward(self, history: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        users = self.user_vectors(history)                           # [B, d]
        if items is None:                                            # every item: [B, V]
            items = torch.arange(1, self.features.shape[0], device=history.device)  # [V]
            x = self.item_vectors(items)                             # [V, d]
            hidden = self.user_part(users).unsqueeze(1) + self.item_part(x).unsqueeze(0)  # [B, V, out]
            if self.product_part is not None:
                # W_ux (u * x) = (W_ux * u) x: [B, out, d] @ [d, V] -> [B, out, V], no [B, V, d] product
                scaled = self.product_part.weight.unsqueeze(0) * users.unsqueeze(1)
                hidden = hidden + (scaled @ x.T).transpose(1, 2)
            had = torch.zeros(len(history), self.features.shape[0], device=history.device)
            had = had.scatter(1, history, 1.0)[:, 1:]                # [B, V] s(u, i); column 0 (padding) dropped
        else:                                                        # candidates [B, K]: [B, K]
            x = self.item_vectors(items)                             # [B, K, d]
            hidden = self.user_part(users).unsqueeze(1) + self.item_part(x)  # [B, K, out]
            if self.product_part is not None:
                hidden = hidden + self.product_part(users.unsqueeze(1) * x)
            had = (history.unsqueeze(1) == items.unsqueeze(2)).any(-1).float()  # [B, K]; ids >= 1 never match padding
        logits = hidden.squeeze(-1) if self.output is None else self.output(torch.relu(hidden)).squeeze(-1)
        if self.bias is not None:
            logits = logits + self.bias(items).squeeze(-1)
        return logits if self.seen_weight is None else logits + self.seen_weight * had


def build_network(features: np.ndarray, config: CTRConfig, item_bias: np.ndarray | None = None) -> UserItemCTR:
    """The network of `config` over the item feature table [V + 1, F]; `item_bias` as UserItemCTR's `bias_start`."""
    return UserItemCTR(features, head=config.head, hidden=config.hidden, projection=config.projection,
                       interaction=config.interaction, item_bias=config.item_bias, seen_feature=config.seen_feature,
                       recent=config.recent, recency_decay=config.recency_decay, bias_start=item_bias)


def softmax_and_bce(logits: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the target over all items [B, V] plus BCE of the candidates [B, 1 + k] (target first)."""
    picked = logits.gather(1, candidates - 1)                            # [B, 1 + k]; ids are columns + 1
    return F.cross_entropy(logits, candidates[:, 0] - 1) + pointwise_bce(picked)


def pointwise_bce(logits: torch.Tensor) -> torch.Tensor:
    """BCE of candidate logits [B, 1 + k]: label 1 for the target (column 0), 0 for the negatives."""
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(logits, labels)


class CTRModel(SequenceModel):
    name: ClassVar[str] = "ctr"
    config_class: ClassVar[type[StrictConfig]] = CTRConfig
    config: CTRConfig

    def __init__(self, config: CTRConfig | None = None) -> None:
        super().__init__(config)
        self.network_: nn.Module | None = None
        self.categories_: list[str] = []  # the multi-hot columns of the item features, in order
        self.training_record_: TrainingRecord | None = None

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

    def log_counts(self, log: EventLog) -> np.ndarray:
        """float32 [V + 1]: log(1 + count) of each item in `log`, centred over the items (row 0, padding, 0)."""
        counts = np.bincount(self.vocabulary.ids_of(log.frame.get_column(ACTION).to_list()),
                             minlength=len(self.vocabulary) + 1)                 # [V + 1]
        logs = np.log1p(counts[1:].astype(np.float64))
        return np.concatenate([[0.0], logs - logs.mean()]).astype(np.float32)

    def _tensors(self, examples: NextEventExamples, seed: int) -> dict[str, torch.Tensor]:
        """The training (or validation) tensors: history ids [N, R] and candidates [N, 1 + k] (the
        target, then `negatives` uniformly drawn other items)."""
        histories, targets = encode_examples(examples, self.vocabulary, self.config.recent)  # [N, R], [N]
        n, k, v = len(targets), self.config.negatives, len(self.vocabulary)
        drawn = np.random.default_rng(seed).integers(1, v, size=(n, k))  # ids 1..V-1, shifted past the target
        candidates = np.concatenate([targets[:, None], drawn + (drawn >= targets[:, None])], axis=1)  # [N, 1 + k]
        return {"history": torch.as_tensor(histories), "candidates": torch.as_tensor(candidates)}

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        network = self._network()
        if self.config.objective == "softmax+bce":
            return softmax_and_bce(network(batch["history"]), batch["candidates"])  # scores every item [B, V]
        return pointwise_bce(network(batch["history"], batch["candidates"]))      # scores the candidates [B, 1 + k]

    # -- learning -------------------------------------------------------------------------------
    def fit(self, train: EventLog, valid: NextEventExamples | None = None, *, warm_start: bool = False,
            progress: ProgressReporter | None = None, checkpoint: str | Path | None = None) -> Self:
        """Learn P, Q, theta (or the MLP), the item biases and the seen weight on train's (history,
        next item) pairs; early stopping on the same loss over valid's examples.

        `checkpoint` makes the training resumable, as for the sequence models (NeuralModel.fit)."""
        self._adopt_vocabulary(train, warm_start)
        if len(self.vocabulary) < 2:
            raise ModelError("The CTR model needs at least two items to sample negatives from")
        torch.manual_seed(self.config.seed)
        start = "fresh"
        if warm_start and self.network_ is not None:
            start = "warm: " + fingerprint(*[t.detach().cpu().numpy() for t in self.network_.state_dict().values()])
        else:
            self.network_ = build_network(self.item_features(train), self.config, self.log_counts(train))
        examples = examples_from_log(train, min_history=1, max_len=self.config.recent)
        if not len(examples):
            raise DataError("No training pairs: every user has a single event", hint="Train on users with 2+ events.")
        if self.config.max_examples is not None and len(examples) > self.config.max_examples:
            keep = np.sort(np.random.default_rng(self.config.seed).choice(len(examples), self.config.max_examples, replace=False))
            examples = type(examples)([examples.user_ids[i] for i in keep], [examples.histories[i] for i in keep],
                                      [examples.targets[i] for i in keep])
        tensors = self._tensors(examples, self.config.seed)
        valid_tensors = self._tensors(valid, self.config.seed + 1) if valid is not None and len(valid) else None
        validation = None if valid_tensors is None else loss_validation(self._loss, valid_tensors, self.config)
        run = None
        if checkpoint is not None:
            # the items' text and categories, not their float embeddings: a resume restores the saved feature table
            meaning = json.dumps([self.vocabulary.to_json(), self.categories_]).encode()
            arrays = [tensor.numpy() for tensor in tensors.values()]
            checked = None if valid_tensors is None else [tensor.numpy() for tensor in valid_tensors.values()]
            run = Checkpoint(Path(checkpoint), run_identity(self.name, self.config, [*arrays, meaning], checked, start))
        self.training_record_ = train_network(self.network_, self._loss, tensors, self.config, self.config.seed,
                                              validation, progress, run)
        return self

    # -- prediction -----------------------------------------------------------------------------
    def _network(self) -> nn.Module:
        if self.network_ is None:
            raise NotFittedError(self.name)
        return self.network_

    def logits(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        """float32 [N, V]: logit of p(click | user history, item) for every item."""
        from behaviorlab.sequences import pad_left

        network = self._network()
        ids = torch.as_tensor(pad_left([self.vocabulary.ids_of(h) for h in histories], self.config.recent))  # [N, R]
        if not len(ids):
            return np.zeros((0, len(self.vocabulary)), dtype=np.float32)
        return predict_batched(network, [ids], batch_size=64).numpy()

    def click_probability(self, history: Sequence[str], items: Sequence[str]) -> np.ndarray:
        """float32 [len(items)]: p(y = 1 | u(history), x_item)."""
        self.check_known([*history, *items])
        columns = np.asarray(self.vocabulary.columns_of(items), dtype=np.int64)
        return (1.0 / (1.0 + np.exp(-self.logits([history])[0, columns]))).astype(np.float32)

    def _log_probs(self, histories: Sequence[Sequence[str]], context: Mapping[str, Sequence[Any]]) -> np.ndarray:
        # [N, V]: the click logits normalised over all items (the next-item distribution).
        return log_softmax_rows(self.logits(histories)).astype(np.float32)

    # -- persistence ----------------------------------------------------------------------------
    def _state_files(self) -> dict[str, bytes]:
        buffer = io.BytesIO()
        torch.save({"network": self._network().state_dict(), "categories": self.categories_}, buffer)
        return {STATE_FILE: buffer.getvalue()}

    def _restore_state(self, directory: Path) -> None:
        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
        self.categories_ = list(state["categories"])
        self.network_ = build_network(state["network"]["features"].numpy(), self.config)
        try:
            self.network_.load_state_dict(state["network"])
        except RuntimeError as exc:  # missing or unexpected weights: another version of this model
            raise ModelError(f"{directory / STATE_FILE} does not fit this version of the ctr model",
                             hint="Retrain it with `behaviorlab ctr train`.") from exc
        self.network_.eval()
