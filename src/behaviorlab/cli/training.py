"""What the training commands share: the training-loop flags, one resumable run per output folder, and
the progress of a run.

Every torch model's config is a TrainSettings, so the same flags (--epochs, --patience, --time-budget,
--device, --threads) override it in every command that trains one, the same --resume continues
its checkpoint (OUT/checkpoint.pt), and the same `training_progress` shows it. They are declared once,
as TrainingFlags' fields; a command takes them with `@with_training_flags` and reads them as its
`training` argument.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from behaviorlab.atomic import atomic_path, exclusive_writer
from behaviorlab.cli.app import console, err_console
from behaviorlab.cli.common import option_group, progress_bar
from behaviorlab.config import StrictConfig
from behaviorlab.errors import ConfigError, Interrupted
from behaviorlab.models.settings import TrainSettings
from behaviorlab.progress import ProgressReporter

CHECKPOINT_FILE = "checkpoint.pt"  # inside --out while a torch model trains

EpochsOption = Annotated[int | None, typer.Option(help="Maximum training epochs (overrides the config).")]
ThreadsOption = Annotated[int | None, typer.Option(help="CPU threads for torch (overrides the config).")]
PatienceOption = Annotated[int | None, typer.Option(help="Stop after this many epochs without a better validation "
                                                         "score, once min_epochs and min_steps are done (overrides "
                                                         "the config).")]
TimeBudgetOption = Annotated[float | None, typer.Option("--time-budget", metavar="<seconds>",
                                                        help="Stop at the first batch past this much training time, "
                                                             "saving where it is (overrides max_train_seconds); "
                                                             "--resume with a larger one continues.")]
DeviceOption = Annotated[str | None, typer.Option(help="auto, cpu or cuda (overrides the config).")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue the interrupted (or budget-stopped) training "
                                                             "run saved in --out (same data and settings).")]


@dataclass(frozen=True)
class TrainingFlags:
    """The training flags of one command line, as `with_training_flags` hands them to the command."""

    epochs: EpochsOption = None
    threads: ThreadsOption = None
    patience: PatienceOption = None
    time_budget: TimeBudgetOption = None
    device: DeviceOption = None
    resume: ResumeOption = False

    def overrides(self, config_class: type[StrictConfig], model: str) -> dict[str, Any]:
        """The given flags as config keys (--resume is not one); they exist only for models that train in epochs."""
        flags = {"--epochs": ("epochs", self.epochs), "--threads": ("threads", self.threads),
                 "--patience": ("patience", self.patience), "--time-budget": ("max_train_seconds", self.time_budget),
                 "--device": ("device", self.device)}
        given = {flag: (key, value) for flag, (key, value) in flags.items() if value is not None}
        if given and not issubclass(config_class, TrainSettings):
            raise ConfigError(f"{'/'.join(given)} {'does' if len(given) == 1 else 'do'} not apply to the {model} model",
                              hint=f"Drop {'it' if len(given) == 1 else 'them'}.")
        return dict(given.values())


with_training_flags = option_group(TrainingFlags, "training")  # the flags declared once, as TrainingFlags' fields


@contextmanager
def training_run(out: Path, model: str, *, resumable: bool, resume: bool) -> Iterator[Path | None]:
    """Hold `out` for one training run; the checkpoint to train with (None for one-pass models).

    A checkpoint is continued only when asked to (--resume), and --resume needs one to continue; Ctrl-C
    becomes an Interrupted error that says how to continue."""
    with exclusive_writer(out, "the model folder"):  # one training run per --out: the checkpoint has one writer
        checkpoint = out / CHECKPOINT_FILE
        if not resumable:
            if resume:
                raise ConfigError(f"--resume does not apply to the {model} model: it trains in one pass", hint="Drop it.")
        elif checkpoint.exists() and not resume:
            raise ConfigError(f"{out} holds the checkpoint of an unfinished training run ({checkpoint})",
                              hint="Add --resume to continue it, or remove the file to start afresh.")
        elif resume and not checkpoint.exists():
            raise ConfigError(f"--resume: there is no checkpoint to continue at {checkpoint}",
                              hint="Check that --out is the interrupted run's directory, or drop --resume to start afresh.")
        try:
            yield checkpoint if resumable else None
        except KeyboardInterrupt:
            saved = checkpoint.exists()  # none before the first save (an epoch or checkpoint_seconds), nor for one-pass models
            raise Interrupted(f"Interrupted. The training up to its last save is in {checkpoint}: run the same command "
                              "with --resume to continue." if saved else "Interrupted before anything was saved.") from None


def save_trained(model: Any, out: Path, checkpoint: Path | None) -> bool:
    """Save a trained model into `out`, which replaces the folder and so the checkpoint in it; a run stopped
    by its time budget keeps its checkpoint there, so --resume with a larger budget continues it.

    Returns whether the checkpoint was kept."""
    record = getattr(model, "training_record_", None)
    kept = checkpoint.read_bytes() if checkpoint is not None and record is not None and record.stopped_by_time else None
    model.save(out)
    if kept is not None:
        with atomic_path(checkpoint) as tmp:
            tmp.write_bytes(kept)
    return kept is not None


def print_training_warnings(model: Any) -> None:
    """Say what the training loop found short in a run (TrainingRecord.warnings: e.g. few validation examples)."""
    record = getattr(model, "training_record_", None)
    for warning in record.warnings if record is not None else []:
        err_console.print(f"warning: {warning}", highlight=False)


def print_baseline(model: Any) -> None:
    """The Markov baseline a sequence model's fit was read against (TrainingRecord.baseline_valid), when it was."""
    record = getattr(model, "training_record_", None)
    if record is not None and record.baseline_valid is not None:
        console.print(f"Markov baseline on the same validation examples: NDCG@10 {record.baseline_valid:.4f} "
                      f"(fitted and scored in {record.baseline_seconds:.1f} s; markov_baseline = false "
                      "in the config skips it)", highlight=False)


IN_EPOCH_LINE_SECONDS = 30.0  # a line per finished epoch, and inside a long one the first batch, then this often


@contextmanager
def training_progress(title: str) -> Iterator[ProgressReporter]:
    """A bar of epochs for a torch model's training: a line of figures per finished epoch and, from inside the
    epochs, a line as the first batch starts (the epoch's size), a line after it and then one every IN_EPOCH_LINE_SECONDS (batch, examples/s, the
    epoch's ETA), so a long epoch is seen moving in a terminal and in a log file alike. Other reports (ARIMA's,
    say) pass through to the bar unchanged."""
    printed_at: float | None = None
    with progress_bar(title) as report:
        def training_report(done: int, total: int, info: Mapping[str, float | str] | None = None) -> None:
            nonlocal printed_at
            if info is None or "batch" not in info:  # a finished epoch: the bar prints its figures
                report(done, total, info)
                return
            report(done, total)
            if "eta_seconds" not in info:  # the start of the first batch: the epoch's size, before any timing
                console.print(f"epoch {info['epoch']}: {info['batches']:,} batches over {info['rows']:,} rows; "
                              f"batch {info['batch'] + 1:,} running (it times the epoch)", highlight=False)
                return
            if printed_at is None or time.monotonic() - printed_at >= IN_EPOCH_LINE_SECONDS:
                printed_at = time.monotonic()
                console.print(f"epoch {info['epoch']}: batch {info['batch']:,}/{info['batches']:,}  "
                              f"{float(info['examples_per_s']):,.0f} examples/s  "
                              f"ETA {_duration(float(info['eta_seconds']))}", highlight=False)

        yield training_report


def _duration(seconds: float) -> str:
    """12s, 4m05s, 2h03m."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
