"""`behaviorlab evaluate-synthetic`, `behaviorlab experiment` and `behaviorlab report`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from behaviorlab.cli.app import app, console
from behaviorlab.cli.common import FormatOption, output_file, output_folder
from behaviorlab.config import load_config
from behaviorlab.errors import ConfigError, DataError

RealOption = Annotated[Path, typer.Option("--real", help="The real dataset the synthetic data imitates (any loadable format).")]


def _load_real(path: Path, format_name: str | None):
    from behaviorlab.datasets import load

    return load(path, format=format_name)


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
def evaluate_synthetic_command(
    synthetic: Annotated[Path, typer.Argument(help="A generation run directory, or a synthetic .parquet file.")],
    real: RealOption,
    format_name: FormatOption = None,
    out: Annotated[Path | None, typer.Option("--out", "--json-out", callback=output_file, help="Where to write the JSON (default: RUN/evaluation.json).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the real-vs-real halves, the classifier folds and samples.")] = 0,
    baseline: Annotated[bool, typer.Option(help=(
        "Also evaluate Markov-chain data of the same size, fitted to the real training part."))] = True,
) -> None:
    """Fidelity, diversity/personality and privacy of synthetic data, each beside a real-data reference."""
    from behaviorlab.evaluate.fidelity import FidelityConfig
    from behaviorlab.evaluate.privacy import PrivacyConfig
    from behaviorlab.evaluate.synthetic import (
        SyntheticEvaluationConfig,
        check_comparable,
        evaluate_synthetic,
        train_and_holdout,
    )
    from behaviorlab.report.run_files import EVALUATION_FILE, read_run

    run = read_run(synthetic)
    config = SyntheticEvaluationConfig(seed=seed, fidelity=FidelityConfig(seed=seed), privacy=PrivacyConfig(seed=seed))
    real_log = _load_real(real, format_name)
    check_comparable(real_log, run.synthetic)  # before the Markov baseline, which needs sequences to copy lengths from
    train, holdout, how = train_and_holdout(real_log, config)
    with console.status("Evaluating the synthetic data..."):
        markov = None
        if baseline:
            from behaviorlab.evaluate.baselines import MarkovBaselineConfig, markov_synthetic

            lengths = [len(s) for s in run.synthetic.action_sequences().values()]
            markov = markov_synthetic(train, lengths, MarkovBaselineConfig(seed=seed))
        result = evaluate_synthetic(train, holdout, run.synthetic, run.profiles, config, baseline=markov)
    result.notes.insert(0, f"real data: {how}")
    result.inputs = {"real": str(real.resolve()), "real_format": format_name or "", "synthetic": str(synthetic.resolve())}
    target = out or (run.directory / EVALUATION_FILE)
    result.save(target)
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
def experiment_command(
    real: RealOption,
    out: Annotated[Path | None, typer.Option(callback=output_file, help=(
        "Results JSON; an interrupted experiment resumes from it (not needed with --write-subsets)."))] = None,
    synthetic: Annotated[list[Path] | None, typer.Option(help=(
        "LLM generation run directory (the 'llm' source), repeatable: each cell takes the run grounded on exactly "
        "its real subset, which --write-subsets writes; one run from the full training data serves fraction 1."))] = None,
    format_name: FormatOption = None,
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
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads per model.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Most epochs per fit (early stopping on validation).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file with an \\[experiment] section (ExperimentConfig keys).")] = None,
) -> None:
    """BehaviorGen's training scenarios with real, Markov-synthetic and LLM-synthetic data; tested once on real test data.

    Honest protocol: every synthetic source of a cell is grounded only on that cell's real subset (write them
    with --write-subsets, generate a run from each, pass them all with --synthetic); each fraction has an oracle
    row (all real training data; with --shift, the test scene's too), each gain a 95% interval over seeds, the
    share of the gap to the oracle it closes, and whether it wins over the Markov source and the real->real control.
    """
    from behaviorlab.evaluate.scenarios import LLM_SOURCES, ExperimentConfig
    from behaviorlab.report.run_files import experiment_runs

    overrides: dict[str, Any] = {
        "predictor": model,
        "fractions": _numbers(fractions, float, "fractions") if fractions else None,
        "seeds": _numbers(seeds, int, "seeds") if seeds else None,
        "scenarios": tuple(s.strip() for s in scenarios.split(",")) if scenarios else None,
        "sources": tuple(s.strip() for s in sources.split(",")) if sources else None,
    }
    settings = load_config(ExperimentConfig, config, overrides, section="experiment")
    from behaviorlab.sequences import make_split, split_rule

    real_log = _load_real(real, format_name)
    # The dataset's own split when it has one (its sequences are the users), else leave-one-out.
    rule = split_rule(real_log)
    split, oracle, scene = _experiment_split(make_split(real_log, rule), shift,
                                             unit="sequences" if rule == "published" else "events")
    predictor_settings = dict(settings.predictor_settings)
    predictor_settings.update({k: v for k, v in (("threads", threads), ("epochs", epochs)) if v is not None})
    settings = settings.model_copy(update={"predictor_settings": predictor_settings})
    if scene is not None:
        settings = settings.model_copy(update={"title": f"Environment shift: {scene.description}"})
    if write_subsets is not None:
        _write_subsets(split, settings, write_subsets, scene)
        return
    if out is None:
        raise ConfigError("Missing option --out", hint="Give the results JSON: --out RUN/experiment.json.")
    paths = list(synthetic or [])
    if generate is not None:
        llm = {"backend": backend, "model": llm_model, "parallel": parallel}
        paths += _generate_runs(split, settings, scene, out.parent / f"{out.stem}-runs", generate, ablation,
                                {key: value for key, value in llm.items() if value is not None})
    runs = experiment_runs(paths)
    if sources is None and "sources" not in settings.model_fields_set:
        # By default: the LLM sources of the runs (grounded, ungrounded) and Markov.
        given = tuple(source for source in LLM_SOURCES if any(run.source == source for run in runs))
        settings = settings.model_copy(update={"sources": (*given, "markov")})
    _run_and_print(split, oracle, settings, runs, out)


def _generate_runs(split, settings, scene, folder: Path, n: int, ablation: bool, llm: dict[str, Any]) -> list[Path]:
    """`experiment --generate`: the run of every distinct real subset (evaluate.cell_runs), with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from behaviorlab.cli.app import err_console
    from behaviorlab.evaluate.cell_runs import generate_cell_runs
    from behaviorlab.generate.config import GenerateConfig
    from behaviorlab.llm import create_backend
    from behaviorlab.llm.config import LLMConfig

    generate = GenerateConfig(n_users=n, scenario=[scene.scenario] if scene is not None else [], llm=LLMConfig(**llm))
    backend = create_backend(generate.llm, notify=lambda message: err_console.print(message, highlight=False))
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console) as bar:
            def reporter(name: str):
                task = bar.add_task(f"generating {name}", total=n)
                return lambda done, total, info=None: bar.update(task, completed=done, total=total)

            paths = generate_cell_runs(split, settings, generate, backend, folder, ablation=ablation, progress=reporter)
    finally:
        backend.close()
    console.print(f"LLM runs: {len(paths)} in {folder} (one per real subset{', grounded and not' if ablation else ''})",
                  highlight=False)
    return paths


