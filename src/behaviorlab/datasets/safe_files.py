"""Reading files that could run code, without running it: pickles of numpy arrays, Python dict literals.

A pickle is a program: loading one with `pickle.load` can call any function (e.g. `os.system`). The
unpickler here resolves only the few globals that rebuild numpy arrays and refuses everything else
*before* it is called, so a malicious file fails with UnsafeFileError and does nothing.
`dictionary.py` files are parsed with `ast` and only literal assignments are read; nothing is executed.
"""

from __future__ import annotations

import ast
import codecs
import importlib
import pickle
from pathlib import Path

import numpy as np

from behaviorlab.datasets.files import read_utf8_text, require_file
from behaviorlab.errors import DataError, Problem, UnsafeFileError

# (module, name) -> (module that holds it in this numpy, name). numpy 2 moved numpy.core to numpy._core.
_ARRAY_GLOBALS: dict[tuple[str, str], tuple[str, str]] = {}
for _core in ("numpy.core", "numpy._core"):
    _ARRAY_GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = ("multiarray", "_reconstruct")
    _ARRAY_GLOBALS[(f"{_core}.multiarray", "scalar")] = ("multiarray", "scalar")
    _ARRAY_GLOBALS[(f"{_core}.numeric", "_frombuffer")] = ("numeric", "_frombuffer")
# Protocol-2 pickles carry array bytes as latin-1 text re-encoded by _codecs.encode (a pure function).
_NUMPY_TYPES = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): codecs.encode}


def _numpy_core(submodule: str):
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # numpy < 2
        return importlib.import_module(f"numpy.core.{submodule}")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves only numpy array reconstruction; any other global is refused before it can be called."""

    def __init__(self, handle, path: Path) -> None:
        super().__init__(handle)
        self._path = path

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _NUMPY_TYPES:
            return _NUMPY_TYPES[(module, name)]
        if (module, name) in _ARRAY_GLOBALS:
            submodule, attribute = _ARRAY_GLOBALS[(module, name)]
            return getattr(_numpy_core(submodule), attribute)
        raise UnsafeFileError(
            f"{self._path} is not a plain numpy array pickle: it asks to call {module}.{name}",
            [Problem(f"refused global {module}.{name}")],
            hint="Only pickles of numeric numpy arrays are loaded. Do not open this file with pickle.load; "
                 "get the data from a trusted source.",
        )

    def persistent_load(self, pid: object) -> object:
        raise UnsafeFileError(f"{self._path} uses pickle persistent ids", hint="Only plain numpy array pickles are loaded.")


def load_array_pickle(path: Path) -> np.ndarray:
    """A numeric numpy array from a pickle file, refusing anything that is not array reconstruction."""
    require_file(path, "Pickle file")
    with open(path, "rb") as handle:
        try:
            value = _ArrayOnlyUnpickler(handle, path).load()
        except UnsafeFileError:
            raise
        except Exception as exc:
            raise DataError(f"{path} is not a readable pickle", [Problem(f"{type(exc).__name__}: {exc}")],
                            hint="Check that the file is complete and is a pickled numpy array.") from exc
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        what = f"a {value.dtype} array" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
        raise UnsafeFileError(f"{path} holds {what}, not an integer numpy array",
                              hint="Only pickles of integer id arrays are loaded.")
    return value


def read_literal_assignments(path: Path) -> dict[str, object]:
    """Top-level `name = <literal>` assignments of a Python file, read with ast (never executed).

    Other statements (imports, functions, `if __name__ == ...`) are ignored; an assignment whose
    value is not a literal is reported, because the data it should define cannot be read safely.
    """
    source = read_utf8_text(path, "Python dictionary file")
    values: dict[str, object] = {}
    problems = []
    for node in _parse(path, source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            try:
                values[name] = ast.literal_eval(node.value)
            except ValueError:
                problems.append(Problem(f"'{name}' is not a literal value (it would need code to run)", row=node.lineno))
            except TypeError as exc:  # a literal that Python cannot build, e.g. a list as a dict key
                problems.append(Problem(f"'{name}' is not a valid literal ({exc})", row=node.lineno))
    if problems:
        raise DataError(f"{path}: assignments that are not literals", problems,
                        hint="Write the dictionaries as plain literals; the file is read, never executed.")
    return values


def _parse(path: Path, source: str) -> ast.Module:
    """The syntax tree of `source`, or a DataError saying where it is not Python."""
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        where = f"line {exc.lineno}, column {exc.offset}: " if exc.lineno else ""
        raise DataError(f"{path} is not valid Python", [Problem(f"{where}{exc.msg}")],
                        hint="Fix the file, or use the dictionary.py distributed with the data.") from exc
    except (RecursionError, MemoryError) as exc:
        # CPython's parser gives up on an expression nested some thousands deep (e.g. `- - - ... 1`):
        # RecursionError, or MemoryError when its own stack overflows. No data dictionary looks like that.
        raise DataError(f"{path} is nested too deeply to be parsed as Python",
                        hint="A data dictionary holds plain literals a few levels deep; use the dictionary.py "
                             "distributed with the data.") from exc
