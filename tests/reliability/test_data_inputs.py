"""Regression corpus of bad data inputs (issue 12): each one, run through the real CLI, is a typed error.

Every case runs through `data inspect`, `data convert` and `train` (those that take a --map only through
the first two) and asserts the exit code (3 for a DataError, 2 for a ConfigError; never 70, the
internal-error code), that no traceback is printed, the first line of the message, and that no output
or temporary file is left behind. Inputs are built in code under tmp_path. Inputs that could
block a reader (FIFOs) run in a subprocess with a timeout, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from behaviorlab.cli import main
from behaviorlab.datasets import read_event_log

HEADER = "user_id,timestamp,action\n"
DICTIONARY = ("dayofweek_dict = {'day:Mon': 0}\nhour_dict = {'time:(0~3)': 0}\ndevice_dict = {'Light': 0}\n"
              "device_control_dict = {'Light:switch on': 0}\n")
ONE_SEQUENCE = np.zeros((1, 2, 5), dtype=np.int64)  # [sequences, events, 5 ids], every id 0
HANG_SECONDS = 20
MAPPED = ("inspect", "convert")  # the commands that take --map


# ---------------------------------------------------------------- input builders: folder -> (input path, extra args)


def csv_file(text: str, name: str = "events.csv", encoding: str = "utf-8") -> Callable[[Path], tuple[Path, list[str]]]:
    def build(folder: Path) -> tuple[Path, list[str]]:
        path = folder / name
        path.write_bytes(text.encode(encoding))
        return path, []
    return build


def with_args(build: Callable[[Path], tuple[Path, list[str]]], *args: str) -> Callable[[Path], tuple[Path, list[str]]]:
    def wrapped(folder: Path) -> tuple[Path, list[str]]:
        path, extra = build(folder)
        return path, [*extra, *args]
    return wrapped


def parquet_file(columns: dict, name: str = "events.parquet") -> Callable[[Path], tuple[Path, list[str]]]:
    def build(folder: Path) -> tuple[Path, list[str]]:
        path = folder / name
        pl.DataFrame(columns).write_parquet(path)
        return path, []
    return build


def parquet_repeating_a_column(folder: Path) -> tuple[Path, list[str]]:
    path = folder / "events.parquet"
    table = pa.table([pa.array(["a"]), pa.array([1_700_000_000]), pa.array(["x"]), pa.array(["b"])],
                     names=["user_id", "timestamp", "action", "user_id"])
    pq.write_table(table, path)
    return path, []


def jsonl_file(lines: list[str]) -> Callable[[Path], tuple[Path, list[str]]]:
    return csv_file("\n".join(lines) + "\n", name="events.jsonl")


def jsonl_rows(rows: list[dict]) -> Callable[[Path], tuple[Path, list[str]]]:
    return jsonl_file([json.dumps(row) for row in rows])


def good_jsonl_lines(n: int) -> list[str]:
    return [json.dumps({"user_id": f"u{i % 7}", "timestamp": 1_700_000_000 + i, "action": "a"}) for i in range(n)]


class CallsSystem:
    """A pickle that runs `touch <marker>` when loaded with pickle.load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def smartthings_pickles(dictionary: str = DICTIONARY, evil_in: str | None = None, evil_inside_list: bool = False,
                        payload: bytes | None = None) -> Callable[[Path], tuple[Path, list[str]]]:
    """A SmartSense folder: trn/vld/test pickles + dictionary.py, one of them replaced by a malicious or broken
    one. MARKER in the dictionary text becomes the path that code run from it would create."""
    def build(folder: Path) -> tuple[Path, list[str]]:
        data, marker = folder / "smartsense", folder / "pwned"
        data.mkdir()
        (data / "dictionary.py").write_text(dictionary.replace("MARKER", str(marker)))
        for prefix in ("trn", "vld", "test"):
            content = pickle.dumps(ONE_SEQUENCE)
            if prefix == evil_in:
                content = payload or pickle.dumps([ONE_SEQUENCE, CallsSystem(marker)] if evil_inside_list else CallsSystem(marker))
            (data / f"{prefix}_instance_2.pkl").write_bytes(content)
        return data, []
    return build


