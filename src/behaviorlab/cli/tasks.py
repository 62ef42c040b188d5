"""`behaviorlab ctr ...`, `behaviorlab timing ...`, `behaviorlab anomaly ...`: the task models.

Each command loads a log, splits it honestly (validation for early stopping and thresholds, the
test part scored once), prints a table and optionally writes the results as JSON.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from behaviorlab.cli.app import app, console
from behaviorlab.cli.common import (
    READ_KEY,
    JsonOption,
    ReadFlags,
    comparison_table,
    data_source,
    load_log,
    metrics_table,
    output_folder,
    trained_read,
    with_read_flags,
    write_json,
)
from behaviorlab.cli.training import (
    TrainingFlags,
    print_training_warnings,
    save_trained,
    training_progress,
    training_run,
    with_training_flags,
)
from behaviorlab.datasets import ReadOptions
from behaviorlab.errors import ConfigError

ctr_app = typer.Typer(help="User-representation CTR model: p(click | user history text, item features).", no_args_is_help=True)
timing_app = typer.Typer(help="When the next event happens: time-to-next, next hour bin, daily counts.", no_args_is_help=True)
anomaly_app = typer.Typer(help="Anomaly detection for smart-home sequences (SmartGuard anomaly kinds).", no_args_is_help=True)
app.add_typer(ctr_app, name="ctr")
app.add_typer(timing_app, name="timing")
app.add_typer(anomaly_app, name="anomaly")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML file with the model's config keys.")]
SeedOption = Annotated[int | None, typer.Option(help="Random seed (overrides the config).")]
HistoryOption = Annotated[int | None, typer.Option(help="Past events the features look back.")]
SaveOption = Annotated[Path | None, typer.Option("--out", "-o", callback=output_folder, help="Also save the trained model here.")]


def _optional_run(out: Path | None, what: str, resume: bool) -> Any:
    """training_run for a command whose --out is optional: without one there is no checkpoint to resume."""
    if out is None:
        if resume:
            raise ConfigError("--resume needs --out: the checkpoint lives in the model folder", hint="Add --out.")
        return contextlib.nullcontext(None)
    return training_run(out, what, resumable=True, resume=resume)


# ---------------------------------------------------------------- ctr


def _ctr_split(data: Path, read: ReadOptions, split: str, value_column: str | None, min_value: float | None) -> Any:
    from behaviorlab.sequences import make_split, value_threshold

    log = load_log(data, read)
    if (value_column is None) != (min_value is None):
        raise ConfigError("--value-column and --min-value go together", hint="e.g. --value-column rating --min-value 4")
    if value_column is not None:
        log, report = value_threshold(log, value_column, min_value)
        console.print(str(report))
    return make_split(log, split)


@ctr_app.command("train")
@with_training_flags
@with_read_flags
def ctr_train(
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="The interaction log (items as actions).")],
    out: Annotated[Path, typer.Option("--out", "-o", callback=output_folder, help="Directory to save the model in.")],
    split: Annotated[str, typer.Option(help="loo (leave-one-out), temporal, or published (the dataset's own).")] = "loo",
    head: Annotated[str | None, typer.Option(help="logistic or mlp (overrides the config).")] = None,
    category_column: Annotated[str | None, typer.Option(help="An extra with each item's categories (e.g. genre).")] = None,
    value_column: Annotated[str | None, typer.Option(help="Keep only events whose value column is >= --min-value.")] = None,
    min_value: Annotated[float | None, typer.Option(help="e.g. 4 with --value-column rating: ratings >= 4.")] = None,
    max_examples: Annotated[int | None, typer.Option(help="Train on a seeded sample of this many positives.")] = None,
    config: ConfigOption = None,
    seed: SeedOption = None,
    json_out: JsonOption = None,
    *,
    training: TrainingFlags,
    read_flags: ReadFlags,
) -> None:
    """Train the CTR model on the train part; early stopping on the validation pairs.

    A checkpoint (OUT/checkpoint.pt) is saved after every epoch and every minute inside one; --resume continues
    an interrupted run."""
    from behaviorlab.config import load_config
    from behaviorlab.evaluate.ctr import ctr_report
    from behaviorlab.models.ctr import CTRConfig, CTRModel

    read = read_flags.options()
    flags = training.overrides(CTRConfig, "ctr")
    settings = load_config(CTRConfig, config, {"seed": seed, "head": head, "category_column": category_column,
                                               "max_examples": max_examples} | flags)
    model = CTRModel(settings)
    with training_run(out, "ctr", resumable=True, resume=training.resume) as checkpoint:
        parts = _ctr_split(data, read, split, value_column, min_value)
        with training_progress("training ctr") as report:
            model.fit(parts.train, parts.valid, progress=report, checkpoint=checkpoint)
        print_training_warnings(model)
        metrics = ctr_report(model, parts.valid, seed=settings.seed)
        model.metadata_ = {"data": str(data), READ_KEY: read.model_dump(mode="json"), "split": split, "value_column": value_column,
                           "min_value": min_value, "valid": metrics}
        save_trained(model, out, checkpoint)
    console.print(metrics_table("ctr: validation", metrics))
    console.print(f"Saved the model to {out}")
    write_json(json_out, {"model": "ctr", "split": split, "valid": metrics, "config": settings.model_dump(mode="json")})


@ctr_app.command("evaluate")
@with_read_flags
def ctr_evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A directory written by `behaviorlab ctr train`.")],
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="The interaction log the model was trained on.")],
    negatives: Annotated[int, typer.Option(help="Sampled negatives per held-out positive for the AUC.")] = 100,
    json_out: JsonOption = None,
    *,
    read_flags: ReadFlags,
) -> None:
    """AUC of held-out pairs and full-ranking HR/NDCG of each user's held-out next item (test, once).

    The data is read as training read it, unless read options (--format, --map, --sep, ...) are given."""
    from behaviorlab.evaluate.ctr import ctr_report
    from behaviorlab.models.ctr import CTRModel

    read = read_flags.options()
    model = CTRModel.load(model_dir)
    stored = model.metadata_
    parts = _ctr_split(data, trained_read(read, stored), stored.get("split", "loo"), stored.get("value_column"),
                       stored.get("min_value"))
    metrics = ctr_report(model, parts.test, negatives=negatives, seed=model.config.seed)
    console.print(metrics_table("ctr: test", metrics))
    write_json(json_out, {"model": "ctr", "model_dir": str(model_dir), "test": metrics})


# ---------------------------------------------------------------- timing


def _feature_table_config(config: Path | None, seed: int | None, history: int | None, training: TrainingFlags) -> Any:
    """The config of timing gaps / hour-bin (FeatureTableConfig): the TOML file, then --seed, --history and the
    training flags."""
    from behaviorlab.config import load_config
    from behaviorlab.models.time_to_next import FeatureTableConfig

    overrides = {"seed": seed, "history": history} | training.overrides(FeatureTableConfig, "timing")
    return load_config(FeatureTableConfig, config, overrides)


@timing_app.command("gaps")
@with_training_flags
@with_read_flags
def timing_gaps(
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="A log with timestamps.")],
    valid_ratio: Annotated[float, typer.Option(help="Share of events (newest but the test ones) for validation.")] = 0.1,
    test_ratio: Annotated[float, typer.Option(help="Share of the newest events for the test.")] = 0.1,
    history: HistoryOption = None,
    out: SaveOption = None,
    config: ConfigOption = None,
    seed: SeedOption = None,
    json_out: JsonOption = None,
    *,
    training: TrainingFlags,
    read_flags: ReadFlags,
) -> None:
    """Predict the time to each user's next event (temporal split); MAE/RMSE against baselines."""
    from behaviorlab.evaluate.timing import timing_gaps as run

    log = load_log(data, read_flags.options())
    _timing_task("time-to-next", lambda settings, report, checkpoint: run(log, settings, valid_ratio, test_ratio, report,
                                                                           checkpoint=checkpoint),
                 _feature_table_config(config, seed, history, training), training, out, json_out,
                 lambda rows: f"time to next event: test ({rows['test']:,} events, temporal split)")


