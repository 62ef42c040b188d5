"""The README's Python API example runs as written (on a tiny SmartThings-style folder instead of FR)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tests.conftest import write_tiny_real

README = Path(__file__).resolve().parents[1] / "README.md"
DATASET = '"../shared/datasets/smartthings-fr"'


def _python_api_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the Python API section holds one python code block"
    return blocks[0]


def test_the_python_api_example_runs(tmp_path, capsys) -> None:
    code = _python_api_example()
    assert DATASET in code
    real = tmp_path / "real"
    write_tiny_real(real, np.random.default_rng(0))
    exec(compile(code.replace(DATASET, repr(str(real))), str(README), "exec"), {})  # noqa: S102 - the README is ours
    printed = capsys.readouterr().out
    assert "NDCG@10" in printed and "accuracy" in printed  # the ranking report and the hour-bin table
    assert "none real_only" in printed and "markov pretrain_augment" in printed  # the experiment's rows
