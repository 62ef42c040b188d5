"""What the torch sequence models share: the embedding/output network around an encoder, fitting
through the shared training loop, batched scoring, gradient x input explanations, persistence.

A model file (recurrent.py for GRU4Rec and the LSTM, sasrec.py) supplies only its config and
`build_encoder`: a module mapping embedded, left-padded histories [B, L, D] and a real-event mask
[B, L] to one hidden state per position [B, L, D], where position t has seen only positions <= t.

Where the rest lives: the training loop and its config in training.py, checkpoints in checkpoint.py,
the saved-directory layout and the predict/score API in base.py.
"""

from __future__ import annotations

import io
import json
import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from behaviorlab.errors import ModelError, NotFittedError
from behaviorlab.models.base import SequenceModel
from behaviorlab.models.baseline_check import (
    RECORD_KEY,
    markov_baseline,
    popularity_score,
    shortfall,
    validation_score,
)
from behaviorlab.models.checkpoint import Checkpoint, fingerprint, run_identity
from behaviorlab.models.explain import Contribution, Explanation
from behaviorlab.models.loss_settings import choose_loss
from behaviorlab.models.loss_settings import describe as describe_loss
from behaviorlab.models.losses import Objective, make_objective
from behaviorlab.models.training import (
    NeuralConfig,
    TrainingRecord,
    Validation,
    Windows,
    make_windows,
    resolve_device,
    train_network,
)
from behaviorlab.schema import ACTION, USER

if TYPE_CHECKING:
    from behaviorlab.progress import ProgressReporter
    from behaviorlab.schema import EventLog
    from behaviorlab.sequences import NextEventExamples

WEIGHTS_FILE = "weights.pt"
STATE_FILE = "state.json"
INIT_STD = 0.02  # normal init of every embedding, as in SASRec/RecBole


