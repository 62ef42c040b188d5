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
from behaviorlab.cli.common import output_folder
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
def demo(
    data: Annotated[Path | None, typer.Option("--data", help="Real log (default: ../shared/datasets/smartthings-fr).")] = None,
    out: Annotated[Path, typer.Option("--out", callback=output_folder, help="Demo folder: the generation run, evaluation and report.")] = Path("runs/demo"),
    n_users: Annotated[int, typer.Option("--n-users", min=1, help="Synthetic sequences to generate.")] = 24,
    model: Annotated[str, typer.Option(help="Embedded model name or .gguf path.")] = "qwen2.5-coder-1.5b",
    seed: Annotated[int, typer.Option(help="Seed of the whole demo.")] = 0,
) -> None:
    """Run the main job: generate synthetic behavior from real logs, evaluate it, train with it, report."""
    from behaviorlab.cli.data import inspect
    from behaviorlab.cli.evaluation import evaluate_synthetic_command, experiment_command, report_command
    from behaviorlab.cli.generate import generate

    dataset = data or find_default_dataset([Path.cwd(), Path(__file__).resolve()])
    run_dir = out / "generation"
    # Three seeds: the least that gives each gain an interval (the Markov source and the model fits vary with
    # the seed; the LLM run is one run, so its own sampling variation is not in the interval).
    seeds = ",".join(str(seed + i) for i in range(3))
    scenarios = "real_only,real_continued,finetune_augment"  # with the control, so a win can be decided
    steps = [
        (f"behaviorlab data inspect {dataset}", lambda: inspect(dataset)),
        (f"behaviorlab generate --data {dataset} --out {run_dir} --n-users {n_users} --model {model} --seed {seed}",
         lambda: generate(data=dataset, out=run_dir, n_users=n_users, model=model, seed=seed)),
        (f"behaviorlab evaluate-synthetic {run_dir} --real {dataset} --seed {seed}",
         lambda: evaluate_synthetic_command(run_dir, dataset, seed=seed)),
        # Fraction 1 only: the run is grounded on the whole training split, and an LLM run may only be paired
        # with the cells whose real data it was grounded on (smaller fractions need runs of their own subsets).
        ((f"behaviorlab experiment --real {dataset} --synthetic {run_dir} --out {run_dir / 'experiment.json'} "
         f"--model markov --fractions 1 --seeds {seeds} --scenarios {scenarios}"),
         lambda: experiment_command(dataset, run_dir / "experiment.json", synthetic=[run_dir], model="markov",
                                    fractions="1", seeds=seeds, scenarios=scenarios)),
        (f"behaviorlab report {run_dir} --real {dataset}", lambda: report_command(run_dir, real=dataset)),
    ]
    for number, (command, step) in enumerate(steps, start=1):
        console.rule(f"[bold]step {number} of {len(steps)}[/]: {command}", align="left")
        step()
    console.rule("[bold green]demo finished")
    console.print(f"Open {run_dir / 'report.html'} in a browser. Re-running the demo resumes and reuses finished work.",
                  highlight=False)