def epoch_rows(*values: object) -> Callable[[Path], tuple[Path, list[str]]]:
    return csv_file(HEADER + "".join(f"u{i},{v},open\n" for i, v in enumerate(values)))


def seconds_then_milliseconds(folder: Path) -> tuple[Path, list[str]]:
    """A column that switches unit after the rows the unit is detected from: the odd rows are listed, not loaded."""
    rows = [f"u{i % 9},{1_700_000_000 + i},a" for i in range(1500)] + ["u1,1700000001500,b"]
    path = folder / "events.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path, []


def latin1_after_the_head(folder: Path) -> tuple[Path, list[str]]:
    """The first non-UTF-8 byte lies past the part of the file checked up front: it is still named, with its line."""
    rows = [f"u{i % 9},{1_700_000_000 + i},a" for i in range(100_000)] + ["Jos\xe9,1700000000,caf\xe9"]
    path = folder / "events.csv"
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode("latin-1"))
    return path, []


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], tuple[Path, list[str]]]
    code: int
    first_line: str  # a stable part of the message's first line
    detail: str | None = None  # a stable part of the rest (a listed problem or the hint)
    commands: tuple[str, ...] = ("inspect", "convert", "train")  # train reads a log as detected: it takes no --map
    marker: bool = False  # a malicious input must not have created folder/pwned


