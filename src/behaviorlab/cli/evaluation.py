"""`behaviorlab evaluate-synthetic`, `behaviorlab experiment` and `behaviorlab report`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from behaviorlab.cli.app import app, console
from behaviorlab.cli.common import (
    EngineOption,
    ReadFlags,
    data_source,
    load_log,
    output_file,
    output_folder,
    progress_bar,
    progress_bars,
    with_read_flags,
)
from behaviorlab.config import load_config
from behaviorlab.errors import ConfigError

RealOption = Annotated[Path, typer.Option("--real", callback=data_source, help="The real dataset the synthetic data imitates (any loadable format).")]


def _metric_table(title: str, rows: list) -> Table:
    with_baseline = any(row.baseline is not None for row in rows)
    table = Table(title=title)
    columns = ["metric", "synthetic", *(["Markov baseline"] if with_baseline else []), "real reference", "reading"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("metric", "reading") else "right")
    for row in rows:
        values = [row.value, *([row.baseline] if with_baseline else []), row.reference]
        table.add_row(row.name, *("—" if v is None or math.isnan(v) else f"{v:.4f}" for v in values), row.ideal)
    return table


@app.command("evaluate-synthetic")
@with_read_flags
def evaluate_synthetic_command(
    synthetic: Annotated[Path, typer.Argument(help="A generation run directory, or a synthetic .parquet file.")],
    real: RealOption,
    out: Annotated[Path | None, typer.Option("--out", "--json-out", callback=output_file, help="Where to write the JSON (default: RUN/evaluation.json).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the real-vs-real halves, the classifier folds and samples.")] = 0,
    baseline: Annotated[bool, typer.Option(help=(
        "Also evaluate Markov-chain data of the same size, fitted to the real training part."))] = True,
    *,
    read_flags: ReadFlags,
) -> None:
    """Fidelity, diversity/personality and privacy of synthetic data, each beside a real-data reference."""
    from behaviorlab.evaluate.synthetic import EVALUATION_FILE, evaluate_against_real
    from behaviorlab.generate.run_files import read_run

    read = read_flags.options()
    run = read_run(synthetic)
    real_log = load_log(real, read)
    with console.status("Evaluating the synthetic data..."):
        result = evaluate_against_real(real_log, run.synthetic, run.profiles, seed=seed, baseline=baseline)
    result.inputs = {"real": str(real.resolve()), "real_read": read.model_dump_json(), "synthetic": str(synthetic.resolve())}
    target = out or (run.directory / EVALUATION_FILE)
    result.save(target)
    print_evaluation(result, target)


def print_evaluation(result: Any, target: Path) -> None:
    console.print(_metric_table("Fidelity (vs held-out real data; reference: a real sample of the same size)", result.fidelity))
    console.print(_metric_table("Diversity and personality (reference: real holdout)", result.diversity))
    console.print(_metric_table("Privacy (reference: real holdout vs train)", result.privacy))
    if result.profile_consistency:
        c = result.profile_consistency
        console.print(f"Profile consistency: {c['own_profile_share']:.3f} of events among the own profile's preferred "
                      f"actions vs {c['other_profile_share']:.3f} for another profile's.", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"Wrote {target}", highlight=False)


def _numbers(text: str, cast: type, what: str) -> tuple:
    try:
        return tuple(cast(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"Invalid --{what} {text!r}", hint=f"Give comma-separated numbers, e.g. --{what} 0.1,0.25,1") from None


@app.command("experiment")
@with_read_flags
def experiment_command(
    real: RealOption,
    out: Annotated[Path | None, typer.Option(callback=output_file, help=(
        "Results JSON; an interrupted experiment resumes from it (not needed with --write-subsets)."))] = None,
    synthetic: Annotated[list[Path] | None, typer.Option(help=(
        "LLM generation run directory (the 'llm' source), repeatable: each cell takes the run grounded on exactly "
        "its real subset, which --write-subsets writes; one run from the full training data serves fraction 1."))] = None,
    model: Annotated[str | None, typer.Option(help="Prediction model (see `behaviorlab train --help`).")] = None,
    fractions: Annotated[str | None, typer.Option(help="Shares of the real training users, e.g. 0.1,0.25,1.")] = None,
    seeds: Annotated[str | None, typer.Option(help="Seeds, e.g. 0,1,2,3,4 (intervals need two, five are better).")] = None,
    scenarios: Annotated[str | None, typer.Option(help=(
        "Comma-separated scenarios: real_only, real_continued, synthetic_only, pretrain_augment, finetune_replace, "
        "finetune_augment (default: all)."))] = None,
    sources: Annotated[str | None, typer.Option(help=(
        "Synthetic sources: llm, llm_ungrounded, markov (default: the LLM sources of the --synthetic runs, and "
        "markov)."))] = None,
    shift: Annotated[str | None, typer.Option("--shift", help=(
        "Environment shift: night (train on day scenes 06-18h, test on 18-06h) or weekend (train on working days, "
        "test on the weekend); LLM runs for it are generated with the shift's scenario (after-dark, weekend)."))] = None,
    write_subsets: Annotated[Path | None, typer.Option("--write-subsets", callback=output_folder, help=(
        "Write each (fraction, seed) cell's real training subset to this folder as Parquet, show the `generate` "
        "command that grounds a run on one, and stop: the runs to pass with --synthetic."))] = None,
    generate: Annotated[int | None, typer.Option("--generate", min=1, help=(
        "Generate the LLM runs too: N sequences grounded on each cell's real subset (with --shift, told the test "
        "scene), into OUT's folder OUT-runs/; resumable."))] = None,
    ablation: Annotated[bool, typer.Option("--ablation", help=(
        "With --generate: also a run without grounding per subset (profile and scenario only: llm_ungrounded)."))] = False,
    backend: Annotated[str | None, typer.Option(help="With --generate: LLM backend, embedded (default) or http.")] = None,
    llm_model: Annotated[str | None, typer.Option("--llm-model", help=(
        "With --generate: named embedded model, .gguf path, or the server's model id."))] = None,
    parallel: Annotated[int | None, typer.Option(min=1, help="With --generate: requests decoded at once.")] = None,
    per_profile: Annotated[int, typer.Option("--per-profile", min=1, max=16, help=(
        "With --generate: sequences per sampled profile (they share their prompt's prefix; see generate)."))] = 1,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads per model.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Most epochs per fit (early stopping on validation).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file with an \\[experiment] section (ExperimentConfig keys).")] = None,
    engine: EngineOption = "local",
    *,
    read_flags: ReadFlags,
) -> None:
    """BehaviorGen's training scenarios with real, Markov-synthetic and LLM-synthetic data; tested once on real test data.

    Honest protocol: every synthetic source of a cell is grounded only on that cell's real subset (write them
    with --write-subsets, generate a run from each, pass them all with --synthetic); each fraction has an oracle
    row (all real training data; with --shift, the test scene's too), each gain a 95% interval over seeds, the
    share of the gap to the oracle it closes, and whether it wins over the Markov source and the real->real control.
    """
    from behaviorlab.evaluate.experiment import experiment, experiment_setting
    from behaviorlab.evaluate.scenarios import ExperimentConfig, experiment_runs

    read = read_flags.options()
    overrides: dict[str, Any] = {
        "predictor": model,
        "fractions": _numbers(fractions, float, "fractions") if fractions else None,
        "seeds": _numbers(seeds, int, "seeds") if seeds else None,
        "scenarios": tuple(s.strip() for s in scenarios.split(",")) if scenarios else None,
        "sources": tuple(s.strip() for s in sources.split(",")) if sources else None,
    }
    settings = load_config(ExperimentConfig, config, overrides, section="experiment")
    loop = {k: v for k, v in (("threads", threads), ("epochs", epochs)) if v is not None}
    settings = settings.model_copy(update={"predictor_settings": settings.predictor_settings | loop})
    setting = experiment_setting(load_log(real, read), shift)
    if setting.counts is not None:
        _print_scene(setting)
    if write_subsets is not None:
        _write_subsets(setting, settings, write_subsets)
        return
    if out is None:
        raise ConfigError("Missing option --out", hint="Give the results JSON: --out RUN/experiment.json.")
    paths = list(synthetic or [])
    if generate is not None:
        llm = {"backend": backend, "model": llm_model, "parallel": parallel}
        paths += _generate_runs(setting, settings, out.parent / f"{out.stem}-runs", generate, per_profile, ablation,
                                {key: value for key, value in llm.items() if value is not None}, engine)
    with scenario_progress() as report:
        result = experiment(setting, settings, experiment_runs(paths), results_path=out, progress=report, engine=engine)
    print_summary(result, out)


def scenario_progress() -> Any:
    """The experiment's bar: cells done of all, the cell in training after it."""
    return progress_bar("training scenarios", status=lambda info: str(info.get("cell", "")), transient=False)


def _generate_runs(setting, settings, folder: Path, n: int, per_profile: int, ablation: bool,
                   llm: dict[str, Any], engine: str) -> list[Path]:
    """`experiment --generate`: the run of every distinct real subset (evaluate.cell_runs), with a progress bar."""
    from behaviorlab.cli.app import err_console
    from behaviorlab.cli.generate import generation_status
    from behaviorlab.evaluate.cell_runs import generate_cell_runs
    from behaviorlab.generate.config import GenerateConfig
    from behaviorlab.generate.engine import create_engine_backend
    from behaviorlab.llm.config import LLMConfig

    scene = setting.shift
    generate = GenerateConfig(n_users=n, sequences_per_profile=per_profile,
                              scenario=[scene.scenario] if scene is not None else [], llm=LLMConfig(**llm))
    backend = create_engine_backend(engine, generate.llm,
                                    notify=lambda message: err_console.print(message, highlight=False))
    try:
        with progress_bars(status=generation_status, stream=err_console) as add:
            paths = generate_cell_runs(setting.split, settings, generate, backend, folder, ablation=ablation,
                                       progress=lambda name: add(f"generating {name}", n))
    finally:
        backend.close()
    console.print(f"LLM runs: {len(paths)} in {folder} (one per real subset{', grounded and not' if ablation else ''})",
                  highlight=False)
    return paths


def _print_scene(setting) -> None:
    counts, unit = setting.counts, "sequences" if setting.unit == "sequences" else "users"
    console.print(f"Environment shift ({setting.shift.description}): train {counts.train[0]:,} of {counts.train[1]:,} "
                  f"{unit}, valid {counts.valid[0]:,} of {counts.valid[1]:,}, "
                  f"test {counts.test[0]:,} of {counts.test[1]:,} examples", highlight=False)


def _write_subsets(setting, settings, folder: Path) -> None:
    from behaviorlab.evaluate.scenarios import write_subsets

    files = write_subsets(setting.split, settings, folder)
    table = Table(title=f"Real training subsets to ground LLM runs on ({len(files)} files in {folder})")
    for column in ("file", "cells (fraction/seed)", "users", "events", "digest"):
        table.add_column(column, justify="right" if column in ("users", "events") else "left")
    for file in files:
        cells = ", ".join(f"{f:g}/{s}" for f, s in file.cells)
        table.add_row(file.path.name, cells, f"{file.users:,}", f"{file.events:,}", file.digest)
    console.print(table)
    told = f" --scenario {setting.shift.scenario}" if setting.shift is not None else ""
    console.print(f"Generate one run per file, e.g. `behaviorlab generate --data {files[0].path} --out RUNS/"
                  f"{files[0].path.stem}{told}`, then run the experiment with the same options plus "
                  "--synthetic RUNS/<each run> (repeatable) and --out.", highlight=False)


def print_summary(result, out: Path) -> None:
    from behaviorlab.evaluate.scenarios import WIN_RULE, plain_summary, row_texts

    settings, rows = result.config, result.summary
    table = Table(title=f"{settings.predictor}: test {settings.metric}, mean ± std over {len(settings.seeds)} seeds")
    columns = ("real data", "source", "scenario", settings.metric, "gain vs real only [95% CI]", "gap closed", "wins")
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:3] else "right")
    for row in rows:
        texts = row_texts(row)
        table.add_row(f"{row['fraction']:.0%}", row["source"], row["scenario"], f"{row['mean']:.4f}±{row['std']:.4f}",
                      texts["gain"], texts["gap"], texts["wins"])
    console.print(table)
    console.print(f"oracle = real only on all the real training data the setting withholds; gap closed = (cell - real "
                  f"only) / (oracle - real only); {WIN_RULE}.", highlight=False)
    for note in dict.fromkeys(row["note"] for row in rows if row["note"]):
        console.print(f"note: {note}", highlight=False)
    for sentence in plain_summary(rows):
        console.print(sentence, highlight=False)
    console.print(f"Wrote {out}", highlight=False)


@app.command("report")
@with_read_flags
def report_command(
    run: Annotated[Path, typer.Argument(help="A generation run directory.")],
    real: Annotated[Path | None, typer.Option(callback=data_source, help="Real data for the distribution plots (default: the one evaluate-synthetic used).")] = None,
    out: Annotated[Path | None, typer.Option(callback=output_file, help="HTML file to write (default: RUN/report.html).")] = None,
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    *,
    read_flags: ReadFlags,
) -> None:
    """One self-contained HTML report: manifest, evaluation tables, plots, profiles, scenario results."""
    from behaviorlab.report.builder import build_report, write_report

    read = read_flags.options()
    data = build_report(run, real, real_read=read, title=title)
    print_report(data, write_report(out or run / "report.html", data))


def print_report(data: Any, target: Path) -> None:
    if data.missing():
        console.print(f"Left out: {', '.join(data.missing())}", highlight=False)
    console.print(f"Wrote {target}", highlight=False)
