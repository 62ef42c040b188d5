"""`behaviorlab generate ...` (synthetic behavior from a real log) and `behaviorlab profiles ...`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from pydantic import Field

from behaviorlab.cli.app import app, console, err_console
from behaviorlab.cli.common import (
    EngineOption,
    ReadFlags,
    data_source,
    load_log,
    output_file,
    output_folder,
    progress_bar,
    with_read_flags,
)
from behaviorlab.config import StrictConfig, parse_config, read_toml
from behaviorlab.datasets import ReadOptions
from behaviorlab.errors import DataError
from behaviorlab.generate.config import GenerateConfig
from behaviorlab.schema import SPLIT, EventLog


class GenerateJob(StrictConfig):
    """The whole `generate` command as a TOML file: top-level data/out/split, then [read] (how the data is read:
    ReadOptions keys), [generate] and [generate.llm]."""

    data: Path
    out: Path
    read: ReadOptions = Field(default_factory=ReadOptions)
    split: str | None = Field("train", description="keep only this published split (real training data) when the log has one")
    generate: GenerateConfig = Field(default_factory=GenerateConfig)


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Flags win over the file; nested tables merge key by key; None means "flag not given"."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            merged[key] = _merge(dict(merged.get(key, {})), value)
        elif value is not None:
            merged[key] = value
    return merged


def load_job(config_file: Path | None, overrides: Mapping[str, Any]) -> GenerateJob:
    values = read_toml(config_file) if config_file is not None else {}
    source = f" from {config_file}" if config_file is not None else ""
    return parse_config(GenerateJob, _merge(values, overrides), where=f"generate configuration{source}")


def training_log(job: GenerateJob) -> EventLog:
    """The real log that grounds generation: only its training split when the log carries one."""
    log = load_log(job.data, job.read)
    if job.split and SPLIT in log.frame.columns:
        kept = log.filter(pl.col(SPLIT) == job.split)
        if kept.n_events == 0:
            raise DataError(f"No events in split {job.split!r} of {job.data}",
                            hint=f"Splits present: {sorted(log.frame.get_column(SPLIT).unique().to_list())}.")
        return kept
    return log


@app.command("generate")
@with_read_flags
def generate(
    data: Annotated[Path | None, typer.Option("--data", callback=data_source, help="Real log (any format `behaviorlab data formats` lists).")] = None,
    out: Annotated[Path | None, typer.Option("--out", callback=output_folder, help="Run directory; re-run the same command to resume.")] = None,
    n_users: Annotated[int | None, typer.Option("--n-users", min=1, help="Synthetic sequences to generate.")] = None,
    per_profile: Annotated[int | None, typer.Option("--per-profile", min=1, max=16, help=(
        "Sequences per sampled profile; they share their prompt's prefix, which the embedded model then reads once."))] = None,
    backend: Annotated[str | None, typer.Option(help="LLM backend: embedded (default) or http.")] = None,
    model: Annotated[str | None, typer.Option(help="Named embedded model, .gguf path, or the server's model id.")] = None,
    scenario: Annotated[list[str] | None, typer.Option(help="Environment change, e.g. night, weekend, winter, "
                                                               "more-occupants, new-device:Fan (a device of the data), "
                                                               "text:'one sentence'. Repeatable.")] = None,
    diversity: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="0 = clones of the typical user, 1 = cover every stratum.")] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed: same seed, same output.")] = None,
    length: Annotated[int | None, typer.Option(min=2, help="Events per sequence (default: real median, at most 10).")] = None,
    dp_epsilon: Annotated[float | None, typer.Option(help="Differential privacy for the count tables in prompts.")] = None,
    grounding: Annotated[str | None, typer.Option(help=(
        "real (default): prompts show real exemplars, habits and counts; none: profile and scenario only, the "
        "ablation that shows what grounding is worth (`experiment` reads such a run as the llm_ungrounded source)."))] = None,
    parallel: Annotated[int | None, typer.Option(min=1, help="Requests decoded at once (embedded: default 1, the only setting whose "
                                                           "output the seed fixes; http: default 4).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads of the embedded model.")] = None,
    split: Annotated[str | None, typer.Option(help="Published split to learn from (default: train).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file (see GenerateJob); flags override it.")] = None,
    partial: Annotated[bool, typer.Option("--partial", help="Generate nothing more: write the log and manifest of the "
                                                            "work finished so far (re-run without it to complete).")] = False,
    engine: EngineOption = "local",
    *,
    read_flags: ReadFlags,
) -> None:
    """Generate synthetic behavior sequences grounded on a real log, resumably."""
    job = load_job(config, {
        "data": data, "out": out, "split": split,
        "read": read_flags.options().model_dump(exclude_defaults=True),
        "generate": {"n_users": n_users, "sequences_per_profile": per_profile, "scenario": scenario, "diversity": diversity, "seed": seed, "length": length,
                     "dp_epsilon": dp_epsilon, "grounding": grounding,
                     "llm": {"backend": backend, "model": model, "parallel": parallel, "threads": threads}},
    })
    generate_job(job, partial, engine)


def generate_job(job: GenerateJob, partial: bool = False, engine: str = "local") -> None:
    """Generate (or resume) the run `job` describes, with a progress bar, and print what it holds."""
    from behaviorlab.atomic import exclusive_writer

    # Locked before the data and the model load, so a second writer is refused in a moment, not after them.
    with exclusive_writer(job.out, "the generation run"):
        _generate_run(job, partial, engine)


def generation_status(info: Mapping[str, float | str]) -> str:
    """While a batch is out, what it waits for (the server, the attempt, its timeout); after it, totals."""
    if "waiting" in info:
        return str(info["waiting"])
    return (f"accepted {info.get('accepted', 0)}  {info.get('tokens_per_s', 0)} tok/s  "
            f"ETA {float(info.get('eta_s', 0)) / 60:.1f} min")


def _generate_run(job: GenerateJob, partial: bool, engine: str) -> None:
    from behaviorlab.generate.engine import create_engine_backend
    from behaviorlab.generate.run import run_generation
    from behaviorlab.generate.scenario import parse_scenario

    log = training_log(job)
    parse_scenario(job.generate.scenario, log.vocabulary)  # a device the data lacks is refused before the model loads
    llm = create_engine_backend(engine, job.generate.llm, notify=lambda message: err_console.print(message, highlight=False))
    try:
        # Until the first batch goes out: priors, population and prompts (counting a prompt's tokens
        # may ask an LLM server, for connect_timeout_s at most); then the batch says what it waits for.
        with progress_bar("generating", status=generation_status, stream=err_console, transient=False,
                          total=job.generate.n_users, first_status="loading data, priors and prompts") as report:
            result = run_generation(log, job.out, job.generate, llm, progress=report, partial=partial)
    finally:
        llm.close()
    from behaviorlab.generate.manifest import MANIFEST_FILE

    manifest = result.manifest
    tokens, attempts = manifest.tokens, manifest.attempts
    console.print(f"[bold]{manifest.synthetic.sequences}[/] synthetic sequences -> {job.out / manifest.synthetic.file}")
    console.print(f"validity before repair {manifest.validity_rate_before_repair:.1%}, after repair "
                  f"{manifest.validity_rate_after_repair:.1%}; failed {attempts.failed}, "
                  f"rejected {attempts.rejected}; verbatim copies of a real window {manifest.copies.count}; "
                  f"outliers dropped {manifest.outliers.dropped if manifest.outliers else 0}", highlight=False)
    console.print(f"prompt tokens per generated event: {tokens.prompt_tokens_per_generated_event_compressed} compressed vs "
                  f"{tokens.prompt_tokens_per_generated_event_plain_json} plain JSON "
                  f"({tokens.compressed_over_plain:.0%})", highlight=False)
    missing = manifest.sequences_missing
    if missing:
        console.print(f"[yellow]{missing} of {job.generate.n_users} sequences were not made[/]: no valid answer in "
                      f"{job.generate.max_attempts} attempts each; the manifest's issues say why.", highlight=False)
    if not manifest.complete:
        console.print(f"[yellow]partial:[/] {manifest.pending_sequences} sequences still to generate; "
                      "re-run without --partial to complete the run.")
    console.print(f"manifest: {job.out / MANIFEST_FILE}", highlight=False)


profiles_app = typer.Typer(help="Simulated populations: sample profiles and measure their diversity.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")


@profiles_app.command("sample")
@with_read_flags
def sample(
    data: Annotated[Path, typer.Option("--data", callback=data_source, help="Real log the priors are estimated from.")],
    out: Annotated[Path, typer.Option("--out", callback=output_file, help="Population JSON file to write.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Profiles to sample.")] = 100,
    diversity: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.5,
    seed: Annotated[int, typer.Option()] = 0,
    length: Annotated[int, typer.Option(min=2, help="Episode length for the per-user statistics.")] = 10,
    split: Annotated[str | None, typer.Option(help="Published split to learn from.")] = "train",
    *,
    read_flags: ReadFlags,
) -> None:
    """Sample a population from ATUS routine priors and the real log; print its diversity measures."""
    from behaviorlab.atomic import write_text_atomic
    from behaviorlab.profiles.atus import load_atus_priors
    from behaviorlab.profiles.diversity import diversity_report
    from behaviorlab.profiles.realstats import estimate_real_priors
    from behaviorlab.profiles.sampling import PopulationConfig, sample_population

    read = read_flags.options()
    log = training_log(GenerateJob(data=data, out=out, split=split, read=read))
    priors = estimate_real_priors(log, length, seed=seed)
    population = sample_population(priors, load_atus_priors(), PopulationConfig(n_profiles=n, seed=seed, diversity=diversity))
    write_text_atomic(out, population.to_json())
    report = diversity_report(population, priors)
    console.print(f"{n} profiles -> {out}; attribute entropy {report['attribute_entropy']:.3f}, "
                  f"grounding coverage {report['grounding_coverage']:.1%}", highlight=False)
