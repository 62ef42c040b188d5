"""`behaviorlab demo`: the main job end to end on real smart-home data with the embedded default model.

inspect the real log -> generate synthetic sequences (resumable run) -> evaluate fidelity, diversity and
privacy against held-out real data -> a training scenario (real only vs real + synthetic) -> HTML report.
Each step is the same command a user would run by hand; the demo prints those commands as it goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from behaviorlab.cli.app import app, console
from behaviorlab.cli.common import (
    ReadFlags,
    data_source,
    load_log,
    output_folder,
    with_read_flags,
)
from behaviorlab.datasets import ReadOptions
from behaviorlab.errors import DataError

DEFAULT_DATASET = Path("shared") / "datasets" / "smartthings-fr"


def find_default_dataset(starts: list[Path]) -> Path:
    """SmartThings FR as kept beside the project (`../shared/datasets/`), searched upwards from each start."""
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / DEFAULT_DATASET
            if (candidate / "train.csv").is_file():
                return candidate
    raise DataError(
        "No dataset given and SmartThings FR was not found in a shared/datasets/ folder above this directory",
        hint="Pass --data PATH: a SmartThings folder (train/valid/test.csv) or any log `behaviorlab data formats` lists.",
    )


@app.command("demo")
@with_read_flags
def demo(
    data: Annotated[Path | None, typer.Option("--data", callback=data_source, help="Real log (default: ../shared/datasets/smartthings-fr).")] = None,
    out: Annotated[Path, typer.Option("--out", callback=output_folder, help="Demo folder: the generation run, evaluation and report.")] = Path("runs/demo"),
    n_users: Annotated[int, typer.Option("--n-users", min=1, help="Synthetic sequences to generate.")] = 24,
    model: Annotated[str, typer.Option(help="Embedded model name or .gguf path.")] = "qwen2.5-coder-1.5b",
    seed: Annotated[int, typer.Option(help="Seed of the whole demo.")] = 0,
    *,
    read_flags: ReadFlags,
) -> None:
    """Run the main job: generate synthetic behavior from real logs, evaluate it, train with it, report.

    The read options (--format, --map, --sep, ...) say how --data is read; every step reads it so."""
    read = read_flags.options()
    dataset = data or find_default_dataset([Path.cwd(), Path(__file__).resolve()])
    flags = read_flags.command_line()
    run_dir = out / "generation"
    # Three seeds: the least that gives each gain an interval (the Markov source and the model fits vary with
    # the seed; the LLM run is one run, so its own sampling variation is not in the interval).
    seeds = ",".join(str(seed + i) for i in range(3))
    scenarios = "real_only,real_continued,finetune_augment"  # with the control, so a win can be decided
    steps = [
        (f"behaviorlab data inspect {dataset}{flags}", lambda: _inspect(dataset, read)),
        (f"behaviorlab generate --data {dataset}{flags} --out {run_dir} --n-users {n_users} --model {model} --seed {seed}",
         lambda: _generate(dataset, read, run_dir, n_users, model, seed)),
        (f"behaviorlab evaluate-synthetic {run_dir} --real {dataset}{flags} --seed {seed}",
         lambda: _evaluate(run_dir, dataset, read, seed)),
        # Fraction 1 only: the run is grounded on the whole training split, and an LLM run may only be paired
        # with the cells whose real data it was grounded on (smaller fractions need runs of their own subsets).
        ((f"behaviorlab experiment --real {dataset}{flags} --synthetic {run_dir} --out {run_dir / 'experiment.json'} "
         f"--model markov --fractions 1 --seeds {seeds} --scenarios {scenarios}"),
         lambda: _experiment(dataset, read, run_dir, seeds, scenarios)),
        (f"behaviorlab report {run_dir} --real {dataset}{flags}", lambda: _report(run_dir, dataset, read)),
    ]
    for number, (command, step) in enumerate(steps, start=1):
        console.rule(f"[bold]step {number} of {len(steps)}[/]: {command}", align="left")
        step()
    console.rule("[bold green]demo finished")
    console.print(f"Open {run_dir / 'report.html'} in a browser. Re-running the demo resumes and reuses finished work.",
                  highlight=False)


# Each step: the library call its command makes, printed by that command's own printer.
def _inspect(dataset: Path, read: ReadOptions) -> None:
    from behaviorlab.cli.data import print_inspection
    from behaviorlab.datasets import detect_format

    print_inspection(load_log(dataset, read), f"{dataset} ({read.format or detect_format(dataset).name})")


def _generate(dataset: Path, read: ReadOptions, run_dir: Path, n_users: int, model: str, seed: int) -> None:
    from behaviorlab.cli.generate import generate_job, load_job

    generate_job(load_job(None, {"data": dataset, "out": run_dir, "read": read,
                                 "generate": {"n_users": n_users, "seed": seed, "llm": {"model": model}}}))


def _evaluate(run_dir: Path, dataset: Path, read: ReadOptions, seed: int) -> None:
    from behaviorlab.cli.evaluation import print_evaluation
    from behaviorlab.evaluate.synthetic import EVALUATION_FILE, evaluate_against_real
    from behaviorlab.generate.run_files import read_run

    run = read_run(run_dir)
    result = evaluate_against_real(load_log(dataset, read), run.synthetic, run.profiles, seed=seed)
    result.inputs = {"real": str(dataset.resolve()), "real_read": read.model_dump_json(), "synthetic": str(run_dir.resolve())}
    result.save(run_dir / EVALUATION_FILE)
    print_evaluation(result, run_dir / EVALUATION_FILE)


def _experiment(dataset: Path, read: ReadOptions, run_dir: Path, seeds: str, scenarios: str) -> None:
    from behaviorlab.cli.evaluation import print_summary, scenario_progress
    from behaviorlab.evaluate.experiment import experiment, experiment_setting
    from behaviorlab.evaluate.scenarios import ExperimentConfig, experiment_runs

    config = ExperimentConfig(predictor="markov", fractions=(1.0,), seeds=tuple(int(s) for s in seeds.split(",")),
                              scenarios=tuple(scenarios.split(",")))
    out = run_dir / "experiment.json"
    with scenario_progress() as report:
        result = experiment(experiment_setting(load_log(dataset, read)), config, experiment_runs([run_dir]), results_path=out,
                            progress=report)
    print_summary(result, out)


def _report(run_dir: Path, dataset: Path, read: ReadOptions) -> None:
    from behaviorlab.cli.evaluation import print_report
    from behaviorlab.report.builder import build_report, write_report

    data = build_report(run_dir, dataset, real_read=read)
    print_report(data, write_report(run_dir / "report.html", data))