CASES = [
    # 1. timestamps are never silently wrong
    Case("epoch 9e18 (ns, year 2255)", epoch_rows(1_700_000_000_000_000_000, 9_000_000_000_000_000_000),
         3, "problem in the rows", "outside the years 1970..2100"),
    Case("epoch beyond int64", epoch_rows(1_700_000_000, 12_000_000_000_000_000_000), 3, "problem in the rows",
         "outside the years 1970..2100"),
    Case("negative epoch", epoch_rows(-1_700_000_000, 1_700_000_000), 3, "problem in the rows", "row 1, column 'timestamp'"),
    Case("negative float epoch in scientific notation", epoch_rows("-1.7e9", "1.7e9"), 3, "problem in the rows",
         "outside the years 1970..2100"),
    Case("seconds then milliseconds", seconds_then_milliseconds, 3, "problem in the rows", "row 1501"),
    Case("ISO sentinel 0001-01-01", csv_file(HEADER + "u,2024-01-01T00:00:00,a\nu,0001-01-01T00:00:00,b\n"), 3,
         "problem in the rows", "row 2, column 'timestamp'"),
    Case("Parquet integer epoch 9e18", parquet_file({"user_id": ["a", "b"], "timestamp": [1, 9_000_000_000_000_000_000],
                                                     "action": ["x", "y"]}), 3, "problem in the rows", "outside the years"),
    Case("Parquet datetime year 2262", parquet_file({"user_id": ["a"], "timestamp": [datetime(2262, 1, 1)], "action": ["x"]}),
         3, "problem in the rows", "outside the years"),
    Case("JSONL epoch 9e18", jsonl_rows([{"user_id": "a", "timestamp": 9_000_000_000_000_000_000, "action": "x"}]), 3,
         "problem in the rows", "outside the years"),
    Case("time_unit on a non-epoch format", with_args(csv_file(HEADER + "u,2024-01-01,a\n"), "--map", "time_format=iso,time_unit=ns"),
         2, "Invalid configuration", "time_unit", commands=MAPPED),
    # 2. ambiguous tables are refused, not guessed
    Case("header repeats user_id", csv_file("user_id,timestamp,action,user_id\n" + "".join(
        f"{i},{1_700_000_000 + i},a,{i % 2}\n" for i in range(6))), 3, "repeats the column 'user_id'"),
    Case("header repeats action", csv_file("user_id,action,timestamp,action\nu,a,1700000000,b\n"), 3,
         "repeats the column 'action'"),
    Case("quoted header repeats a column", csv_file('"user_id","timestamp","action","action"\nu,1700000000,"a","b"\n'), 3,
         "repeats the column 'action'"),
    Case("one column as user and time", with_args(csv_file("u,a\n1700000000,x\n"), "--map", "user=u,time=u,action=a"),
         3, "uses one column for two roles", "'u'", commands=MAPPED),
    Case("JSONL repeats a key", jsonl_file(['{"user_id": "a", "timestamp": 1700000000, "action": "x", "user_id": "b"}']),
         3, "repeats the column 'user_id'"),
    Case("Parquet repeats a column", parquet_repeating_a_column, 3, "repeats the column 'user_id'"),
    # 7. no internal errors on bad input (the FIFO cases are in test_special_files_are_refused_without_hanging)
    Case("dictionary.py id is text", smartthings_pickles(DICTIONARY.replace("'day:Mon': 0", "'day:Mon': 'x'")), 3,
         "ids that are not integers", "dayofweek_dict['day:Mon']"),
    Case("dictionary.py id is a dict", smartthings_pickles(DICTIONARY.replace("'Light': 0", "'Light': {}")), 3,
         "ids that are not integers", "device_dict['Light']"),
    Case("dictionary.py id is a bool", smartthings_pickles(DICTIONARY.replace("'Light': 0", "'Light': True")), 3,
         "ids that are not integers"),
    Case("dictionary.py 100k nested minus signs", smartthings_pickles(
        DICTIONARY.replace("'day:Mon': 0", "'day:Mon': " + "- " * 100_000 + "1")), 3, "nested too deeply"),
    Case("dictionary.py 3k nested minus signs", smartthings_pickles(
        DICTIONARY.replace("'day:Mon': 0", "'day:Mon': " + "- " * 3_000 + "1")), 3, "nested too deeply"),
    Case("dictionary.py unhashable key", smartthings_pickles(DICTIONARY.replace("'Light': 0", "['Light']: 0")), 3,
         "assignments that are not literals", "row 3"),
    Case("dictionary.py syntax error", smartthings_pickles(DICTIONARY.replace("{'Light': 0}", "{'Light': 0")), 3,
         "is not valid Python", "line 3, column"),
    # 8. what we write, we can read
    Case("a 2 MiB field", csv_file(HEADER + "u,1700000000," + "x" * (2 << 20) + "\nv,1700000001,b\n"), 3,
         "problem in the rows", "row 1, column 'action': is longer than 1 MiB"),
    # 9. hints that help
    Case("UTF-16 with BOM", csv_file(HEADER + "u,1700000000,a\n", encoding="utf-16"), 3,
         "is not UTF-8 text: it looks like UTF-16", "iconv -f UTF-16 -t UTF-8"),
    Case("UTF-16LE without BOM", csv_file(HEADER + "u,1700000000,a\n", encoding="utf-16-le"), 3,
         "is not UTF-8 text: it looks like UTF-16LE", "iconv -f UTF-16LE -t UTF-8"),
    Case("UTF-16BE JSONL", csv_file('{"user_id": "a", "timestamp": 1, "action": "x"}\n', name="e.jsonl", encoding="utf-16-be"),
         3, "it looks like UTF-16BE"),
    Case("Latin-1", csv_file(HEADER + "Jos\xe9,1700000000,caf\xe9\n", encoding="latin-1"), 3,
         "is not UTF-8 text: it looks like Latin-1", "iconv -f LATIN1 -t UTF-8"),
    Case("Windows-1252", csv_file(HEADER + "u,1700000000,\u201cquoted\u201d \u20ac\n", encoding="cp1252"), 3,
         "is not UTF-8 text: it looks like Windows-1252", "iconv -f CP1252 -t UTF-8"),
    Case("Latin-1 past the checked head", latin1_after_the_head, 3, "it looks like Latin-1 (ISO-8859-1), judging by byte 0xE9 "
         "at line 100002, column 4", "iconv -f LATIN1 -t UTF-8"),
    Case("Parquet list user ids", parquet_file({"user_id": [[1, 2], [3]], "timestamp": [1_700_000_000] * 2, "action": ["a", "b"]}),
         3, "columns of the wrong type", "column 'user_id': holds List(Int64)"),
    Case("Parquet boolean times", parquet_file({"user_id": ["a"], "timestamp": [True], "action": ["x"]}), 3,
         "columns of the wrong type", "column 'timestamp': holds Boolean"),
    Case("JSONL struct actions", jsonl_rows([{"user_id": "a", "timestamp": 1_700_000_000, "action": {"x": 1}}]), 3,
         "columns of the wrong type", "column 'action'"),
    Case("JSONL list times", jsonl_rows([{"user_id": "a", "timestamp": [1], "action": "x"}]), 3, "columns of the wrong type",
         "column 'timestamp'"),
    Case("JSONL syntax error", jsonl_file(good_jsonl_lines(1) + ['{"user_id": "b", "timestamp": 1700000000, "action": "x",}']),
         3, "is not valid JSON lines", "line 2, column 57"),
    Case("JSONL syntax error past the inferred lines", jsonl_file(good_jsonl_lines(20_001) + ['{"user_id": "b",, "action": "x"}']),
         3, "is not valid JSON lines", "line 20002, column 17"),
    Case("JSONL line that is not an object", jsonl_file(good_jsonl_lines(2) + ["[1, 2, 3]"]), 3, "is not valid JSON lines",
         "line 3"),
    # the earlier ones
    *(Case(f"malicious {prefix} pickle", smartthings_pickles(evil_in=prefix), 3, "is not a plain numpy array pickle",
           "system", marker=True) for prefix in ("trn", "vld", "test")),
    Case("malicious object beside an array", smartthings_pickles(evil_in="vld", evil_inside_list=True), 3,
         "is not a plain numpy array pickle", marker=True),
    Case("object array pickle", smartthings_pickles(evil_in="trn", payload=pickle.dumps(np.array(["x"], dtype=object))), 3,
         "not an integer numpy array"),
    Case("truncated pickle", smartthings_pickles(evil_in="test", payload=pickle.dumps(ONE_SEQUENCE)[:30]), 3,
         "is not a readable pickle"),
    Case("code in dictionary.py", smartthings_pickles("import os\ndayofweek_dict = os.system('touch MARKER')\n" + DICTIONARY),
         3, "assignments that are not literals", "row 2", marker=True),
    Case("truncated last row", csv_file(HEADER + "u,1700000000,a\nu,17000"), 3, "problem in the rows",
         "row 2, column 'action'"),
    Case("ragged row", csv_file(HEADER + "u,1700000000,a\nu,1700000001,b,c\n"), 3, "could not be read as a table"),
    Case("unclosed quote", csv_file(HEADER + 'u,1700000000,"a\n'), 3, "could not be read as a table"),
    Case("empty file", csv_file(""), 3, "is empty"),
    Case("header only", csv_file(HEADER), 3, "has no events"),
    Case("NaN ids", parquet_file({"user_id": [1.0, float("nan")], "timestamp": [1_700_000_000] * 2, "action": ["a", "b"]}), 3,
         "problem in the rows", "row 2, column 'user_id'"),
    Case("missing columns", with_args(csv_file("uid,ts,item\nu,1,a\n"), "--map", "user=uid,time=when,action=item"), 3,
         "columns are missing", commands=MAPPED),
]


