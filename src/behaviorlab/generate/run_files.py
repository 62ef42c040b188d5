"""Reading what a generation run directory holds, for evaluation, experiments and the report.

A run directory (written by `run.py`) has `manifest.json` (`manifest.RunManifest`), the synthetic EventLog
as Parquet and an SQLite store whose `profiles` table holds each profile as JSON with its index. The
sequence number `idx * sequences_per_profile + slot` of profile `idx` names its user, `GENERATED_USER`,
unless the log carries a `profile_id` column (schema.PERSON).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from behaviorlab.errors import DataError, Problem
from behaviorlab.generate.manifest import MANIFEST_FILE, RunManifest
from behaviorlab.schema import PERSON, EventLog, Profile

STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
GENERATED_USER = "syn-{index:05d}"  # the synthetic user of the run's sequence number `index`


@dataclass
class GenerationRun:
    directory: Path
    manifest: RunManifest | None  # None for a bare synthetic Parquet file
    synthetic: EventLog
    profiles: dict[str, Profile]  # keyed by person: the log's profile_id, else each sequence's user id

    @property
    def grounding_digest(self) -> str | None:
        """The digest of the real log the run was grounded on; None for a bare Parquet file or an older run."""
        return self.manifest.data.grounding_digest if self.manifest else None

    @property
    def grounded(self) -> bool:
        """False for a run generated without grounding (`generate --grounding none`, the ablation)."""
        return self.manifest.grounded if self.manifest else True


def _synthetic_path(directory: Path, manifest: RunManifest | None) -> Path:
    """The Parquet file the manifest names, else the only one in the directory."""
    if manifest is not None and (directory / manifest.synthetic.file).is_file():
        return directory / manifest.synthetic.file
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
    """Profiles keyed the way `evaluate.diversity.person_sequences` groups the log: by profile id when the
    log has that column, else by the generated user id of each of the profile's sequences."""
    if PERSON in synthetic.frame.columns:
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
    manifest = RunManifest.read(path) if (path / MANIFEST_FILE).is_file() else None
    synthetic = read_event_log(_synthetic_path(path, manifest))
    per_profile = manifest.sequences_per_profile if manifest else 1
    return GenerationRun(path, manifest, synthetic, _by_person(synthetic, read_profiles(path), per_profile))
