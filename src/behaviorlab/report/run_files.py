"""Reading what a generation run directory holds, for evaluation and the report.

A run directory (written by `behaviorlab generate`) has a manifest JSON, the synthetic EventLog as
Parquet and an SQLite store whose `profiles` table holds each profile as JSON with its index. The
sequence of profile `idx` has the user id `syn-<idx, 5 digits>` (generate/run.py), unless the log
carries a `profile_id` column. Evaluation and experiment results are written beside them
(`evaluation.json`, `experiment*.json`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behaviorlab.errors import DataError, Problem
from behaviorlab.evaluate.diversity import PERSON_COLUMN, person_sequences
from behaviorlab.evaluate.scenarios import SyntheticRun
from behaviorlab.generate.run import GROUNDING_KEY
from behaviorlab.schema import EventLog, Profile

MANIFEST_FILE = "manifest.json"
EVALUATION_FILE = "evaluation.json"
EXPERIMENT_PATTERN = "experiment*.json"
STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
GENERATED_USER = "syn-{index:05d}"  # the user id generate/run.py gives the run's sequence number `index`


@dataclass
class GenerationRun:
    directory: Path
    manifest: dict[str, Any] | None
    synthetic: EventLog
    profiles: dict[str, Profile]  # keyed by the person id of `diversity.person_sequences`

    @property
    def grounding_digest(self) -> str | None:
        """The digest of the real log the run was grounded on; None for a bare Parquet file or an older run."""
        return ((self.manifest or {}).get("data") or {}).get(GROUNDING_KEY)

    @property
    def grounded(self) -> bool:
        """False for a run generated without grounding (`generate --grounding none`, the ablation)."""
        return ((self.manifest or {}).get("config") or {}).get("grounding", "real") != "none"

    def profile_examples(self) -> list[tuple[Profile, list[list[str]]]]:
        """Each profile that has generated sequences, with them, in profile order."""
        by_person = person_sequences(self.synthetic)
        return [(p, by_person[pid]) for pid, p in self.profiles.items() if pid in by_person]


def _synthetic_path(directory: Path, manifest: dict[str, Any] | None) -> Path:
    """The Parquet file the manifest names (a value ending in .parquet, at the top or one level down),
    else the only one in the directory."""
    values = list((manifest or {}).values())
    values += [v for section in values if isinstance(section, dict) for v in section.values()]
    for value in values:
        if isinstance(value, str) and value.endswith(".parquet") and (directory / value).is_file():
            return directory / value
    candidates = sorted(directory.glob("*.parquet"))
    if len(candidates) != 1:
        raise DataError(f"Cannot tell which Parquet file in {directory} is the synthetic log",
                        [Problem(f"found {[c.name for c in candidates] or 'none'}")],
                        hint="Pass the synthetic .parquet file itself instead of the run directory.")
    return candidates[0]


def read_profiles(directory: Path) -> dict[int, Profile]:
    """{idx: profile} from the run's SQLite store (table `profiles`: idx, profile JSON); {} without one."""
    profiles: dict[int, Profile] = {}
    for store in sorted(p for p in directory.iterdir() if p.suffix in STORE_SUFFIXES):
        connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT idx, profile FROM profiles ORDER BY idx").fetchall()
        except sqlite3.Error:
            continue  # another kind of database: not a run store
        finally:
            connection.close()
        profiles.update((idx, Profile.from_json(text)) for idx, text in rows)
    return profiles


def _by_person(synthetic: EventLog, profiles: dict[int, Profile], per_profile: int) -> dict[str, Profile]:
    """Profiles keyed the way `person_sequences` groups the log: by profile id when the log has that
    column, else by the generated user id of each of the profile's sequences (numbers idx * per_profile + slot)."""
    if PERSON_COLUMN in synthetic.frame.columns:
        return {p.profile_id: p for p in profiles.values()}
    return {GENERATED_USER.format(index=idx * per_profile + slot): p
            for idx, p in profiles.items() for slot in range(per_profile)}


def read_run(path: str | Path) -> GenerationRun:
    """A run directory, or a bare synthetic Parquet file (then without manifest and profiles)."""
    from behaviorlab.datasets import read_event_log

    path = Path(path)
    if path.is_file():
        return GenerationRun(path.parent, None, read_event_log(path), {})
    if not path.is_dir():
        raise DataError(f"{path} does not exist", hint="Pass a generation run directory or a synthetic .parquet file.")
    manifest_path = path / MANIFEST_FILE
    manifest = None
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{manifest_path} is not valid JSON", [Problem(str(exc))],
                            hint="The run's manifest is damaged; re-run the generation to rewrite it.") from exc
    synthetic = read_event_log(_synthetic_path(path, manifest))
    per_profile = (manifest or {}).get("sequences_per_profile", 1)  # runs made before the setting: one each
    return GenerationRun(path, manifest, synthetic, _by_person(synthetic, read_profiles(path), per_profile))


def experiment_runs(paths: Sequence[str | Path]) -> list[SyntheticRun]:
    """Generation runs as the experiment takes them: log, grounding digest, and source ("llm", or
    "llm_ungrounded" for a run generated without grounding)."""
    runs = [(path, read_run(path)) for path in paths]
    return [SyntheticRun(str(path), run.synthetic, run.grounding_digest, "llm" if run.grounded else "llm_ungrounded")
            for path, run in runs]
