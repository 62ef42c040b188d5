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
