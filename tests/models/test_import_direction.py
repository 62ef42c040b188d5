"""`evaluate` and `cli` import `models`, never the reverse: the estimators stand alone. The modules DESIGN
lists above `models` (metrics, sequences, schema, ...) import none of the packages below them either."""

from __future__ import annotations

import ast
from pathlib import Path

import behaviorlab.models

MODELS = Path(behaviorlab.models.__file__).parent
PACKAGE = MODELS.parent
FORBIDDEN = ("behaviorlab.evaluate", "behaviorlab.cli")
# DESIGN's layers under the foundation modules: metrics.py is where models validate, so it cannot lean on them.
BELOW_THE_FOUNDATION = ("behaviorlab.models", "behaviorlab.evaluate", "behaviorlab.generate", "behaviorlab.serve",
                        "behaviorlab.report", "behaviorlab.cli")
FOUNDATION = ("errors.py", "atomic.py", "schema.py", "sequences.py", "metrics.py", "config.py", "progress.py")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every import anywhere in the module, functions and TYPE_CHECKING blocks included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from behaviorlab import evaluate` imports the package too
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _violations(source: str, forbidden: tuple[str, ...] = FORBIDDEN) -> list[str]:
    return [f"line {line}: {name}" for line, name in _imported_modules(ast.parse(source))
            if any(name == f or name.startswith(f + ".") for f in forbidden)]


def test_no_module_under_models_imports_evaluate_or_cli() -> None:
    files = sorted(MODELS.rglob("*.py"))
    assert len(files) > 10  # the package was found
    problems = {str(path.relative_to(MODELS)): found for path in files if (found := _violations(path.read_text("utf-8")))}
    assert problems == {}


def test_the_check_sees_every_form_of_import() -> None:
    source = """
import behaviorlab.evaluate.metrics
from behaviorlab.cli.common import progress_bar
from behaviorlab import evaluate
def fit():
    from behaviorlab.evaluate.timing import gap_split
from behaviorlab.evaluation_notes import x
from behaviorlab.metrics import mae
"""
    assert _violations(source) == ["line 2: behaviorlab.evaluate.metrics", "line 3: behaviorlab.cli.common.progress_bar",
                                   "line 4: behaviorlab.evaluate", "line 6: behaviorlab.evaluate.timing.gap_split"]


def test_the_foundation_modules_import_no_package_below_them() -> None:
    problems = {name: found for name in FOUNDATION
                if (found := _violations((PACKAGE / name).read_text("utf-8"), BELOW_THE_FOUNDATION))}
    assert problems == {}
