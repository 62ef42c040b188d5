"""`behaviorlab train`, `behaviorlab evaluate`, `behaviorlab predict`: next-behavior models.

Training sees the train events and the validation examples of the chosen split, never its test
examples; `evaluate` rebuilds the same split from the same data and scores the test examples once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from behaviorlab.cli.app import app, console, err_console
from behaviorlab.cli.common import (
    READ_KEY,
    JsonOption,
    ReadFlags,
    data_source,
    load_log,
    metrics_table,
    output_folder,
    trained_read,
    with_read_flags,
    write_json,
)
from behaviorlab.cli.training import (
    CHECKPOINT_FILE,
    TrainingFlags,
    print_baseline,
    print_training_warnings,
    save_trained,
    training_progress,
    training_run,
    with_training_flags,
)
from behaviorlab.datasets import ReadOptions
from behaviorlab.errors import ConfigError, ModelError


def _load_split(data: Path, read: ReadOptions, split: str | None) -> tuple[str, Any]:
    """(split name, SequenceSplit); with no split named, a dataset's published split wins, else leave-one-out."""
    from behaviorlab.sequences import make_split, split_rule

    log = load_log(data, read)
    name = split_rule(log, split)
    return name, make_split(log, name)


@app.command("train")
@with_training_flags
@with_read_flags
def train(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (popularity, markov, gru4rec, lstm, sasrec, ...).")],
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="The behavior log (any format `behaviorlab data` reads).")],
    out: Annotated[Path, typer.Option("--out", "-o", callback=output_folder, help="Directory to save the trained model in.")],
    split: Annotated[str | None, typer.Option(help="loo (leave-one-out), temporal, or published (the dataset's own; "
                                                   "the default when the data has one, else loo).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file with the model's config keys.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the config).")] = None,
    json_out: JsonOption = None,
    *,
    training: TrainingFlags,
    read_flags: ReadFlags,
) -> None:
    """Train a next-behavior model on the train part of a split; early stopping on its validation part.

    Torch models save a checkpoint (OUT/checkpoint.pt) after every epoch and every minute inside one (the
    config's checkpoint_seconds); an interrupted run, even one killed with kill -9, or one
    stopped by its --time-budget, continues with the same command and --resume. The saved model
    replaces the checkpoint (a budget-stopped run keeps it beside the model).
    """
    from behaviorlab.config import load_config
    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.base import TRAIN_DIGEST
    from behaviorlab.models.loss_settings import LossSettings
    from behaviorlab.models.loss_settings import describe as describe_loss
    from behaviorlab.models.registry import model_class
    from behaviorlab.models.settings import TrainSettings

    read = read_flags.options()
    console.print(f"Reading {data} to train {model}", highlight=False)  # first: a large log and torch take seconds
    cls = model_class(model)
    overrides = {"seed": seed} | training.overrides(cls.config_class, model)
    instance = cls(load_config(cls.config_class, config, overrides))
    learned = isinstance(instance.config, TrainSettings)  # trains in epochs, through the shared loop
    resume = training.resume
    with training_run(out, model, resumable=learned, resume=resume) as checkpoint:
        started = time.perf_counter()
        split_name, parts = _load_split(data, read, split)
        console.print(f"{'Resuming' if resume else 'Training'} {model} on {parts.train!r}; {len(parts.valid):,} validation "
                      f"examples (read and split in {time.perf_counter() - started:.1f} s).", highlight=False)
        if not len(parts.valid):
            # Said up front: without validation a torch model runs every epoch and keeps the last one.
            consequence = (f"no early stopping: all {instance.config.epochs} epochs run and the last one is saved"
                           if learned else "no validation metrics")
            err_console.print(f"warning: the {split_name} split has no validation examples ({consequence}). "
                              "Users need at least 3 events for leave-one-out validation.", highlight=False)
        if isinstance(instance.config, LossSettings):  # a sequence model: say which objective it trains on
            console.print(describe_loss(instance.config, len(parts.train.vocabulary)), highlight=False)
        with training_progress(f"training {model}") as report:
            if learned:
                instance.fit(parts.train, parts.valid, progress=report, checkpoint=checkpoint)
            else:
                instance.fit(parts.train, parts.valid, progress=report)
        print_baseline(instance)
        print_training_warnings(instance)
        valid_metrics = ranking_report(instance, parts.valid, ks=(1, 5, 10)) if len(parts.valid) else {}
        instance.metadata_ = {"data": str(data), READ_KEY: read.model_dump(mode="json"), "split": split_name, "valid": valid_metrics,
                              TRAIN_DIGEST: parts.train.digest()}
        kept = save_trained(instance, out, checkpoint)  # the model takes the folder's place in one rename
        if valid_metrics:
            console.print(metrics_table(f"{model}: validation (full ranking)", valid_metrics))
        console.print(f"Saved the model to {out}" + (f"; stopped by its time budget, so {CHECKPOINT_FILE} stays: "
                                                     "--resume with a larger --time-budget continues it" if kept else ""))
        write_json(json_out, {"model": model, "split": split_name, "valid": valid_metrics, "config": instance.config.model_dump(mode="json")})


def _load_predictor(model_dir: Path) -> Any:
    """The next-behavior model saved in `model_dir`; another saved kind is a ModelError that names it."""
    from behaviorlab.models.base import NextBehaviorModel
    from behaviorlab.models.registry import load_model

    model = load_model(model_dir)
    if not isinstance(model, NextBehaviorModel):
        raise ModelError(f"{model_dir} holds a '{model.name}' model, which does not predict next actions",
                         hint="Pass a directory written by `behaviorlab train --out`.")
    return model