class SequenceNetwork(nn.Module):
    """Action (and context) embeddings around an encoder, and the output layer that scores actions."""

    def __init__(self, n_actions: int, dim: int, encoder: nn.Module, context_sizes: Sequence[int], tied_output: bool) -> None:
        super().__init__()
        self.action_embedding = nn.Embedding(n_actions + 1, dim, padding_idx=0)  # id 0 = padding
        self.encoder = encoder
        # One table per context column; id 0 = unknown/absent value.
        self.context_embeddings = nn.ModuleList(nn.Embedding(size + 1, dim, padding_idx=0) for size in context_sizes)
        # The context joins the history state through a small MLP on [h; c], so it can change
        # *which* action follows the history (an additive c alone could only shift popularity).
        self.context_mix = nn.Sequential(nn.Linear(2 * dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)) \
            if context_sizes else None
        # Tied: score = h . e_a (the input embeddings double as the output layer, as in SASRec).
        # Untied: a separate softmax layer with a bias per action.
        self.output = None if tied_output else nn.Linear(dim, n_actions)
        for table in [self.action_embedding, *self.context_embeddings]:
            nn.init.normal_(table.weight, std=INIT_STD)
            with torch.no_grad():
                table.weight[0].zero_()

    def hidden(self, ids: torch.Tensor, embedded: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, L] -> hidden states [B, L, D]; `embedded` replaces the lookup (for gradients)."""
        x = self.action_embedding(ids) if embedded is None else embedded  # [B, L, D]
        return self.encoder(x, ids != 0)

    def add_context(self, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """hidden [..., D], the target event's context ids [..., C] -> hidden [..., D] that knows the context."""
        if self.context_mix is None:
            return hidden
        summed = sum(table(context[..., c]) for c, table in enumerate(self.context_embeddings))  # [..., D]
        return hidden + self.context_mix(torch.cat([hidden, summed], dim=-1))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [M, D] -> scores [M, V] over the actions (padding excluded)."""
        if self.output is None:
            return hidden @ self.action_embedding.weight[1:].T
        return self.output(hidden)

    def column_scores(self, hidden: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """hidden [B, L, D], each window's action columns [B, K] -> scores [B, L, K]: `logits` at those columns."""
        if self.output is None:
            return hidden @ self.action_embedding(columns + 1).transpose(1, 2)  # [B, D, K]; id = column + 1
        return hidden @ self.output.weight[columns].transpose(1, 2) + self.output.bias[columns][:, None, :]

    def target_scores(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """hidden [M, D], one action column per row targets [M] -> [M]: each row's score of its target."""
        if self.output is None:
            return (hidden * self.action_embedding(targets + 1)).sum(dim=-1)
        return (hidden * self.output.weight[targets]).sum(dim=-1) + self.output.bias[targets]


class NeuralModel(SequenceModel):
    """Base of the torch sequence models; see the module docstring."""

    config: NeuralConfig
    tied_output: ClassVar[bool] = True
    explanation_method: ClassVar[str] = "gradient x input"
    # Whether the last state depends on how much left padding a history has (a recurrent state runs through
    # it); an encoder that masks padding sets False, and prediction then drops a batch's all-padding columns.
    reads_padding: ClassVar[bool] = True

    def __init__(self, config: NeuralConfig | None = None) -> None:
        super().__init__(config)
        self.network_: nn.Module | None = None
        self.context_values_: dict[str, list[str]] = {}  # column -> known values (id = index + 1)
        self.training_record_: TrainingRecord | None = None
        self.objective_: str | None = None  # the training objective of the last fit, as the training log states it

    @abstractmethod
    def build_encoder(self) -> nn.Module:
        """The model's encoder: (x [B, L, D], real [B, L] bool) -> [B, L, D], causal."""

    # -- set-up -------------------------------------------------------------------------------
    def _setup(self) -> None:
        if self.config.threads is not None:
            torch.set_num_threads(self.config.threads)
        torch.manual_seed(self.config.seed)

    def _build_network(self) -> SequenceNetwork:
        """A fresh network for this config and the learned vocabulary and context values (seeded by _setup)."""
        return SequenceNetwork(len(self.vocabulary), self.config.embedding_dim, self.build_encoder(),
                               [len(self.context_values_[c]) for c in self.config.context_columns], self.tied_output)

    def _new_network(self) -> SequenceNetwork:
        vocabulary = self.vocabulary
        network = self._build_network()
        if self.config.text_init != "none":
            from behaviorlab.models.text_embeddings import action_embedding_init

            init = action_embedding_init(vocabulary, self.config.embedding_dim, self.config.seed, std=INIT_STD)  # [V, D]
            with torch.no_grad():
                network.action_embedding.weight[1:] = torch.from_numpy(init)
            network.action_embedding.weight.requires_grad_(self.config.text_init == "finetune")
        return network

    def context_values(self) -> Mapping[str, Sequence[str]]:
        return {c: self.context_values_.get(c, []) for c in self.config.context_columns}

    def _context_ids(self, values: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        """int64 [n, C] context ids; unseen or missing values map to 0 (unknown)."""
        ids = np.zeros((n, len(self.config.context_columns)), dtype=np.int64)
        for c, column in enumerate(self.config.context_columns):
            if column in values:
                lookup = {value: i + 1 for i, value in enumerate(self.context_values_[column])}
                ids[:, c] = [lookup.get(str(v), 0) for v in values[column]]
        return ids

    # -- learning -----------------------------------------------------------------------------
    def fit(self, train: EventLog, valid: NextEventExamples | None = None, *, warm_start: bool = False,
            progress: ProgressReporter | None = None, checkpoint: str | Path | None = None) -> Self:
        """Train on every prefix of `train`'s sequences; keep the epoch best on `valid` (NDCG@10).

        `checkpoint` makes the training resumable: the training state is saved to that file after
        every epoch, and when the file already exists this call resumes it from the epoch after the
        saved one and ends with exactly the weights an uninterrupted fit computes. A checkpoint
        written by another run (another model, config, training data, validation data, or warm
        start) is refused with a ModelError. The file stays when fit returns, holding the finished
        run (fitting again with it returns the same weights without training); delete it once the
        model is saved.

        Only the torch models take a checkpoint because only their fits are long: the count models
        fit in one pass over the data and the zero-shot model does not train, so an interrupted fit
        of those loses next to nothing.
        """
        import polars as pl

        if warm_start and self.network_ is None:
            raise ModelError("warm_start needs a fitted model", hint="Fit (or load) the model before a warm start.")
        vocabulary = self._adopt_vocabulary(train, warm_start)
        missing = [c for c in self.config.context_columns if c not in train.frame.columns]
        if missing:
            raise ModelError(f"Context columns {missing} are not in the training log",
                             hint=f"Choose context_columns from {train.frame.columns}.")
        self._setup()
        frame = train.frame.sort([USER, train.time_column], maintain_order=True)
        if not warm_start:
            self.context_values_ = {c: sorted(frame.get_column(c).cast(pl.String).drop_nulls().unique().to_list())
                                    for c in self.config.context_columns}
        ids = {action: vocabulary.id_of(action) for action in vocabulary.actions}
        grouped = frame.group_by(USER, maintain_order=True).agg(
            pl.col(ACTION), *[pl.col(c).cast(pl.String) for c in self.config.context_columns])
        sequences = [np.fromiter((ids[a] for a in actions), dtype=np.int64) for actions in grouped.get_column(ACTION)]
        contexts = [self._context_ids({c: row[c] for c in self.config.context_columns}, len(row[ACTION]))
                    for row in grouped.iter_rows(named=True)]
        windows = make_windows(sequences, contexts, self.config.max_len, self.config.window_stride)

        if not warm_start:
            self.network_ = self._new_network()
        network = self.network_  # train_network moves it to the configured device
        objective = self._objective(windows)

        def loss_fn(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            if not self.reads_padding:  # the columns no window of the batch reaches change nothing: dropped
                first = _first_real_column(batch["inputs"].numpy(force=True))
                batch = {name: tensor[:, first:] for name, tensor in batch.items()}  # [B, L', ...]
            hidden = network.hidden(batch["inputs"])  # [B, L, D]
            scored = batch["targets"] != 0  # [B, L]: positions that take loss
            with_context = network.add_context(hidden[scored], batch["context"][scored])  # [M, D]
            hidden = hidden.index_put((scored,), with_context)  # [B, L, D]: the objectives need the windows
            return objective(network, hidden, batch["targets"] - 1)  # columns [B, L]; -1 = no loss

        validation = None
        if valid is not None and len(valid):
            from behaviorlab.metrics import target_columns

            target_columns(self, valid)  # unknown targets or history actions fail now, not after the first epoch
            self.check_known([a for history in valid.histories for a in history])
            validation = Validation(lambda: validation_score(self, valid), metric=RECORD_KEY, higher_is_better=True,
                                    examples=len(valid))

        run = None
        if checkpoint is not None:
            checked = valid if validation is not None else None  # the examples that choose the best epoch
            run = Checkpoint(Path(checkpoint), self._run_identity(windows, checked, warm_start))
        data = {"inputs": torch.from_numpy(windows.inputs), "targets": torch.from_numpy(windows.targets),
                "context": torch.from_numpy(windows.context)}
        lengths = self.training_lengths(windows)
        record = train_network(network, loss_fn, data, self.config, self.config.seed, validation, progress, run,
                               None if lengths is None else torch.from_numpy(lengths))
        if validation is not None and self.config.markov_baseline:
            self._compare_with_markov(record, train, valid, math.ceil(len(windows) / self.config.batch_size))
        self.training_record_ = record
        return self

    def training_lengths(self, windows: Windows) -> np.ndarray | None:
        """int64 [W]: each window's length, for batches of similar length (None: batches in a plain random order)."""
        return None

    def _compare_with_markov(self, record: TrainingRecord, train: EventLog, valid: NextEventExamples,
                             steps_per_epoch: int) -> None:
        """Put the Markov baseline's validation score in `record`, and a warning with the cause when below it."""
        record.baseline_valid, record.baseline_seconds = markov_baseline(train, valid)
        score = record.best_valid if record.best_valid is not None else validation_score(self, valid)  # never validated
        if score < record.baseline_valid:  # is it at the level of a model that ignores the history?
            record.popularity_valid = popularity_score(train, valid)
        warning = shortfall(self.name, score, record, self.config, len(valid), steps_per_epoch)
        if warning is not None:
            record.warnings.append(warning)

    def _objective(self, windows: Windows) -> Objective:
        """The loss of this fit (the configured one, or chosen by catalog size), stated in `objective_`."""
        n_actions = len(self.vocabulary)
        self.objective_ = describe_loss(self.config, n_actions)
        targets = windows.targets[windows.targets != 0] - 1  # the action columns that take loss
        return make_objective(self.config, choose_loss(self.config, n_actions),
                              torch.from_numpy(np.bincount(targets, minlength=n_actions)))

    def _run_identity(self, windows: Windows, valid: NextEventExamples | None, warm_start: bool) -> dict[str, Any]:
        """What makes two fits the same run (see `fit`): the model, its config, and fingerprints of the data."""
        meaning = json.dumps([self.vocabulary.actions, self.context_values_]).encode()  # what the ids stand for
        validation = None
        if valid is not None:
            ids, ctx = self._encode(valid.histories, valid.context)  # what validation feeds the network
            validation = [ids, ctx, np.asarray(self.vocabulary.ids_of(valid.targets), dtype=np.int64)]
        start = "fresh"
        if warm_start:
            start = "warm: " + fingerprint(*[t.detach().cpu().numpy() for t in self._network().state_dict().values()])
        return run_identity(self.name, self.config, [windows.inputs, windows.targets, windows.context, meaning],
                            validation, start)

    # -- prediction ---------------------------------------------------------------------------
    def _network(self) -> nn.Module:
        if self.network_ is None:
            raise NotFittedError(self.name)
        return self.network_

    def _encode(self, histories: Sequence[Sequence[str]], context: Mapping[str, Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
        from behaviorlab.sequences import pad_left

        vocabulary = self.vocabulary
        ids = pad_left([vocabulary.ids_of(h) for h in histories], self.config.max_len)  # [N, L]
        return ids, self._context_ids(context, len(histories))  # [N, C]

    def _log_probs(self, histories: Sequence[Sequence[str]], context: Mapping[str, Sequence[Any]]) -> np.ndarray:
        network = self._network()
        device = next(network.parameters()).device
        was_training = network.training
        if was_training:  # eval() walks every submodule: skipped for a loaded (eval) network, a serving hot path
            network.eval()
        ids, ctx = self._encode(histories, context)
        # An encoder that masks padding reads the histories shortest first, so that each batch drops the columns
        # none of its rows reaches (Beauty's validation: most batches 10 columns wide, not 50); rows go back in place.
        order = np.argsort((ids != 0).sum(axis=1), kind="stable") if not self.reads_padding else np.arange(len(ids))
        out = np.empty((len(ids), len(self.vocabulary)), dtype=np.float32)
        with torch.inference_mode():  # no autograd records at all (the scores leave as numpy)
            for start in range(0, len(ids), self.config.eval_batch_size):
                rows = order[start:start + self.config.eval_batch_size]
                chunk = ids[rows]  # [B, L]
                if not self.reads_padding:
                    chunk = chunk[:, _first_real_column(chunk):]  # [B, L'] (short histories: far less attention work)
                batch_ids = torch.from_numpy(chunk).to(device)
                batch_ctx = torch.from_numpy(ctx[rows]).to(device)
                hidden = network.add_context(network.hidden(batch_ids)[:, -1], batch_ctx)  # [B, D]: after the last event
                out[rows] = torch.log_softmax(network.logits(hidden).float(), dim=-1).cpu().numpy()  # [B, V]
        if was_training:
            network.train()
        return out

    # -- explanation --------------------------------------------------------------------------
    def _attributions(self, ids: torch.Tensor, ctx: torch.Tensor, target: int) -> np.ndarray:
        """[L] gradient x input: d log p(target) / d e_t, dotted with e_t, for each history position t."""
        network = self._network()
        network.eval()
        embedded = network.action_embedding(ids).detach().requires_grad_(True)  # [1, L, D]
        hidden = network.add_context(network.hidden(ids, embedded)[:, -1], ctx)  # [1, D]
        log_prob = torch.log_softmax(network.logits(hidden), dim=-1)[0, target]
        (gradient,) = torch.autograd.grad(log_prob, embedded)
        return (gradient * embedded).sum(dim=-1)[0].detach().cpu().numpy()

    def explain(self, history: Sequence[str], action: str, context: Mapping[str, str] | None = None) -> Explanation:
        """How much each of the last max_len past events pushed `action`'s log-probability."""
        self.check_known([*history, action])
        ids, ctx = self._encode([list(history)], {k: [v] for k, v in (context or {}).items()})
        device = next(self._network().parameters()).device
        weights = self._attributions(torch.from_numpy(ids).to(device), torch.from_numpy(ctx).to(device),
                                     self.vocabulary.column_of(action))  # [L]
        seen = min(len(history), self.config.max_len)
        first = len(history) - seen  # older events were cut off by max_len
        contributions = [Contribution(position=first + i, action=history[first + i], weight=float(weights[-seen + i]))
                         for i in range(seen)]
        probability = float(np.exp(self.score(history, action, context)))
        return Explanation(action=action, probability=probability, method=self.explanation_method,
                           contributions=contributions,
                           note=f"read the last {seen} of {len(history)} events" if first else "")

    # -- persistence --------------------------------------------------------------------------
    def _state_files(self) -> dict[str, bytes]:
        buffer = io.BytesIO()
        state = {name: tensor.detach().cpu() for name, tensor in self._network().state_dict().items()}
        torch.save(state, buffer)
        extra = {"context_values": self.context_values_,
                 "training": self.training_record_.to_dict() if self.training_record_ else None,
                 "objective": self.objective_}
        return {WEIGHTS_FILE: buffer.getvalue(), STATE_FILE: json.dumps(extra).encode()}

    def _restore_state(self, directory: Path) -> None:
        extra = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        self.context_values_ = extra["context_values"]
        self.objective_ = extra.get("objective")  # absent in models saved before the objective was recorded
        self._setup()
        network = self._build_network()
        # weights_only=True: a weights file can hold tensors only, never code.
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        try:
            network.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelError(f"{directory / WEIGHTS_FILE} does not fit the saved config: {exc}",
                             hint="Re-train the model; the files are inconsistent.") from exc
        if self.config.text_init == "frozen":
            network.action_embedding.weight.requires_grad_(False)
        self.network_ = network.to(resolve_device(self.config.device)).eval()


def _first_real_column(ids: np.ndarray) -> int:
    """The first column of left-padded ids [B, L] that holds a real id in some row (L - 1 when none does)."""
    real = (ids != 0).any(axis=0)  # [L]
    return int(real.argmax()) if real.any() else ids.shape[1] - 1
