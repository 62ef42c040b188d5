"""What the commands share: the progress-bar helper, and the read options of every command that reads a log."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from behaviorlab.cli import main
from behaviorlab.cli.common import ReadFlags, progress_bar, progress_bars, with_read_flags
from behaviorlab.cli.training import TrainingFlags, with_training_flags
from behaviorlab.datasets import read_event_log


def _console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, width=120, force_terminal=False), text


def test_figures_are_printed_as_lines_without_a_status() -> None:
    console, text = _console()
    with progress_bar("training", stream=console) as report:
        report(1, 2, {"epoch": 1, "loss": 0.5})
        report(2, 2)
    assert "epoch 1  loss 0.5000" in [line.strip() for line in text.getvalue().splitlines()]  # a line of its own


def test_a_status_shows_the_figures_after_the_bar_instead() -> None:
    console, text = _console()
    with progress_bars(status=lambda info: f"cell {info.get('cell', '-')}", stream=console) as add:
        first, second = add("one", 2, "starting"), add("two", 1)
        first(1, 2, {"cell": "a|b"})
        second(1, 1, {"cell": "c|d"})
    lines = text.getvalue().splitlines()
    assert any("one" in line and "cell a|b" in line for line in lines)  # on the bar's own line
    assert any("two" in line and "1/1" in line and "cell c|d" in line for line in lines)
    assert "cell c|d" not in [line.strip() for line in lines]  # never a line of figures


# ---------------------------------------------------------------- read options on every command

RING = ["wake", "coffee", "commute", "work", "dinner", "sleep"]
SEMICOLON_FLAGS = ["--sep", ";", "--no-header", "--map", "user=0,time=1,action=2"]


def _ring_rows() -> list[tuple[str, str, str]]:
    """40 users walking a ring of 6 actions, one event every 1-3 hours (user, ISO time, action)."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        position, clock = int(rng.integers(6)), datetime(2024, 1, 1, tzinfo=UTC)
        for t in range(12):
            clock += timedelta(hours=int(rng.integers(1, 4)))
            rows.append((f"u{u}", clock.isoformat(), RING[(position + t) % 6]))
    return rows


@pytest.fixture
def two_files(tmp_path) -> tuple[Path, Path]:
    """The same log twice, both named events.csv: a plain CSV with a header, and `;`-separated without one."""
    rows = _ring_rows()
    plain, semicolon = tmp_path / "plain" / "events.csv", tmp_path / "semicolon" / "events.csv"
    for path in (plain, semicolon):
        path.parent.mkdir()
    plain.write_text("user_id,timestamp,action\n" + "".join(f"{u},{t},{a}\n" for u, t, a in rows))
    semicolon.write_text("".join(f"{u};{t};{a}\n" for u, t, a in rows))
    return plain, semicolon


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _convert(data: Path, flags: list[str], out: Path) -> object:
    assert main(["data", "convert", str(data), str(out / "log.parquet"), *flags]) == 0
    return read_event_log(out / "log.parquet").frame.to_dicts()


def _train(data: Path, flags: list[str], out: Path) -> object:
    assert main(["train", "--model", "markov", "--data", str(data), "--out", str(out / "m"), *flags,
                 "--json-out", str(out / "r.json")]) == 0
    return _json(out / "r.json")


def _evaluate(data: Path, flags: list[str], out: Path) -> object:
    # The model is trained on the plain CSV; the flags say how the file under evaluation is read.
    plain = data.parent.parent / "plain" / "events.csv"
    assert main(["train", "--model", "popularity", "--data", str(plain), "--out", str(out / "m")]) == 0
    assert main(["evaluate", str(out / "m"), "--data", str(data), *flags, "--json-out", str(out / "r.json")]) == 0
    return _json(out / "r.json")["test"]


def _ctr(data: Path, flags: list[str], out: Path) -> object:
    assert main(["ctr", "train", "--data", str(data), "--out", str(out / "m"), *flags, "--epochs", "1", "--threads", "1",
                 "--json-out", str(out / "r.json")]) == 0
    return _json(out / "r.json")["valid"]


def _gaps(data: Path, flags: list[str], out: Path) -> object:
    assert main(["timing", "gaps", "--data", str(data), *flags, "--epochs", "1", "--threads", "1",
                 "--json-out", str(out / "r.json")]) == 0
    return _json(out / "r.json")["test"]


def _profiles(data: Path, flags: list[str], out: Path) -> object:
    assert main(["profiles", "sample", "--data", str(data), "--out", str(out / "p.json"), "--n", "5", *flags]) == 0
    return _json(out / "p.json")