def _timing_task(task: str, run: Callable[[Any, Any, Path | None], Any], settings: Any, training: TrainingFlags,
                 out: Path | None, json_out: Path | None, title: Callable[[dict[str, int]], str]) -> None:
    """What `timing gaps` and `timing hour-bin` share: `run(settings, progress, checkpoint)` (an evaluate.timing
    call) with a bar and the checkpoint of --out, then save the model and print the comparison."""
    with _optional_run(out, task, training.resume) as checkpoint, training_progress(f"training {task}") as report:
        result = run(settings, report, checkpoint)
        if out is not None:
            save_trained(result.model, out, checkpoint)
    console.print(comparison_table(title(result.rows), result.test))
    if out is not None:
        console.print(f"Saved the model to {out}")
    write_json(json_out, {"task": result.task, "rows": result.rows, "test": result.test})


@timing_app.command("hour-bin")
@with_training_flags
@with_read_flags
def timing_hour_bin(
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="A log with an hour_bin column (e.g. SmartThings).")],
    history: HistoryOption = None,
    out: SaveOption = None,
    config: ConfigOption = None,
    seed: SeedOption = None,
    json_out: JsonOption = None,
    *,
    training: TrainingFlags,
    read_flags: ReadFlags,
) -> None:
    """Predict the next event's 3-hour bin (published split, else leave-one-out); accuracy, macro recall."""
    from behaviorlab.evaluate.timing import timing_hour_bin as run

    log = load_log(data, read_flags.options())
    _timing_task("next-hour-bin", lambda settings, report, checkpoint: run(log, settings, report, checkpoint=checkpoint),
                 _feature_table_config(config, seed, history, training), training, out, json_out,
                 lambda rows: f"next hour bin: test ({rows['test']:,} events)")


