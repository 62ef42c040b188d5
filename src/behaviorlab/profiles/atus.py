"""Daily-routine priors derived from American Time Use Survey (ATUS) 2022-2023 aggregates.

The shipped table `data/atus_routines.json` is produced by `derive_atus_priors` from the public,
population-weighted aggregates (`time_at_activity.csv`: the share of a stratum engaged in each activity
category at each clock hour, per weekday/weekend; `activity_frequency_O*.csv`: diary counts, used as
stratum sizes). Source: U.S. Bureau of Labor Statistics, American Time Use Survey 2022-2023,
https://www.bls.gov/tus/ (aggregates distributed under Apache-2.0). No individual diary is shipped.

Routine anchors are read off the hourly shares: the hourly fall of the "sleeping" share is the
distribution of wake-up times, its evening rise the distribution of bedtimes, and the rise and fall of
the weekday "work" share give work start and end times.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import RoutineAnchors

DAY_TYPES = ("weekday", "weekend")
SLEEPING, WORK = "sleeping", "work"
SLEEP_CODE = "010101"  # ATUS activity code of sleeping: its diary count is the stratum's number of diaries
SHIPPED = "atus_routines.json"


def derive_atus_priors(atus_dir: str | Path) -> dict:
    """Compact prior table from the ATUS aggregate files in `atus_dir` (see module docstring)."""
    atus_dir = Path(atus_dir)
    shares: dict[str, dict[str, dict[str, list[float]]]] = {}
    problems: list[Problem] = []
    try:
        with open(atus_dir / "time_at_activity.csv", newline="", encoding="utf-8") as handle:
            for row_number, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    hour, share = int(row["hour"]), float(row["weighted_pct"]) / 100.0
                    table = shares.setdefault(row["stratum"], {}).setdefault(row["day_type"], {})
                    table.setdefault(row["category"], [0.0] * 24)[hour] = round(share, 4)
                except (KeyError, ValueError, IndexError) as exc:
                    problems.append(Problem(f"unreadable value: {exc}", row=row_number))
        sizes = {}
        for stratum in shares:
            with open(atus_dir / f"activity_frequency_{stratum}.csv", newline="", encoding="utf-8") as handle:
                sizes[stratum] = next((int(r["n_episodes"]) for r in csv.DictReader(handle) if r["trcode"] == SLEEP_CODE), 0)
    except FileNotFoundError as exc:
        raise DataError(f"ATUS aggregate file missing: {exc.filename}",
                        hint="Point to the folder with time_at_activity.csv and activity_frequency_O*.csv.") from None
    for stratum, by_day in shares.items():
        for day_type in DAY_TYPES:
            if SLEEPING not in by_day.get(day_type, {}):
                problems.append(Problem(f"stratum {stratum} has no '{SLEEPING}' shares for {day_type}"))
    if problems:
        raise DataError("The ATUS aggregates cannot be turned into priors", problems)
    return {
        "source": "U.S. Bureau of Labor Statistics, American Time Use Survey 2022-2023 (population-weighted "
                  "aggregates, Apache-2.0); derived by behaviorlab.profiles.atus.derive_atus_priors",
        "strata": {s: {"diaries": sizes[s], "hourly_share": shares[s]} for s in sorted(shares)},
    }


def _hour_distribution(rise: np.ndarray, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hours and normalised weights from the positive part of a share's hour-to-hour change."""
    weights = np.clip(rise, 0.0, None)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    return hours.astype(float), weights / weights.sum()


def _quantile(hours: np.ndarray, weights: np.ndarray, u: float) -> float:
    """Inverse CDF, uniform inside each hour: u in [0, 1) -> clock hour.

    Shares are measured at H:30, so a change between hours h-1 and h happened in [h - 0.5, h + 0.5).
    """
    cdf = np.cumsum(weights)
    index = int(np.searchsorted(cdf, u, side="right"))
    index = min(index, len(hours) - 1)
    below = cdf[index - 1] if index else 0.0
    within = (u - below) / max(weights[index], 1e-12)
    return float(hours[index] - 0.5 + min(max(within, 0.0), 1.0))


@dataclass(frozen=True)
class StratumRoutine:
    """Routine distributions of one ATUS stratum."""

    name: str
    diaries: int
    hourly_share: dict[str, dict[str, list[float]]]  # day_type -> category -> 24 shares

    @property
    def work_share(self) -> float:
        """Peak share of the stratum at work on a weekday: about the share of people who work."""
        return max(self.hourly_share["weekday"].get(WORK, [0.0]))

    @property
    def label(self) -> str:
        return f"ATUS {self.name} ({'mostly employed' if self.work_share >= 0.4 else 'mostly not employed'})"

    def _series(self, category: str) -> np.ndarray:
        return np.asarray(self.hourly_share["weekday"].get(category, [0.0] * 24))

    def routine(self, u_wake: float, u_sleep: float, u_work: float, u_start: float, u_end: float) -> RoutineAnchors:
        """Anchors at the given quantiles (u = 0.5 everywhere gives the stratum's typical day)."""
        sleep = self._series(SLEEPING)
        wake_hours = np.arange(4, 14)  # fall of the sleeping share between 04:00 and 13:00
        wake = _quantile(*_hour_distribution(sleep[wake_hours - 1] - sleep[wake_hours], wake_hours), u_wake)
        bed_hours = np.arange(17, 28)  # rise of the sleeping share from 17:00 to 03:00 next day
        bed = _quantile(*_hour_distribution(sleep[bed_hours % 24] - sleep[(bed_hours - 1) % 24], bed_hours), u_sleep)
        works = u_work < self.work_share
        if not works:
            return RoutineAnchors(wake=round(wake, 2), sleep=round(bed, 2))
        work = self._series(WORK)
        start_hours = np.arange(5, 15)
        start = _quantile(*_hour_distribution(work[start_hours] - work[start_hours - 1], start_hours), u_start)
        end_hours = np.arange(12, 24)
        end = _quantile(*_hour_distribution(work[end_hours - 1] - work[end_hours], end_hours), u_end)
        end = max(end, start + 4.0)  # working hours shorter than four are a sampling artefact
        return RoutineAnchors(wake=round(wake, 2), sleep=round(bed, 2), work_start=round(start, 2),
                              work_end=round(min(end, 30.0), 2))

    def evening_activity(self, day_type: str = "weekday") -> list[tuple[str, float]]:
        """Activity categories by share between 18:00 and 23:00, most common first (sleep and work excluded)."""
        table = self.hourly_share[day_type]
        means = {c: float(np.mean(v[18:23])) for c, v in table.items() if c not in (SLEEPING, WORK, "other")}
        return sorted(means.items(), key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class AtusPriors:
    source: str
    strata: tuple[StratumRoutine, ...]

    @property
    def weights(self) -> np.ndarray:
        """Stratum shares by number of diaries."""
        sizes = np.asarray([s.diaries for s in self.strata], dtype=float)
        return sizes / sizes.sum()


def load_atus_priors(path: str | Path | None = None) -> AtusPriors:
    """The shipped ATUS prior table, or one written by `derive_atus_priors` at `path`."""
    text = (Path(path).read_text(encoding="utf-8") if path is not None
            else resources.files("behaviorlab.profiles").joinpath("data").joinpath(SHIPPED).read_text(encoding="utf-8"))
    payload = json.loads(text)
    strata = tuple(StratumRoutine(name, int(v["diaries"]), v["hourly_share"]) for name, v in sorted(payload["strata"].items()))
    return AtusPriors(payload["source"], strata)
