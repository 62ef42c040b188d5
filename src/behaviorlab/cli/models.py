"""`behaviorlab train`, `behaviorlab evaluate`, `behaviorlab predict`: next-behavior models.

Training sees the train events and the validation examples of the chosen split, never its test
examples; `evaluate` rebuilds the same split from the same data and scores the test examples once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from behaviorlab.atomic import exclusive_writer
from behaviorlab.cli.app import app, console, err_console
from behaviorlab.cli.common import FormatOption, JsonOption, metrics_table, output_folder, progress_bar, write_json
from behaviorlab.errors import ConfigError, Interrupted, ModelError

CHECKPOINT_FILE = "checkpoint.pt"  # inside --out while a neural model trains


def _load_split(data: Path, format_name: str | None, split: str | None) -> tuple[str, Any]:
    """(split name, SequenceSplit); with no split named, a dataset's published split wins, else leave-one-out."""
    from behaviorlab.datasets import load
    from behaviorlab.sequences import make_split, split_rule

    log = load(data, format=format_name)
    name = split_rule(log, split)
    return name, make_split(log, name)


@app.command("train")
def train(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (popularity, markov, gru4rec, lstm, sasrec, ...).")],
    data: Annotated[Path, typer.Option("--data", "-d", help="The behavior log (any format `behaviorlab data` reads).")],
    out: Annotated[Path, typer.Option("--out", "-o", callback=output_folder, help="Directory to save the trained model in.")],
    split: Annotated[str | None, typer.Option(help="loo (leave-one-out), temporal, or published (the dataset's own; "
                                                   "the default when the data has one, else loo).")] = None,
    format_name: FormatOption = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file with the model's config keys.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the config).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs for neural models (overrides the config).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (overrides the config).")] = None,
    patience: Annotated[int | None, typer.Option(help="Neural models: stop after this many epochs without a better "
                                                      "validation NDCG@10 (overrides the config).")] = None,
    time_budget: Annotated[float | None, typer.Option("--time-budget", metavar="<seconds>",
                                                      help="Neural models: stop after the epoch that crosses this "
                                                           "much training time (overrides max_train_seconds).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted training run saved in --out "
                                                          "(same --model, --data and settings).")] = False,
    json_out: JsonOption = None,
) -> None:
    """Train a next-behavior model on the train part of a split; early stopping on its validation part.

    Neural models save a checkpoint (OUT/checkpoint.pt) after every epoch; an interrupted run
    continues with the same command and --resume. The saved model replaces the checkpoint.
    """
    from behaviorlab.config import load_config
    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.neural import NeuralModel
    from behaviorlab.models.registry import model_class

    cls = model_class(model)
    # flag -> (config field, value): the training-loop flags exist only for models with those fields.
    loop_flags = {"--epochs": ("epochs", epochs), "--threads": ("threads", threads), "--patience": ("patience", patience),
                  "--time-budget": ("max_train_seconds", time_budget)}
    given = {flag: (field, value) for flag, (field, value) in loop_flags.items() if value is not None}
    foreign = [flag for flag, (field, _) in given.items() if field not in cls.config_class.model_fields]
    if foreign:
        raise ConfigError(f"{'/'.join(foreign)} {'does' if len(foreign) == 1 else 'do'} not apply to the {model} model",
                          hint=f"Drop {'it' if len(foreign) == 1 else 'them'}.")
    overrides: dict[str, Any] = {"seed": seed} | dict(given.values())
    instance = cls(load_config(cls.config_class, config, overrides))
    with exclusive_writer(out, "the model folder"):  # one training run per --out: the checkpoint has one writer
        checkpoint = out / CHECKPOINT_FILE
        _check_resume(isinstance(instance, NeuralModel), model, checkpoint, resume)
        split_name, parts = _load_split(data, format_name, split)
        console.print(f"{'Resuming' if resume else 'Training'} {model} on {parts.train!r}; {len(parts.valid):,} validation examples.")
        if not len(parts.valid):
            # Said up front: without validation a neural model runs every epoch and keeps the last one.
            consequence = (f"no early stopping: all {instance.config.epochs} epochs run and the last one is saved"
                           if isinstance(instance, NeuralModel) else "no validation metrics")
            err_console.print(f"warning: the {split_name} split has no validation examples ({consequence}). "
                              "Users need at least 3 events for leave-one-out validation.", highlight=False)
        try:
            with progress_bar(f"training {model}") as report:
                if isinstance(instance, NeuralModel):
                    instance.fit(parts.train, parts.valid, progress=report, checkpoint=checkpoint)
                else:
                    instance.fit(parts.train, parts.valid, progress=report)
        except KeyboardInterrupt:
            saved = checkpoint.exists()  # no checkpoint before the first epoch ends, nor for one-pass models
            raise Interrupted(f"Interrupted. The finished epochs are saved in {checkpoint}: run the same command with "
                              "--resume to continue." if saved else "Interrupted before anything was saved.") from None
        valid_metrics = ranking_report(instance, parts.valid, ks=(1, 5, 10)) if len(parts.valid) else {}
        instance.metadata_ = {"data": str(data), "format": format_name, "split": split_name, "valid": valid_metrics}
        instance.save(out)  # replaces the whole directory, checkpoint included: the model takes its place in one rename
        if valid_metrics:
            console.print(metrics_table(f"{model}: validation (full ranking)", valid_metrics))
        console.print(f"Saved the model to {out}")
        write_json(json_out, {"model": model, "split": split_name, "valid": valid_metrics, "config": instance.config.model_dump(mode="json")})


