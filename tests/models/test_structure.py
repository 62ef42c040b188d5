"""The models package's shape: networks are module-level classes, and importing behaviorlab loads no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import behaviorlab.models

PACKAGE = Path(behaviorlab.models.__file__).parent
SOURCES = Path(behaviorlab.__file__).parent.parent  # src/, so a subprocess imports these sources


def classes_inside_functions(source: str) -> list[str]:
    """'function.Class' for every class statement nested (at any depth) in a function."""
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef) and function is not None:
                found.append(f"{function}.{child.name}")
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            visit(child, inner)

    visit(ast.parse(source), None)
    return found


def test_the_scan_finds_a_class_in_a_function():
    assert classes_inside_functions("def build():\n    class Net:\n        pass\n") == ["build.Net"]
    assert classes_inside_functions("class Net:\n    def f(self):\n        return 1\n") == []


def test_no_class_is_defined_inside_a_function():
    nested = {path.name: found for path in sorted(PACKAGE.glob("*.py"))
              if (found := classes_inside_functions(path.read_text(encoding="utf-8")))}
    assert nested == {}


@pytest.mark.parametrize("command", [["-c", "import behaviorlab, behaviorlab.models, behaviorlab.models.registry"],
                                     ["-m", "behaviorlab", "--help"]])
def test_importing_behaviorlab_and_its_help_load_no_torch(command):
    result = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True,
                            env={"PYTHONPATH": str(SOURCES), "PATH": ""}, timeout=120, check=True)
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "behaviorlab" in imported  # the sources under test were imported
    assert [name for name in imported if name.split(".")[0] == "torch"] == []