def _experiment_split(split, shift: str | None, unit: str):
    """(split, oracle, shift): with --shift the training-scene split, the real training data of both scenes
    and the Shift; else the split, all its training data and None. `unit`: see evaluate.shift."""
    from behaviorlab.evaluate.shift import named_shift, scene_oracle, scene_split

    if shift is None:
        return split, split.train, None
    scene = named_shift(shift)
    shifted, counts = scene_split(split, scene, unit)
    console.print(f"Environment shift ({scene.description}): train {counts.train[0]:,} of {counts.train[1]:,} "
                  f"{'sequences' if unit == 'sequences' else 'users'}, valid {counts.valid[0]:,} of {counts.valid[1]:,}, "
                  f"test {counts.test[0]:,} of {counts.test[1]:,} examples", highlight=False)
    return shifted, scene_oracle(split, scene, unit), scene


def _write_subsets(split, settings, folder: Path, scene) -> None:
    from behaviorlab.evaluate.scenarios import write_subsets

    files = write_subsets(split, settings, folder)
    table = Table(title=f"Real training subsets to ground LLM runs on ({len(files)} files in {folder})")
    for column in ("file", "cells (fraction/seed)", "users", "events", "digest"):
        table.add_column(column, justify="right" if column in ("users", "events") else "left")
    for file in files:
        cells = ", ".join(f"{f:g}/{s}" for f, s in file.cells)
        table.add_row(file.path.name, cells, f"{file.users:,}", f"{file.events:,}", file.digest)
    console.print(table)
    told = f" --scenario {scene.scenario}" if scene is not None else ""
    console.print(f"Generate one run per file, e.g. `behaviorlab generate --data {files[0].path} --out RUNS/"
                  f"{files[0].path.stem}{told}`, then run the experiment with the same options plus "
                  "--synthetic RUNS/<each run> (repeatable) and --out.", highlight=False)


