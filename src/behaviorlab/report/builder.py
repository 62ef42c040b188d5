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
from behaviorlab.evaluate.scenarios import plain_summary, row_texts
from behaviorlab.evaluate.synthetic import SyntheticEvaluation
from behaviorlab.evaluate.utility import SCENARIOS
from behaviorlab.report import plots
from behaviorlab.schema import EventLog, Profile

MAX_PROFILES = 6
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
    manifest: Mapping[str, Any] | None = None
    real: EventLog | None = None  # the real reference for the distribution plots (e.g. the test split)
    synthetic: EventLog | None = None
    evaluation: SyntheticEvaluation | None = None
    profiles: Sequence[tuple[Profile, list[list[str]]]] = ()  # example profiles with their sequences
    experiments: Sequence[Experiment] = ()


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


def _manifest_facts(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Scalar entries of the manifest and of its first-level sections, as (dotted key, text)."""
    facts = []
    for key, value in manifest.items():
        if isinstance(value, Mapping):
            facts += [(f"{key}.{k}", _num(v)) for k, v in value.items() if not isinstance(v, (Mapping, list))]
        elif isinstance(value, list):
            facts.append((key, f"{len(value)} entries"))
        else:
            facts.append((key, _num(value)))
    return facts


def _generated_facts(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What was generated and how, in a few lines: the summary's first block."""
    config, attempts = manifest.get("config") or {}, manifest.get("attempts") or {}
    tokens, time = manifest.get("tokens") or {}, manifest.get("time") or {}
    synthetic, scenario = manifest.get("synthetic") or {}, manifest.get("scenario") or {}
    accepted, wall = attempts.get("accepted", 0), time.get("llm_wall_s") or 0
    tried = max(attempts.get("attempts", 0), 1)
    facts = [
        ("generated", (f"{synthetic.get('sequences', '?')} sequences of {manifest.get('sequence_length', '?')} "
                       f"events, from {(manifest.get('data') or {}).get('real_users', '?')} real users")),
        ("model", f"{manifest.get('backend', '?')}: {manifest.get('model', '?')}, seed {manifest.get('seed', '?')}"),
        ("grounding", "real exemplars, habits and counts" if config.get("grounding", "real") == "real"
                      else "none (profile and scenario only: the ablation)"),
        ("scenario", scenario.get("text") or "none"),
        ("accepted", (f"{accepted} of {tried} attempts ({accepted / tried:.0%}); "
                      f"{(manifest.get('copies') or {}).get('count', 0)} verbatim copies of a real window")),
        ("tokens per attempt", (f"{tokens.get('prompt', 0) / tried:.0f} prompt, "
                                f"{tokens.get('completion', 0) / tried:.0f} completion")),
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
        manifest_json=json.dumps(data.manifest, indent=2, default=str) if data.manifest else "",
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
    order = {name: i for i, name in enumerate(SCENARIOS)}
    rows = sorted(summary, key=lambda r: (r["fraction"], order.get(r["scenario"], len(order)), r["source"] != "none",
                                          r["source"]))
    return [row | {"texts": row_texts(row)} for row in rows]


def write_report(path: str | Path, data: ReportData) -> Path:
    """Render and write the report atomically; returns the path."""
    path = Path(path)
    write_text_atomic(path, render_report(data))
    return path