def _subsets(data: Path, flags: list[str], out: Path) -> object:
    assert main(["experiment", "--real", str(data), *flags, "--write-subsets", str(out / "s"), "--fractions", "0.5,1",
                 "--seeds", "0"]) == 0
    return {p.name: read_event_log(p).frame.to_dicts() for p in sorted((out / "s").glob("*.parquet"))}


COMMANDS: dict[str, Callable[[Path, list[str], Path], object]] = {
    "data convert": _convert, "train": _train, "evaluate": _evaluate, "ctr train": _ctr, "timing gaps": _gaps,
    "profiles sample": _profiles, "experiment --write-subsets": _subsets}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_semicolon_file_without_header_reads_like_the_plain_csv(command, two_files, tmp_path, capsys) -> None:
    plain, semicolon = two_files
    run = COMMANDS[command]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert run(semicolon, SEMICOLON_FLAGS, tmp_path / "b") == run(plain, [], tmp_path / "a")


def _run_dir(tmp_path: Path, run_writer) -> Path:
    run_writer(tmp_path / "run", np.random.default_rng(0))
    return tmp_path / "run"


# Every command that reads a log, with the log's place in its arguments (LOG) and the arguments it needs besides.
READERS = {
    "data inspect": ["data", "inspect", "LOG"],
    "data convert": ["data", "convert", "LOG", "OUT/log.parquet"],
    "train": ["train", "--model", "markov", "--data", "LOG", "--out", "OUT/m"],
    "evaluate": ["evaluate", "MODEL:popularity", "--data", "LOG"],
    "ctr train": ["ctr", "train", "--data", "LOG", "--out", "OUT/m"],
    "ctr evaluate": ["ctr", "evaluate", "MODEL:ctr", "--data", "LOG"],
    "timing gaps": ["timing", "gaps", "--data", "LOG"],
    "timing hour-bin": ["timing", "hour-bin", "--data", "LOG"],
    "timing daily": ["timing", "daily", "--data", "LOG"],
    "anomaly train": ["anomaly", "train", "--data", "LOG", "--out", "OUT/m"],
    "profiles sample": ["profiles", "sample", "--data", "LOG", "--out", "OUT/p.json"],
    "generate": ["generate", "--data", "LOG", "--out", "OUT/run", "--n-users", "1"],
    "experiment": ["experiment", "--real", "LOG", "--write-subsets", "OUT/s"],
    "evaluate-synthetic": ["evaluate-synthetic", "RUN", "--real", "LOG", "--out", "OUT/e.json"],
    "report": ["report", "RUN", "--real", "LOG", "--out", "OUT/r.html"],
    "demo": ["demo", "--data", "LOG", "--out", "OUT/demo"],
    "serve": ["serve", "--generate-data", "LOG", "--port", "0"],
}


def _model(kind: str, plain: Path, out: Path) -> str:
    """A model trained on the plain CSV, for the commands that score one."""
    train = ["ctr", "train", "--epochs", "1", "--threads", "1"] if kind == "ctr" else ["train", "--model", kind]
    assert main([*train, "--data", str(plain), "--out", str(out / kind)]) == 0
    return str(out / kind)


def _arguments(command: str, log: Path, out: Path, run: Path) -> list[str]:
    plain = log.parent.parent / "plain" / "events.csv"
    return [_model(a.removeprefix("MODEL:"), plain, out) if a.startswith("MODEL:") else
            {"LOG": str(log), "RUN": str(run)}.get(a, a.replace("OUT", str(out))) for a in READERS[command]]


@pytest.mark.parametrize("command", READERS)
def test_a_wrong_separator_is_refused_naming_the_one_the_file_seems_to_use(command, two_files, tmp_path, run_writer,
                                                                            capsys) -> None:
    _, semicolon = two_files
    arguments = _arguments(command, semicolon, tmp_path, _run_dir(tmp_path, run_writer))
    assert main([*arguments, "--sep", ",", "--no-header", "--map", "user=0,time=1,action=2"]) == 3
    err = capsys.readouterr().err
    assert "read with the separator ','" in err and "seems to be separated by ';'" in err and "--sep ';'" in err