def leftovers(folder: Path) -> list[Path]:
    """What a failed command left in its output folder. The empty one-writer lock file beside an output
    (atomic.exclusive_writer) stays by design: deleting it would let two writers lock different files."""
    return [p for p in folder.iterdir() if not p.name.endswith(".lock")]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(code: int, out: str, err: str, case: Case) -> None:
    assert code == case.code, f"exit {code}, expected {case.code}:\n{out}\n{err}"
    assert "Traceback" not in out + err and "internal error" not in err
    first, _, rest = err.partition("\n")
    assert case.first_line in first, err
    if case.detail:
        assert case.detail in rest, err


def data_command(command: str, path: Path, outputs: Path, extra: list[str]) -> list[str]:
    if command == "train":
        return ["train", "--model", "markov", "--data", str(path), "--out", str(outputs / "model"), *extra]
    if command == "convert":
        return ["data", "convert", str(path), str(outputs / "out.parquet"), *extra]
    return ["data", "inspect", str(path), *extra]


@pytest.mark.parametrize(("case", "command"), [(c, command) for c in CASES for command in c.commands],
                         ids=[f"{c.name}-{command}" for c in CASES for command in c.commands])
def test_bad_input_is_a_typed_error(case: Case, command: str, tmp_path: Path, capsys) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    path, extra = case.build(inputs)
    assert_refused(*run_cli(data_command(command, path, outputs, extra), capsys), case)
    assert leftovers(outputs) == []  # nothing written, not even a temporary file
    if case.marker:
        assert not (inputs / "pwned").exists()


