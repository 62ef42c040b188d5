"""Assemble the HTML report from what a run has: manifest, synthetic log, profiles, evaluation, experiments.

Everything is inline (CSS in the page, figures as PNG data URIs), so the one file can be mailed or
archived and opens without network access. Sections whose inputs are missing are left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from behaviorlab.atomic import write_text_atomic
from behaviorlab.datasets import ReadOptions, load
from behaviorlab.errors import DataError
from behaviorlab.evaluate.diversity import person_sequences
from behaviorlab.evaluate.scenarios import WIN_RULE, plain_summary, read_results, row_texts
from behaviorlab.evaluate.synthetic import EVALUATION_FILE, SyntheticEvaluation
from behaviorlab.evaluate.utility import TRAINING_SCENARIOS
from behaviorlab.generate.manifest import RunManifest
from behaviorlab.generate.run_files import GenerationRun, read_run
from behaviorlab.report import plots
from behaviorlab.schema import SPLIT, EventLog, Profile
from behaviorlab.sequences import published_parts

MAX_PROFILES = 6
EXPERIMENT_PATTERN = "experiment*.json"  # experiment results written beside the run (`experiment --out`)
MAX_SEQUENCES_PER_PROFILE = 3


@dataclass
class Experiment:
    """A summarised scenario experiment (rows from `evaluate.scenarios.summarise`)."""

    title: str
    summary: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportData:
    title: str
    manifest: RunManifest | None = None
    real: EventLog | None = None  # the real reference for the distribution plots (e.g. the test split)
    synthetic: EventLog | None = None
    evaluation: SyntheticEvaluation | None = None
    profiles: Sequence[tuple[Profile, list[list[str]]]] = ()  # example profiles with their sequences
    experiments: Sequence[Experiment] = ()

    def missing(self) -> list[str]:
        """The optional parts left out, each with the step that would add it."""
        return [what for what, present in (("evaluation (run evaluate-synthetic)", self.evaluation),
                                           ("real data for plots (--real)", self.real is not None),
                                           ("experiments (run experiment --out RUN/experiment.json)", self.experiments))
                if not present]


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 100:+.1f}%"


def _spread(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 100:.1f}%"


def _manifest_facts(manifest: RunManifest) -> list[tuple[str, str]]:
    """Scalar entries of the manifest and of its first-level sections, as (dotted key, text)."""
    facts = []
    for key, value in manifest.to_json().items():
        if isinstance(value, Mapping):
            facts += [(f"{key}.{k}", _num(v)) for k, v in value.items() if not isinstance(v, (Mapping, list))]
        elif isinstance(value, list):
            facts.append((key, f"{len(value)} entries"))
        else:
            facts.append((key, _num(value)))
    return facts


def _generated_facts(manifest: RunManifest) -> list[tuple[str, str]]:
    """What was generated and how, in a few lines: the summary's first block."""
    accepted, wall = manifest.attempts.accepted, manifest.time.llm_wall_s
    tried = max(manifest.attempts.attempts, 1)
    facts = [
        ("generated", (f"{manifest.synthetic.sequences} sequences of {manifest.sequence_length} "
                       f"events, from {manifest.data.real_users} real users")),
        ("model", f"{manifest.backend}: {manifest.model}, seed {manifest.seed}"),
        ("grounding", "real exemplars, habits and counts" if manifest.grounded
                      else "none (profile and scenario only: the ablation)"),
        ("scenario", manifest.scenario.text or "none"),
        ("accepted", (f"{accepted} of {tried} attempts ({accepted / tried:.0%}); "
                      f"{manifest.copies.count} verbatim copies of a real window")),
        ("tokens per attempt", (f"{manifest.tokens.prompt / tried:.0f} prompt, "
                                f"{manifest.tokens.completion / tried:.0f} completion")),
    ]
    if wall:
        facts.append(("speed", f"{60 * accepted / wall:.1f} accepted sequences per minute of LLM time"))
    return facts


def _profile_facts(profile: Profile) -> list[tuple[str, str]]:
    facts = [(name, str(value)) for name, value in (
        ("age group", profile.age_group), ("gender", profile.gender), ("occupation", profile.occupation),
        ("household", profile.household), ("routine", _routine(profile)),
        ("traits", ", ".join(profile.traits)), ("preferred actions", ", ".join(profile.preferred_actions[:8])),
        ("persona", profile.persona),
    ) if value]
    return facts


def _routine(profile: Profile) -> str:
    r = profile.routine
    text = f"wake {r.wake:g}h, sleep {r.sleep:g}h"
    return text + (f", work {r.work_start:g}-{r.work_end:g}h" if r.work_start is not None else "")


