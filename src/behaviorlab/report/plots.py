"""The report's figures, drawn with matplotlib (Agg, no display) and returned as inline PNG data URIs,
so the HTML file carries everything it shows and loads nothing from anywhere."""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from behaviorlab.evaluate.fidelity import hour_bins_of, transition_matrix, weekdays_of
from behaviorlab.evaluate.utility import TRAINING_SCENARIOS
from behaviorlab.schema import ACTION, HOUR_BINS, WEEKDAYS, EventLog

REAL_COLOUR, SYNTH_COLOUR, MARKOV_COLOUR, NONE_COLOUR = "#4c72b0", "#dd8452", "#55a868", "#8c8c8c"
UNGROUNDED_COLOUR = "#c44e52"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _data_uri(fig: Any) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shares(values: Sequence[Any], support: Sequence[Any]) -> np.ndarray:
    counts = Counter(v for v in values if v is not None)
    total = sum(counts.values()) or 1
    return np.array([counts[s] / total for s in support])


def _paired_bars(ax: Any, labels: Sequence[str], real: np.ndarray, synth: np.ndarray) -> None:
    x = np.arange(len(labels))
    ax.bar(x - 0.2, real, 0.4, label="real", color=REAL_COLOUR)
    ax.bar(x + 0.2, synth, 0.4, label="synthetic", color=SYNTH_COLOUR)
    ax.set_xticks(x, labels)
    ax.set_ylabel("share of events")
    ax.legend(frameon=False)


def action_frequencies(real: EventLog, synthetic: EventLog, top: int = 25) -> str:
    """Shares of the `top` most frequent real actions, real beside synthetic."""
    plt = _pyplot()
    real_actions = real.frame.get_column(ACTION).to_list()
    labels = [a for a, _ in Counter(real_actions).most_common(top)]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    _paired_bars(ax, labels, _shares(real_actions, labels), _shares(synthetic.frame.get_column(ACTION).to_list(), labels))
    ax.tick_params(axis="x", labelrotation=75, labelsize=7)
    ax.set_yscale("log")  # behaviour logs are long-tailed; the tail is where generators differ
    ax.set_title(f"Action frequencies (the {len(labels)} most frequent real actions; log scale)")
    return _data_uri(fig)


def time_distributions(real: EventLog, synthetic: EventLog) -> str | None:
    """Hour-bin and weekday shares, real beside synthetic; None when neither log has times of day."""
    panels = [(HOUR_BINS, hour_bins_of, "3-hour bin of the day"), (WEEKDAYS, weekdays_of, "weekday")]
    panels = [(s, f, t) for s, f, t in panels if f(real) is not None and f(synthetic) is not None]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (support, extract, title) in zip(axes[0], panels):
        _paired_bars(ax, list(support), _shares(extract(real), support), _shares(extract(synthetic), support))
        ax.tick_params(axis="x", labelsize=8, labelrotation=30)
        ax.set_title(title)
    return _data_uri(fig)


def transition_heatmaps(real: EventLog, synthetic: EventLog, top: int = 15) -> str:
    """Row-normalised first-order transition matrices over the `top` real actions, real | synthetic."""
    plt = _pyplot()
    labels = [a for a, _ in Counter(real.frame.get_column(ACTION).to_list()).most_common(top)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), sharey=True)
    for ax, log, title in ((axes[0], real, "real"), (axes[1], synthetic, "synthetic")):
        seqs = [[a for a in s if a in labels] for s in log.action_sequences().values()]
        counts = transition_matrix(seqs, labels)  # [top, top]: row = previous, column = next
        rows = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(rows, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(labels)), [label[:22] for label in labels], rotation=80, fontsize=6)
        ax.set_xlabel("next action")
        ax.set_title(f"{title}: P(next | previous)")
    axes[0].set_yticks(range(len(labels)), [label[:22] for label in labels], fontsize=6)  # shared by both panels
    axes[1].tick_params(labelleft=False)
    axes[0].set_ylabel("previous action")
    fig.colorbar(image, ax=list(axes), shrink=0.7)
    return _data_uri(fig)


def scenario_bars(summary: Sequence[dict[str, Any]], title: str) -> str:
    """Relative gain over real-only training per scenario and source, with its 95% interval over seeds (no bar
    for one seed), one panel per real-data fraction; each panel's title gives the real-only value the gains are
    relative to."""
    plt = _pyplot()
    fractions = sorted({row["fraction"] for row in summary})
    present = {row["scenario"] for row in summary}
    scenarios = [s for s in TRAINING_SCENARIOS if s in present and s != "real_only"]
    # "none" draws the control scenarios without synthetic data (real_continued), in grey
    sources = [s for s in dict.fromkeys(row["source"] for row in summary if row["scenario"] != "real_only")]
    by_key = {(r["source"], r["scenario"], r["fraction"]): r for r in summary}
    colours = {"llm": SYNTH_COLOUR, "llm_ungrounded": UNGROUNDED_COLOUR, "markov": MARKOV_COLOUR, "none": NONE_COLOUR}
    names = {"none": "no synthetic data"}
    metric = summary[0]["metric"] if summary else ""
    width = 0.8 / max(1, len(sources))
    fig, axes = plt.subplots(1, len(fractions), figsize=(4.4 * len(fractions), 4.0), squeeze=False, sharey=True)
    for ax, fraction in zip(axes[0], fractions):
        for s, source in enumerate(sources):
            rows = [by_key.get((source, scenario, fraction)) for scenario in scenarios]
            rows_here = [r for r in rows if r]
            x = [g - 0.4 + width * (s + 0.5) for g, row in enumerate(rows) if row]
            means = [100 * r["gain_mean"] for r in rows_here]
            # yerr [2, n]: distances from the mean down to the interval's low end and up to its high end
            low = [m - 100 * r["gain_ci"][0] if r["gain_ci"] else 0.0 for m, r in zip(means, rows_here)]
            high = [100 * r["gain_ci"][1] - m if r["gain_ci"] else 0.0 for m, r in zip(means, rows_here)]
            ax.bar(x, means, width, yerr=[low, high], capsize=3, color=colours.get(source, REAL_COLOUR), label=names.get(source, f"{source} synthetic"))
        ax.axhline(0, color=NONE_COLOUR, linewidth=1)
        ax.set_xticks(range(len(scenarios)), [sc.replace("_", "\n") for sc in scenarios], fontsize=8)
        reference = by_key.get(("none", "real_only", fraction))
        detail = f"real only {metric} {reference['mean']:.4f}" if reference else ""
        ax.set_title(f"{fraction:.0%} of real training data\n{detail}", fontsize=9)
    axes[0][0].set_ylabel(f"gain in test {metric} vs real only (%, 95% interval)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(sources), frameon=False, bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _data_uri(fig)