@pytest.mark.parametrize("command", ["data inspect", "train", "timing gaps", "profiles sample", "experiment"])
def test_an_unknown_mapping_column_names_it_and_the_columns_there_are(command, two_files, tmp_path, run_writer,
                                                                       capsys) -> None:
    plain, semicolon = two_files
    run = _run_dir(tmp_path, run_writer)
    assert main([*_arguments(command, plain, tmp_path, run), "--map", "user=uid,time=timestamp,action=action"]) == 3
    err = capsys.readouterr().err
    assert "uid" in err and "user_id" in err  # the missing column, and the ones the header has
    assert main([*_arguments(command, semicolon, tmp_path, run), *SEMICOLON_FLAGS[:3], "--map", "user=0,time=1,action=7"]) == 3
    assert "7" in capsys.readouterr().err


def test_bad_read_flags_are_config_errors_before_anything_is_read(two_files, tmp_path, capsys) -> None:
    plain, _ = two_files
    train = ["train", "--model", "markov", "--data", str(plain), "--out", str(tmp_path / "m")]
    assert main([*train, "--sep", "::"]) == 2
    assert "one single-byte character" in capsys.readouterr().err
    assert main([*train, "--format", "cvs"]) == 2
    assert "Unknown format 'cvs'" in capsys.readouterr().err
    assert main([*train, "--format", "sasrec-lines", "--sep", ";"]) == 2  # a format that takes no separator
    assert "separator (--sep)" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert main(["serve", "--sep", ";"]) == 2  # read options without --generate-data would be ignored
    assert "--generate-data" in capsys.readouterr().err


def test_evaluate_reads_the_data_as_training_read_it(two_files, tmp_path, capsys) -> None:
    plain, semicolon = two_files
    assert main(["train", "--model", "markov", "--data", str(semicolon), "--out", str(tmp_path / "m"), *SEMICOLON_FLAGS]) == 0
    saved = _json(tmp_path / "m" / "model.json")["metadata"]["read"]
    assert saved["separator"] == ";" and saved["header"] is False and saved["mapping"]["user"] == "0"
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(semicolon), "--json-out", str(tmp_path / "a.json")]) == 0
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(plain), "--format", "csv",
                 "--json-out", str(tmp_path / "b.json")]) == 0  # given options replace the stored ones
    assert _json(tmp_path / "a.json")["test"] == _json(tmp_path / "b.json")["test"]


def test_a_sequence_lines_file_trains_and_evaluates(tmp_path, capsys) -> None:
    # One user per line, items in time order (5 to 8 of them): each user walks a ring of 5 items, which carry attributes.
    lines = [" ".join([str(u), *(str(10 + (u + t) % 5) for t in range(5 + u % 4))]) for u in range(1, 31)]
    data = tmp_path / "Toy.txt"
    data.write_text("\n".join(lines) + "\n")
    (tmp_path / "Toy_item2attributes.json").write_text(json.dumps({str(10 + i): [f"colour{i % 2}"] for i in range(5)}))
    detected, forced = tmp_path / "detected", tmp_path / "forced"
    assert main(["train", "--model", "markov", "--data", str(data), "--out", str(detected)]) == 0
    assert main(["train", "--model", "markov", "--data", str(data), "--out", str(forced), "--format", "sequence-lines",
                 "--item-attributes", str(tmp_path / "Toy_item2attributes.json")]) == 0
    assert _json(forced / "model.json")["metadata"]["read"]["format"] == "sequence-lines"
    for model in (detected, forced):
        assert main(["evaluate", str(model), "--data", str(data), "--json-out", str(model / "test.json")]) == 0
        test = _json(model / "test.json")["test"]
        assert test["HR@1"] == 1.0 and test["examples"] == 30  # the ring is deterministic


def test_option_groups_stack_each_handing_its_record_to_the_command() -> None:
    seen: list[tuple[int, ReadFlags, TrainingFlags]] = []
    cli = typer.Typer()

    @cli.command()
    @with_training_flags
    @with_read_flags
    def command(count: int = 1, *, read_flags: ReadFlags, training: TrainingFlags) -> None:
        seen.append((count, read_flags, training))

    runner = CliRunner()
    result = runner.invoke(cli, ["--count", "3", "--sep", "semicolon", "--no-header", "--epochs", "4", "--resume"])
    assert result.exit_code == 0, result.output
    assert seen == [(3, ReadFlags(sep="semicolon", no_header=True), TrainingFlags(epochs=4, resume=True))]
    assert seen[0][1].command_line() == " --sep semicolon --no-header"
    assert seen[0][1].options().separator == ";" and seen[0][1].options().header is False
    help_text = runner.invoke(cli, ["--help"]).output
    assert help_text.index("--count") < help_text.index("--sep") < help_text.index("--epochs")