def render_report(data: ReportData) -> str:
    """The report as one HTML string."""
    import jinja2

    from behaviorlab import __version__

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["spread"] = _spread
    template = env.from_string(resources.files("behaviorlab.report").joinpath("templates/report.html.j2")
                               .read_text(encoding="utf-8"))
    figures: list[tuple[str, str]] = []
    if data.real is not None and data.synthetic is not None:
        figures.append(("Action frequencies", plots.action_frequencies(data.real, data.synthetic)))
        times = plots.time_distributions(data.real, data.synthetic)
        if times is not None:
            figures.append(("Time of day and weekday", times))
        figures.append(("First-order transitions (most frequent real actions)",
                        plots.transition_heatmaps(data.real, data.synthetic)))
    evaluation = data.evaluation
    metric_sections = []
    if evaluation is not None:
        metric_sections = [("fidelity", "Fidelity (real holdout vs synthetic)", evaluation.fidelity),
                           ("diversity", "Diversity and personality", evaluation.diversity),
                           ("privacy", "Privacy", evaluation.privacy)]
    experiments = [
        {"anchor": f"experiment-{i}", "title": e.title, "notes": e.notes,
         "metric": e.summary[0]["metric"] if e.summary else "", "rows": _ordered(e.summary),
         "plot": plots.scenario_bars(e.summary, e.title)}
        for i, e in enumerate(data.experiments) if e.summary
    ]
    summary = {
        "generated": _generated_facts(data.manifest) if data.manifest else [],
        "fidelity": evaluation.fidelity if evaluation is not None else [],
        "experiments": [{"anchor": e["anchor"], "title": e["title"], "sentences": plain_summary(e["rows"])}
                        for e in experiments],
    }
    sections = [(anchor, label) for anchor, label, present in (
        ("summary", "Summary", any(summary.values())), ("manifest", "Manifest", data.manifest), ("fidelity", "Fidelity", evaluation),
        ("diversity", "Diversity", evaluation), ("privacy", "Privacy", evaluation), ("plots", "Plots", figures),
        ("profiles", "Profiles", data.profiles)) if present]
    sections += [(e["anchor"], e["title"]) for e in experiments]
    return template.render(
        title=data.title, version=__version__, generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sections=sections, summary=summary, manifest=data.manifest,
        manifest_facts=_manifest_facts(data.manifest) if data.manifest else [],
        manifest_json=json.dumps(data.manifest.to_json(), indent=2) if data.manifest else "",
        evaluation=evaluation, metric_sections=metric_sections,
        consistency=evaluation.profile_consistency if evaluation else None,
        plots=figures,
        profiles=[{"profile": p, "facts": _profile_facts(p), "sequences": seqs[:MAX_SEQUENCES_PER_PROFILE]}
                  for p, seqs in list(data.profiles)[:MAX_PROFILES]],
        experiments=experiments,
    )


def _ordered(summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by fraction, then in the scenarios' canonical order (real only, then its oracle, first), then by
    source; each with its printed gain, gap closed and win (`row_texts`)."""
    order = {name: i for i, name in enumerate(TRAINING_SCENARIOS)}
    rows = sorted(summary, key=lambda r: (r["fraction"], order.get(r["scenario"], len(order)), r["source"] != "none",
                                          r["source"]))
    return [row | {"texts": row_texts(row)} for row in rows]


def write_report(path: str | Path, data: ReportData) -> Path:
    """Render and write the report atomically; returns the path."""
    path = Path(path)
    write_text_atomic(path, render_report(data))
    return path


def build_report(run: str | Path, real: str | Path | None = None, *, real_read: ReadOptions | None = None,
                 title: str | None = None) -> ReportData:
    """What the report of a generation run shows: its manifest, sequences and profiles, the evaluation and the
    experiments written beside it, and real data for the plots (`real`, default: the data evaluate-synthetic
    used; only its held-out test rows when it has a published split, as the tables compare with those).
    `real_read` says how to read it (default: as evaluate-synthetic read it)."""
    run = Path(run)
    if not run.is_dir():
        raise DataError(f"{run} is not a run directory", hint="Pass the --out directory of `behaviorlab generate`.")
    generation = read_run(run)
    evaluation_path = run / EVALUATION_FILE
    evaluation = SyntheticEvaluation.from_json(evaluation_path.read_text(encoding="utf-8")) if evaluation_path.is_file() else None
    inputs = evaluation.inputs if evaluation else {}
    real_path = real or inputs.get("real") or None
    real_log = None
    if real_path is not None:
        real_log = load(real_path, **_real_read(real_read, inputs).arguments())
        if SPLIT in real_log.frame.columns:
            real_log = published_parts(real_log)[2]
    experiments = [_experiment(path) for path in sorted(run.glob(EXPERIMENT_PATTERN), key=lambda p: (len(p.name), p.name))]
    return ReportData(title=title or f"behaviorlab report: {run.name}", manifest=generation.manifest, real=real_log,
                      synthetic=generation.synthetic, evaluation=evaluation, profiles=profile_examples(generation),
                      experiments=experiments)  # experiment.json first: sorted by name length, then name


def _real_read(given: ReadOptions | None, inputs: dict[str, str]) -> ReadOptions:
    """The given read options, else those evaluate-synthetic recorded (runs evaluated before the record kept
    only the format)."""
    if given is not None and given.given():
        return given
    if inputs.get("real_read"):
        return ReadOptions.model_validate_json(inputs["real_read"])
    return ReadOptions(format=inputs.get("real_format") or None)


def profile_examples(run: GenerationRun) -> list[tuple[Profile, list[list[str]]]]:
    """Each profile of the run that has generated sequences, with them, in profile order."""
    by_person = person_sequences(run.synthetic)
    return [(p, by_person[pid]) for pid, p in run.profiles.items() if pid in by_person]


def _experiment(path: Path) -> Experiment:
    """An experiment results file as a report section, with the protocol it followed in words."""
    payload = read_results(path)
    summary, config = payload["summary"], payload["config"]
    notes = [(f"model {config['predictor']} {config['predictor_settings']}, seeds {config['seeds']}, real-data "
              f"fractions {config['fractions']}; early stopping on validation only, each model tested once on the "
              "real test split. Every synthetic source of a cell was grounded only on that cell's real subset "
              "(the LLM runs checked by digest). real_continued = fit on real, then continue on real again: the "
              "two-stage control without synthetic data. oracle = real only on all the real training data the "
              "setting withholds; gap closed = (cell - real only) / (oracle - real only)."), f"{WIN_RULE}."]
    return Experiment(title=config.get("title") or f"Training scenarios ({path.stem})", summary=summary, notes=notes)