@app.command("evaluate")
@with_read_flags
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A directory written by `behaviorlab train`.")],
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="The behavior log the model was trained on.")],
    split: Annotated[str | None, typer.Option(help="Defaults to the split the model was trained with.")] = None,
    ks: Annotated[str, typer.Option(help="Cut-offs K for HR@K / NDCG@K / MRR@K, comma separated.")] = "1,5,10",
    negatives: Annotated[int | None, typer.Option(help="Rank among this many sampled negatives instead of all actions (labelled).")] = None,
    json_out: JsonOption = None,
    *,
    read_flags: ReadFlags,
) -> None:
    """Score a trained model on the test part of the split (full ranking over all actions by default).

    The data is read as training read it, unless read options (--format, --map, --sep, ...) are given."""
    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.base import CountsFailures

    try:
        cutoffs = tuple(int(k) for k in ks.split(","))
    except ValueError:
        cutoffs = ()
    if not cutoffs or min(cutoffs) < 1:
        raise ConfigError(f"--ks must be positive integers separated by commas, got {ks!r}", hint="For example --ks 1,5,10.")
    model = _load_predictor(model_dir)
    trained_on = model.metadata_.get("split")
    if split and trained_on and split != trained_on:
        # Another split's test part holds events this model trained on: its scores would be inflated.
        raise ConfigError(f"{model_dir} was trained on the {trained_on} split; the test part of the {split} split "
                          "overlaps its training data", hint=f"Drop --split to use {trained_on}, or train a model with --split {split}.")
    read = trained_read(read_flags.options(), model.metadata_)
    split_name, parts = _load_split(data, read, split or trained_on)
    metrics = ranking_report(model, parts.test, ks=cutoffs, negatives=negatives)
    ranking = "full ranking" if negatives is None else f"{negatives} sampled negatives"
    console.print(metrics_table(f"{model.name}: test, {split_name} split ({ranking})", metrics))
    payload: dict[str, Any] = {"model": model.name, "model_dir": str(model_dir), "split": split_name, "ranking": ranking,
                               "test": metrics}
    if isinstance(model, CountsFailures):
        # The model was loaded for this command, so its counts are those of the test predictions.
        payload["failures"] = failures = model.failure_report()
        console.print(_failures_table(f"{model.name}: failed test predictions (scored as misses)", failures))
    write_json(json_out, payload)


def _failures_table(title: str, counts: dict[str, int]) -> Table:
    """Requests, failures, then the failures by kind, each with its share of the requests."""
    table = Table(title=title)
    for column in ("", "count", "share"):
        table.add_column(column, justify="left" if not column else "right")
    for key, count in counts.items():
        share = f"{count / counts['requests']:.1%}" if counts["requests"] and key != "requests" else ""
        table.add_row(key, f"{count:,}", share)
    return table


def _parse_context(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    pairs = [item.partition("=") for item in text.split(",")]
    bad = [f"{k}{s}{v}" for k, s, v in pairs if not s or not k.strip()]
    if bad:
        raise ConfigError(f"Invalid --context {bad}", hint="Write --context weekday=Mon,hour_bin=(6~9).")
    return {k.strip(): v.strip() for k, _, v in pairs}


@app.command("predict")
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A directory written by `behaviorlab train`.")],
    history: Annotated[str, typer.Option(help="Past actions, oldest first, separated by --sep.")],
    k: Annotated[int, typer.Option(min=1, help="How many next actions to list.")] = 10,
    sep: Annotated[str | None, typer.Option(help="Separator of --history (default: whitespace; use '|' when actions contain spaces).")] = None,
    context: Annotated[str | None, typer.Option(help="Context of the next event, e.g. weekday=Mon,hour_bin=(6~9).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Name the past events that drove the top prediction.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """The most likely next actions after a history."""
    from behaviorlab.models.explain import explain_prediction

    model = _load_predictor(model_dir)
    actions = [a.strip() for a in history.split(sep)] if sep else history.split()
    actions = [a for a in actions if a]
    unknown = [a for a in actions if a not in model.vocabulary]
    if unknown:
        spaced = any(" " in a for a in model.vocabulary.actions)
        raise ModelError(f"{len(unknown)} history actions are not in the model's vocabulary: {unknown[:10]}",
                         hint="This vocabulary has actions with spaces: pass --sep '|' and separate actions with '|'."
                         if spaced and not sep else "Use actions from the training data (see vocabulary.json in the model).")
    ctx = _parse_context(context)
    ranked = model.predict_next(actions, k=k, context=ctx)
    explanation = explain_prediction(model, actions, ranked[0][0], ctx) if explain else None
    if as_json:
        payload: dict[str, Any] = {"model": model.name, "history": actions,
                                   "predictions": [{"action": a, "probability": p, "description": model.vocabulary.describe(a)}
                                                   for a, p in ranked]}
        if explanation is not None:
            payload["explanation"] = explanation.to_dict()
        console.print_json(json.dumps(payload, ensure_ascii=False))
        return
    table = Table(title=f"{model.name}: next action after {len(actions)} event{'' if len(actions) == 1 else 's'}")
    for column, justify in (("rank", "right"), ("action", "left"), ("probability", "right"), ("description", "left")):
        table.add_column(column, justify=justify)
    for rank, (action, probability) in enumerate(ranked, start=1):
        table.add_row(str(rank), action, f"{probability:.4f}", model.vocabulary.describe(action))
    console.print(table)
    if explanation is not None:
        why = Table(title=f"Why '{explanation.action}' ({explanation.method})")
        for column, justify in (("position", "right"), ("past action", "left"), ("weight", "right"), ("detail", "left")):
            why.add_column(column, justify=justify)
        for c in explanation.strongest(10):
            why.add_row(str(c.position), c.action, f"{c.weight:+.4f}", c.detail)
        console.print(why)
        if explanation.note:
            console.print(explanation.note)