# ---------------------------------------------------------------- config files that are not UTF-8 text


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(HEADER + "".join(f"u{i % 4},{1_700_000_000 + 60 * i},{'abc'[i % 3]}\n" for i in range(40)))
    return path


def command_with_config(command: str, data: Path, config: Path, out: Path) -> list[str]:
    return {
        "inspect": ["data", "inspect", str(data), "--config", str(config)],
        "convert": ["data", "convert", str(data), str(out / "out.parquet"), "--config", str(config)],
        "train": ["train", "--model", "markov", "--data", str(data), "--out", str(out / "model"), "--config", str(config)],
        "generate": ["generate", "--config", str(config)],
    }[command]


@pytest.mark.parametrize("command", ["inspect", "convert", "train", "generate"])
@pytest.mark.parametrize(("encoding", "guess"), [("latin-1", "Latin-1"), ("utf-16", "UTF-16")])
def test_a_config_file_that_is_not_utf8_is_a_config_error(command, encoding, guess, events_csv, tmp_path, capsys):
    config = tmp_path / "settings.toml"
    config.write_bytes('# réglages\nname = "café"\n'.encode(encoding))
    out = tmp_path / "out"
    out.mkdir()
    case = Case("config", csv_file(""), 2, f"is not UTF-8 text: it looks like {guess}", "iconv -f")
    assert_refused(*run_cli(command_with_config(command, events_csv, config, out), capsys), case)
    assert leftovers(out) == []


def test_a_config_path_that_is_a_folder_is_a_config_error(events_csv, tmp_path, capsys):
    case = Case("config folder", csv_file(""), 2, "is not a regular file")
    assert_refused(*run_cli(["data", "inspect", str(events_csv), "--config", str(tmp_path)], capsys), case)


# ---------------------------------------------------------------- special files: refused, never read (no hang)


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def fifo_inputs(folder: Path) -> dict[str, list[str]]:
    """name -> CLI arguments; each names a FIFO where a file is expected (nothing ever writes to them)."""
    smartthings = folder / "smartthings"
    smartthings.mkdir()
    fifo(smartthings / "train.csv")
    data = folder / "events.csv"
    data.write_text(HEADER + "u,1700000000,a\n")
    return {
        "csv": ["data", "inspect", str(fifo(folder / "pipe.csv"))],
        "forced csv": ["data", "inspect", str(folder / "pipe.csv"), "--format", "csv"],
        "jsonl": ["data", "convert", str(fifo(folder / "pipe.jsonl")), str(folder / "out.parquet")],
        "parquet": ["data", "inspect", str(fifo(folder / "pipe.parquet"))],
        "fifo inside a folder": ["data", "inspect", str(smartthings)],
        "config": ["data", "inspect", str(data), "--config", str(fifo(folder / "pipe.toml"))],
    }


