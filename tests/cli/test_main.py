"""The CLI entry point: exit codes and messages for usage errors, and `python -m behaviorlab`."""

from __future__ import annotations

import subprocess
import sys

from behaviorlab.cli import main


def test_unknown_option_is_a_usage_error_not_an_internal_error(capsys):
    code = main(["train", "--no-such-flag", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "No such option: --no-such-flag" in err
    assert "internal error" not in err


def test_missing_argument_is_a_usage_error(capsys):
    code = main(["data", "inspect"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Missing argument" in err


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "behaviorlab", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "train" in result.stdout


def test_error_messages_keep_long_paths_on_one_line_and_show_brackets_literally(tmp_path, capsys):
    # A path longer than any terminal: rich must not break it (users copy it), nor read [x] as markup.
    missing = tmp_path / ("deep-folder-name-" * 8) / "[bold]events.csv"
    code = main(["data", "inspect", str(missing)])
    err = capsys.readouterr().err
    assert code != 0
    assert any(str(missing) in line for line in err.splitlines())


def test_help_shows_toml_section_names_in_brackets(capsys):
    # typer reads help as rich markup: an unescaped [llm] vanished from the text
    assert main(["llm", "try", "--help"]) == 0
    assert "[llm]" in capsys.readouterr().out
    assert main(["experiment", "--help"]) == 0
    assert "[experiment]" in capsys.readouterr().out
