"""Kasteren-style home sensor logs: `houseX.sensors` (start, duration, sensor id; Unix seconds),
`houseX.activities` (start, duration, activity id), `houseX.sensor_names`, `houseX.activity_names`.

Each sensor firing is one event: user_id = the house ("houseA"), action = the sensor's name (a sensor id missing from the
names file becomes "<house>:sensor#<id>", described as unnamed), extras
`duration_s` and `activity` (the annotated activity whose interval covers the firing; empty (null)
when none does). A folder with several houses loads them all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from behaviorlab.datasets.files import read_id_names, read_int_rows
from behaviorlab.datasets.mapping import concat_logs
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import ACTION, TIMESTAMP, TIMESTAMP_DTYPE, USER, EventLog, Schema, Vocabulary


def _houses(path: Path) -> list[Path]:
    """The .sensors files named by `path` (a .sensors file, any houseX.* file, or a folder)."""
    if path.is_dir():
        return sorted(path.glob("*.sensors"))
    sensors = path.with_suffix(".sensors")
    return [sensors] if sensors.is_file() else []


def is_kasteren(path: Path) -> bool:
    return bool(_houses(path)) and all(p.with_suffix(".sensor_names").is_file() for p in _houses(path))


def _sensor_tokens(names: dict[int, str]) -> dict[int, str]:
    """Sensor id -> action token: its name, or 'name#id' where two sensors share a name."""
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {i: (name if counts[name] == 1 else f"{name}#{i}") for i, name in names.items()}


def _activity_at(starts: pl.DataFrame, activities: pl.DataFrame) -> pl.Series:
    """For each event start, the activity whose [start, start + duration] covers it (latest start wins)."""
    joined = starts.with_row_index("_row").sort("start").join_asof(
        activities.sort("a_start"), left_on="start", right_on="a_start", strategy="backward")
    covered = pl.when(pl.col("start") <= pl.col("a_start") + pl.col("a_duration")).then(pl.col("activity"))
    return joined.sort("_row").select(covered.alias("activity")).get_column("activity")


def load_house(sensors_path: Path) -> EventLog:
    house = sensors_path.stem
    tokens = _sensor_tokens(read_id_names(sensors_path.with_suffix(".sensor_names")))
    rows = read_int_rows(sensors_path, 3)
    # Real files fire ids their names file lacks (houseA: sensor 4). Those events are kept, under a
    # token and description that say so, rather than dropped or refused.
    descriptions = dict(zip(tokens.values(), tokens.values(), strict=True))
    for unnamed in sorted({r[2] for r in rows} - set(tokens)):
        tokens[unnamed] = f"{house}:sensor#{unnamed}"
        descriptions[tokens[unnamed]] = f"sensor {unnamed} (no name in {house}.sensor_names)"
    frame = pl.DataFrame({
        USER: [house] * len(rows),
        TIMESTAMP: [datetime.fromtimestamp(r[0], UTC) for r in rows],
        ACTION: [tokens[r[2]] for r in rows],
        "duration_s": [r[1] for r in rows],
    }, schema={USER: pl.String, TIMESTAMP: TIMESTAMP_DTYPE, ACTION: pl.String, "duration_s": pl.Int64})
    activities_path = sensors_path.with_suffix(".activities")
    if activities_path.is_file():
        activity_names = read_id_names(sensors_path.with_suffix(".activity_names"))
        spans = read_int_rows(activities_path, 3)
        missing = sorted({s[2] for s in spans} - set(activity_names))
        if missing:
            raise DataError(f"{activities_path}: activity ids without a name",
                            [Problem(f"activity id {i} is not in {house}.activity_names") for i in missing])
        table = pl.DataFrame({"a_start": [s[0] for s in spans], "a_duration": [s[1] for s in spans],
                              "activity": [activity_names[s[2]] for s in spans]})
        starts = pl.DataFrame({"start": [r[0] for r in rows]})
        frame = frame.with_columns(_activity_at(starts, table))
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("activity"))
    schema = Schema(name="kasteren", domain="activity", time="timestamp", extras={"duration_s": "int", "activity": "str"},
                    action_meaning="sensor firing", source=str(sensors_path))
    return EventLog(frame, schema, Vocabulary.from_actions(tokens.values(), descriptions))


def load_kasteren(path: Path) -> EventLog:
    houses = _houses(path)
    if not houses:
        raise DataError(f"No houseX.sensors file at {path}", hint="Point at a Kasteren folder or a houseX.sensors file.")
    return load_house(houses[0]) if len(houses) == 1 else concat_logs([load_house(h) for h in houses], source=str(path))