FIFO_CASES = {"csv": (3, "is not a regular file or folder"), "forced csv": (3, "is not a regular file"),
              "jsonl": (3, "is not a regular file or folder"), "parquet": (3, "is not a regular file or folder"),
              "fifo inside a folder": (3, "Could not recognise the format"), "config": (2, "is not a regular file")}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs need a POSIX system")
@pytest.mark.parametrize("name", list(FIFO_CASES))
def test_special_files_are_refused_without_hanging(name, tmp_path):
    args = fifo_inputs(tmp_path)[name]
    try:
        result = subprocess.run([sys.executable, "-m", "behaviorlab", *args], capture_output=True, text=True,
                                timeout=HANG_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`behaviorlab {' '.join(args)}` did not return within {HANG_SECONDS} s (it reads the FIFO)")
    code, first_line = FIFO_CASES[name]
    case = Case(name, csv_file(""), code, first_line)
    assert_refused(result.returncode, result.stdout, result.stderr, case)
    assert not (tmp_path / "out.parquet").exists()


# ---------------------------------------------------------------- timestamps that must load, and load right

EXPECTED = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # epoch 1_700_000_000 s


@pytest.mark.parametrize(("value", "extra"), [
    ("1700000000", []),
    ("1700000000000", []),
    ("1700000000000000", []),
    ("1700000000000000000", []),  # nanoseconds, as pandas and Spark write them
    ("1.7e9", []),
    ("1.7e18", []),
    ("1700000000000000000", ["--map", "time_unit=ns"]),
    ("1700000000000", ["--map", "time_format=epoch_ms"]),
    ("1700000000", ["--map", "time_format=epoch,time_unit=s"]),
])
def test_epochs_in_every_unit_load_as_the_right_time(value, extra, tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text(HEADER + f"u,{value},a\nu,{value},b\n")
    out = tmp_path / "out.parquet"
    code, _, err = run_cli(["data", "convert", str(path), str(out), *extra], capsys)
    assert code == 0, err
    assert read_event_log(out).frame.get_column("timestamp").to_list() == [EXPECTED, EXPECTED]


def test_one_nanosecond_epoch_and_an_older_range_when_allowed(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text(HEADER + "u,1000000000000000000,a\nv,-1700000000,b\n")
    code, _, err = run_cli(["data", "convert", str(path), str(tmp_path / "a.parquet"), "--map", "time_unit=ns"], capsys)
    assert code == 3 and "row 2" in err
    path.write_text(HEADER + "u,1000000000000000000,a\n")
    assert run_cli(["data", "convert", str(path), str(tmp_path / "b.parquet")], capsys)[0] == 0
    assert read_event_log(tmp_path / "b.parquet").frame.get_column("timestamp")[0] == datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)
    path.write_text(HEADER + "u,-1700000000,a\nu,1700000000,b\n")
    code, _, err = run_cli(["data", "convert", str(path), str(tmp_path / "c.parquet"), "--map", "min_year=1900"], capsys)
    assert code == 0, err
    assert read_event_log(tmp_path / "c.parquet").frame.get_column("timestamp")[0].year == 1916


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_nanosecond_integer_columns_of_parquet_and_jsonl(kind, tmp_path, capsys):
    path = tmp_path / f"events.{kind}"
    rows = {"user_id": ["u", "u"], "timestamp": [1_700_000_000_000_000_000] * 2, "action": ["a", "b"]}
    if kind == "parquet":
        pl.DataFrame(rows).write_parquet(path)
    else:
        pl.DataFrame(rows).write_ndjson(path)
    code, out, err = run_cli(["data", "inspect", str(path)], capsys)
    assert code == 0, err
    assert "2023-11-14 22:13:20" in out
