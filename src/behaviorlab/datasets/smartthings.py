"""SmartThings device-control sequences, in two layouts with one result.

CSV (as in smartthings-fr/): train.csv / valid.csv / test.csv with columns
`sequence_id,position,weekday,hour_bin,device,device_control`. Original SmartSense layout:
`{trn,vld,test}_instance_10.pkl` (int arrays [N, L, 5] of [weekday, hour_bin, device, control,
device_control] ids) + `dictionary.py` (name -> id dict literals).

Both give: user_id = "<split>-<sequence index>", position, action = device_control, extras
weekday / hour_bin / device / split (train, valid, test).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from behaviorlab.datasets.files import first_line, require_file
from behaviorlab.datasets.mapping import ColumnMapping, concat_logs, event_log_from_frame
from behaviorlab.datasets.safe_files import load_array_pickle, read_literal_assignments
from behaviorlab.datasets.tabular import scan_text_table
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import ACTION, POSITION, SPLIT, USER, EventLog, Schema, Vocabulary

CSV_COLUMNS = ["sequence_id", "position", "weekday", "hour_bin", "device", "device_control"]
SPLITS = ("train", "valid", "test")
PICKLE_SPLITS = {"trn": "train", "vld": "valid", "test": "test"}
EXTRAS = {"weekday": "str", "hour_bin": "str", "device": "str", SPLIT: "str"}
_DICTIONARIES = {"weekday": "dayofweek_dict", "hour_bin": "hour_dict", "device": "device_dict", ACTION: "device_control_dict"}
_PREFIXES = {"weekday": "day:", "hour_bin": "time:"}  # dictionary keys look like 'day:Mon', 'time:(0~3)'
# Column order inside the pickled arrays' last axis.
_PICKLE_FIELDS = {"weekday": 0, "hour_bin": 1, "device": 2, ACTION: 4}


def _schema(source: str) -> Schema:
    return Schema(name="smartthings", domain="smart_home", time="position", extras=dict(EXTRAS),
                  action_meaning="device-control", source=source)


def describe(action: str) -> str:
    """'Light:switch on' -> 'Light: switch on' (the text prompts and embeddings read)."""
    device, _, control = action.partition(":")
    return f"{device}: {control}" if control else action


def _vocabulary(actions: list[str]) -> Vocabulary:
    return Vocabulary.from_actions(actions, {a: describe(a) for a in actions})


# ---------------------------------------------------------------- CSV


def is_smartthings_csv(path: Path) -> bool:
    return path.suffix == ".csv" and first_line(path).replace('"', "").split(",") == CSV_COLUMNS


def _split_of(path: Path) -> str:
    if path.stem not in SPLITS:
        raise DataError(f"Cannot tell the split of {path.name}", hint="Name the files train.csv, valid.csv and test.csv.")
    return path.stem


def load_csv_split(path: Path) -> EventLog:
    split = _split_of(path)
    frame = scan_text_table(path, ",").with_columns(
        pl.format("{}-{}", pl.lit(split), pl.col("sequence_id").str.strip_chars()).alias("sequence_id"),
        pl.lit(split).alias(SPLIT),
    )
    mapping = ColumnMapping(user="sequence_id", time="position", time_format="position", action="device_control",
                            extras=dict(EXTRAS), name="smartthings", domain="smart_home", action_meaning="device-control")
    log = event_log_from_frame(frame, mapping, source=str(path))
    return EventLog(log.frame, _schema(str(path)), _vocabulary(log.vocabulary.actions))


def load_csv(path: Path) -> EventLog:
    """A folder loads train, valid and test (those present); a file loads its split."""
    if path.is_file():
        return load_csv_split(path)
    files = [path / f"{split}.csv" for split in SPLITS if (path / f"{split}.csv").is_file()]
    if not files:
        raise DataError(f"No train.csv, valid.csv or test.csv in {path}", hint="Point at the SmartThings CSV folder.")
    log = concat_logs([load_csv_split(f) for f in files], source=str(path))
    return EventLog(log.frame, _schema(str(path)), log.vocabulary)


# ---------------------------------------------------------------- original pickles


def _pickle_files(path: Path) -> tuple[list[tuple[str, Path]], Path]:
    """[(split, pickle path)] and the dictionary.py beside them; a folder may hold them in original/."""
    if path.is_file():
        prefix = path.name.split("_", 1)[0]
        if prefix not in PICKLE_SPLITS:
            raise DataError(f"Cannot tell the split of {path.name}", hint="Expect trn_/vld_/test_instance_<L>.pkl.")
        return [(PICKLE_SPLITS[prefix], path)], path.parent / "dictionary.py"
    folder = path / "original" if not list(path.glob("*_instance_*.pkl")) and (path / "original").is_dir() else path
    files = [(PICKLE_SPLITS[p.name.split("_", 1)[0]], p) for p in sorted(folder.glob("*_instance_*.pkl"))
             if p.name.split("_", 1)[0] in PICKLE_SPLITS]
    if not files:
        raise DataError(f"No trn/vld/test_instance_*.pkl files in {folder}", hint="Point at the SmartSense data folder.")
    files.sort(key=lambda item: SPLITS.index(item[0]))
    return files, folder / "dictionary.py"


def is_smartthings_pickle(path: Path) -> bool:
    try:
        files, dictionary = _pickle_files(path)
    except DataError:
        return False
    return bool(files) and dictionary.is_file()


def read_dictionaries(path: Path) -> dict[str, dict[int, str]]:
    """{column: {id: name}} from dictionary.py (read as literals), prefixes like 'day:' removed."""
    values = read_literal_assignments(require_file(path, "SmartThings dictionary.py"))
    problems = [Problem(f"'{name}' is missing or not a dict") for name in _DICTIONARIES.values()
                if not isinstance(values.get(name), dict)]
    if problems:
        raise DataError(f"{path} lacks the SmartThings dictionaries", problems,
                        hint=f"dictionary.py must define {sorted(_DICTIONARIES.values())}.")
    problems = [problem for variable in _DICTIONARIES.values() for problem in _id_problems(variable, values[variable])]  # type: ignore[arg-type]
    if problems:
        raise DataError(f"{path}: dictionary ids that are not integers", problems,
                        hint="Each dictionary maps a name to a whole-number id, like {'day:Mon': 0}; "
                             "use the dictionary.py distributed with the pickles.")
    names: dict[str, dict[int, str]] = {}
    for column, variable in _DICTIONARIES.items():
        prefix = _PREFIXES.get(column, "")
        names[column] = {i: str(k).removeprefix(prefix) for k, i in values[variable].items()}  # type: ignore[union-attr]
    return names


def _id_problems(variable: str, entries: dict[object, object]) -> list[Problem]:
    """One Problem per entry whose id is not an int (True is an int to Python, never an id here)."""
    return [Problem(f"{variable}[{key!r}] is {_shown(value)}, not an integer id")
            for key, value in entries.items() if type(value) is not int]


def _shown(value: object) -> str:
    """A value as the message shows it: short text as written, anything else by its type."""
    if isinstance(value, str | float | bool) and len(repr(value)) <= 40:
        return repr(value)
    return f"a {type(value).__name__}"


def load_pickle_split(path: Path, split: str, names: dict[str, dict[int, str]]) -> pl.DataFrame:
    array = load_array_pickle(path)  # [N sequences, L events, 5 ids]
    if array.ndim != 3 or array.shape[2] != 5:
        raise DataError(f"{path} holds an array of shape {array.shape}, expected [sequences, events, 5]",
                        hint="Expect the SmartSense instance layout [weekday, hour, device, control, device_control].")
    n, length, _ = array.shape
    flat = array.reshape(n * length, 5)  # [N*L, 5], row = sequence * L + position
    columns: dict[str, list] = {
        USER: [f"{split}-{s}" for s in range(n) for _ in range(length)],
        POSITION: [p for _ in range(n) for p in range(length)],
    }
    problems = []
    for column, field in _PICKLE_FIELDS.items():
        lookup = names[column]
        ids = flat[:, field].tolist()
        unknown = sorted({i for i in ids if i not in lookup})
        problems.extend(Problem(f"id {i} is not in dictionary.py ({_DICTIONARIES[column]})",
                                row=ids.index(i) // length + 1, column=column) for i in unknown)
        columns[column] = [lookup.get(i) for i in ids]
    if problems:
        raise DataError(f"{path}: ids without names", problems,
                        hint="Use the dictionary.py distributed with these pickles (rows are sequence numbers from 1).")
    columns[SPLIT] = [split] * (n * length)
    return pl.DataFrame(columns, schema={USER: pl.String, POSITION: pl.Int64, "weekday": pl.String,
                                         "hour_bin": pl.String, "device": pl.String, ACTION: pl.String, SPLIT: pl.String})


def load_pickles(path: Path) -> EventLog:
    """A folder loads every split present; one .pkl file loads its split (dictionary.py beside it)."""
    files, dictionary = _pickle_files(path)
    names = read_dictionaries(dictionary)
    frame = pl.concat([load_pickle_split(p, split, names) for split, p in files])
    return EventLog(frame, _schema(str(path)), _vocabulary(frame.get_column(ACTION).unique().to_list()))