def _check_resume(checkpoints: bool, model: str, checkpoint: Path, resume: bool) -> None:
    """A checkpoint is continued only when asked to (--resume), and --resume needs one to continue."""
    if not checkpoints:
        if resume:
            raise ConfigError(f"--resume does not apply to the {model} model: it trains in one pass", hint="Drop it.")
        return
    if checkpoint.exists() and not resume:
        raise ConfigError(f"{checkpoint.parent} holds the checkpoint of an unfinished training run ({checkpoint})",
                          hint="Add --resume to continue it, or remove the file to start afresh.")
    if resume and not checkpoint.exists():
        raise ConfigError(f"--resume: there is no checkpoint to continue at {checkpoint}",
                          hint="Check that --out is the interrupted run's directory, or drop --resume to start afresh.")


@app.command("evaluate")
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A directory written by `behaviorlab train`.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="The behavior log the model was trained on.")],
    split: Annotated[str | None, typer.Option(help="Defaults to the split the model was trained with.")] = None,
    format_name: FormatOption = None,
    ks: Annotated[str, typer.Option(help="Cut-offs K for HR@K / NDCG@K / MRR@K, comma separated.")] = "1,5,10",
    negatives: Annotated[int | None, typer.Option(help="Rank among this many sampled negatives instead of all actions (labelled).")] = None,
    json_out: JsonOption = None,
) -> None:
    """Score a trained model on the test part of the split (full ranking over all actions by default)."""
    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.base import CountsFailures
    from behaviorlab.models.registry import load_model

    try:
        cutoffs = tuple(int(k) for k in ks.split(","))
    except ValueError:
        cutoffs = ()
    if not cutoffs or min(cutoffs) < 1:
        raise ConfigError(f"--ks must be positive integers separated by commas, got {ks!r}", hint="For example --ks 1,5,10.")
    model = load_model(model_dir)
    trained_on = model.metadata_.get("split")
    if split and trained_on and split != trained_on:
        # Another split's test part holds events this model trained on: its scores would be inflated.
        raise ConfigError(f"{model_dir} was trained on the {trained_on} split; the test part of the {split} split "
                          "overlaps its training data", hint=f"Drop --split to use {trained_on}, or train a model with --split {split}.")
    split_name, parts = _load_split(data, format_name or model.metadata_.get("format"), split or trained_on)
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
    from behaviorlab.models.registry import load_model

    model = load_model(model_dir)
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