def _run_and_print(split, oracle, settings, runs: list, out: Path) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from behaviorlab.evaluate.scenarios import WIN_RULE, plain_summary, row_texts, run_experiment, summarise
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("training scenarios", total=None)

        def report(done: int, total: int, info: dict | None = None) -> None:
            bar.update(task, completed=done, total=total, description=str((info or {}).get("cell", "training scenarios")))

        cells = run_experiment(split, runs, settings, oracle=oracle, results_path=out, progress=report)
    table = Table(title=f"{settings.predictor}: test {settings.metric}, mean ± std over {len(settings.seeds)} seeds")
    columns = ("real data", "source", "scenario", settings.metric, "gain vs real only [95% CI]", "gap closed", "wins")
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:3] else "right")
    rows = sorted(summarise(cells, settings.metric), key=lambda r: (r["fraction"], r["scenario"] != "real_only",
                                                                    r["source"] == "oracle"))
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
def report_command(
    run: Annotated[Path, typer.Argument(help="A generation run directory.")],
    real: Annotated[Path | None, typer.Option(help="Real data for the distribution plots (default: the one evaluate-synthetic used).")] = None,
    format_name: FormatOption = None,
    out: Annotated[Path | None, typer.Option(callback=output_file, help="HTML file to write (default: RUN/report.html).")] = None,
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
) -> None:
    """One self-contained HTML report: manifest, evaluation tables, plots, profiles, scenario results."""
    from behaviorlab.evaluate.scenarios import WIN_RULE, read_results
    from behaviorlab.evaluate.synthetic import SyntheticEvaluation
    from behaviorlab.report.builder import Experiment, ReportData, write_report
    from behaviorlab.report.run_files import EVALUATION_FILE, EXPERIMENT_PATTERN, read_run

    if not run.is_dir():
        raise DataError(f"{run} is not a run directory", hint="Pass the --out directory of `behaviorlab generate`.")
    generation = read_run(run)
    evaluation_path = run / EVALUATION_FILE
    evaluation = SyntheticEvaluation.from_json(evaluation_path.read_text(encoding="utf-8")) if evaluation_path.is_file() else None
    real_path = real or (Path(evaluation.inputs["real"]) if evaluation and evaluation.inputs.get("real") else None)
    real_log = None
    if real_path is not None:
        from behaviorlab.schema import SPLIT
        from behaviorlab.sequences import published_parts

        real_log = _load_real(real_path, format_name or (evaluation.inputs.get("real_format") if evaluation else None) or None)
        if SPLIT in real_log.frame.columns:  # plots compare with the held-out real data, as the tables do
            real_log = published_parts(real_log)[2]
    experiments = []
    for path in sorted(run.glob(EXPERIMENT_PATTERN), key=lambda p: (len(p.name), p.name)):  # experiment.json first
        payload = read_results(path)
        summary, config = payload["summary"], payload["config"]
        notes = [(f"model {config['predictor']} {config['predictor_settings']}, seeds {config['seeds']}, real-data "
                 f"fractions {config['fractions']}; early stopping on validation only, each model tested once on the "
                 "real test split. Every synthetic source of a cell was grounded only on that cell's real subset "
                 "(the LLM runs checked by digest). real_continued = fit on real, then continue on real again: the "
                 "two-stage control without synthetic data. oracle = real only on all the real training data the "
                 "setting withholds; gap closed = (cell - real only) / (oracle - real only)."), f"{WIN_RULE}."]
        experiments.append(Experiment(title=config.get("title") or f"Training scenarios ({path.stem})",
                                      summary=summary, notes=notes))
    data = ReportData(title=title or f"behaviorlab report: {run.name}", manifest=generation.manifest, real=real_log,
                      synthetic=generation.synthetic, evaluation=evaluation, profiles=generation.profile_examples(),
                      experiments=experiments)
    target = write_report(out or run / "report.html", data)
    missing = [what for what, present in (("evaluation (run evaluate-synthetic)", evaluation),
                                           ("real data for plots (--real)", real_log is not None),
                                           ("experiments (run experiment --out RUN/experiment.json)", experiments)) if not present]
    if missing:
        console.print(f"Left out: {', '.join(missing)}", highlight=False)
    console.print(f"Wrote {target}", highlight=False)