@timing_app.command("daily")
@with_training_flags
@with_read_flags
def timing_daily(
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="A log with timestamps.")],
    horizon: Annotated[int | None, typer.Option(help="Days in the validation and in the test tail.")] = None,
    window: Annotated[int | None, typer.Option(help="Days of history the neural model reads.")] = None,
    min_events: Annotated[int | None, typer.Option(help="Leave out users with fewer events before the tails.")] = None,
    max_users: Annotated[int | None, typer.Option(help="A seeded sample of this many users.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", callback=output_folder, help="Also save the neural model here.")] = None,
    config: ConfigOption = None,
    seed: SeedOption = None,
    json_out: JsonOption = None,
    *,
    training: TrainingFlags,
    read_flags: ReadFlags,
) -> None:
    """Forecast per-user daily event counts: ARIMA (order chosen on validation) vs a neural model."""
    from dataclasses import asdict

    from behaviorlab.config import load_config
    from behaviorlab.evaluate.timing import compare_forecasters
    from behaviorlab.models.daily_counts import DailyCountsConfig, DailyCountsModel

    flags = training.overrides(DailyCountsConfig, "daily counts")
    settings = load_config(DailyCountsConfig, config, {
        "seed": seed, "horizon": horizon, "window": window, "min_events": min_events, "max_users": max_users} | flags)
    log = load_log(data, read_flags.options())
    neural = DailyCountsModel(settings)
    with _optional_run(out, "daily-counts", training.resume) as checkpoint, training_progress("fitting ARIMA per user") as report:
        result = compare_forecasters(log, settings, progress=report, neural=neural, checkpoint=checkpoint)
        if out is not None:
            save_trained(neural, out, checkpoint)
    console.print(comparison_table(
        f"daily event counts: test tail {result.test_days[0]}..{result.test_days[-1]} ({result.users} users)", result.metrics))
    console.print(f"ARIMA order {result.arima_order} chosen on validation MAE {result.arima_validation_mae}; "
                  f"{result.arima_failures} fits failed (those users got their training mean).")
    if out is not None:
        console.print(f"Saved the neural model to {out}")
    write_json(json_out, {"task": "daily-counts", **asdict(result)})


# ---------------------------------------------------------------- anomaly


def _anomaly_table(report: Any) -> Table:
    table = Table(title=f"anomaly detection: test ({report.n_normal:,} normal sequences, threshold {report.threshold:.3f})")
    for column in ("kind", "anomalies", "precision", "recall", "F1", "not injectable"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for row in [*report.per_kind, report.overall]:
        table.add_row(row.kind, f"{row.n_anomalies:,}", f"{row.precision:.4f}", f"{row.recall:.4f}", f"{row.f1:.4f}",
                      str(report.skipped.get(row.kind, "")))
    return table


@anomaly_app.command("train")
@with_read_flags
def anomaly_train(
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="Smart-home sequences with a published split (SmartThings).")],
    out: Annotated[Path, typer.Option("--out", "-o", callback=output_folder, help="Directory to save the detector in.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The sequence model whose likelihood scores events.")] = "markov",
    model_config: Annotated[Path | None, typer.Option(help="TOML file with the sequence model's config keys.")] = None,
    config: ConfigOption = None,
    json_out: JsonOption = None,
    *,
    read_flags: ReadFlags,
) -> None:
    """Fit the sequence model on train, choose the threshold on valid with injected anomalies."""
    from behaviorlab.config import load_config
    from behaviorlab.evaluate.anomaly import split_logs
    from behaviorlab.models.anomaly import AnomalyConfig, fit_detector
    from behaviorlab.models.base import TRAIN_DIGEST
    from behaviorlab.models.registry import model_class

    settings = load_config(AnomalyConfig, config)
    cls = model_class(model)
    sequence_model = cls(load_config(cls.config_class, model_config))
    train, valid, _ = split_logs(load_log(data, read_flags.options()))
    with training_progress(f"training {model}") as report:
        detector = fit_detector(sequence_model, train, valid, settings, progress=report)
    detector.model.metadata_ |= {"data": str(data), TRAIN_DIGEST: train.digest()}  # what `serve` shows as trained-on
    detector.save(out)
    console.print(f"Threshold {detector.threshold_:.4f} chosen on validation ({settings.threshold_rule}). Saved to {out}")
    write_json(json_out, {"model": model, "threshold": detector.threshold_, "config": settings.model_dump(mode="json")})


@anomaly_app.command("evaluate")
@with_read_flags
def anomaly_evaluate(
    detector_dir: Annotated[Path, typer.Argument(help="A directory written by `behaviorlab anomaly train`.")],
    data: Annotated[Path, typer.Option("--data", "-d", callback=data_source, help="The same data, with its test split.")],
    json_out: JsonOption = None,
    *,
    read_flags: ReadFlags,
) -> None:
    """Precision, recall and F1 per anomaly kind on the test split with injected anomalies (once)."""
    from behaviorlab.evaluate.anomaly import evaluate_detector, split_logs
    from behaviorlab.models.anomaly import SequenceAnomalyDetector

    detector = SequenceAnomalyDetector.load(detector_dir)
    _, _, test = split_logs(load_log(data, read_flags.options()))
    report = evaluate_detector(detector, test)
    console.print(_anomaly_table(report))
    write_json(json_out, {"detector": str(detector_dir), "model": detector.model.name, "test": report.to_dict()})
