"""Reading files that could run code or write outside their place, without letting them: pickles of numpy
arrays, Python dict literals, zip archives.

A pickle is a program: loading one with `pickle.load` can call any function (e.g. `os.system`). The
unpickler here resolves only the few globals that rebuild numpy arrays and refuses everything else
*before* it is called, so a malicious file fails with UnsafeFileError and does nothing.
`dictionary.py` files are parsed with `ast` and only literal assignments are read; nothing is executed.
A zip member named `../../.bashrc`, `/etc/x` or stored as a symbolic link would land outside the folder
it is extracted into; `extract_zip` checks every member's name before it writes any.
"""

from __future__ import annotations

import ast
import codecs
import importlib
import pickle
import shutil
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

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


def extract_zip(archive: Path, folder: Path, wanted: Sequence[str] = ("",)) -> list[Path]:
    """Extract the members of `archive` named in `wanted` into `folder`; the paths written, in archive order.

    A wanted name is a member's path, or a folder prefix ending in "/" ("" wants everything). Every
    unsafe member name is reported at once (UnsafeFileError) and nothing is written; a wanted name
    the archive lacks is a DataError listing what it holds. zipfile itself stops each member at its
    declared size and checks its CRC, so a damaged archive fails here rather than later in a loader.
    """
    try:
        with zipfile.ZipFile(archive) as handle:
            members = [info for info in handle.infolist() if not info.is_dir()]
            chosen = [info for info in members if any(_wants(name, info.filename) for name in wanted)]
            problems = [problem for info in chosen if (problem := _unsafe_member(info)) is not None]
            if problems:
                raise UnsafeFileError(f"{archive} has members that would be written outside the folder", problems,
                                      hint="Do not extract this archive; get it again from the dataset's official address.")
            missing = [name for name in wanted if not any(_wants(name, info.filename) for info in members)]
            if missing:
                listed = ", ".join(info.filename for info in members[:10]) + (" ..." if len(members) > 10 else "")
                raise DataError(f"{archive} lacks {', '.join(missing)}", [Problem(f"it holds: {listed or 'nothing'}")],
                                hint="The archive is not the expected release; get it again from the official address.")
            written = []
            for info in chosen:
                target = folder.joinpath(*PurePosixPath(info.filename).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with handle.open(info) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                written.append(target)
            return written
    except (zipfile.BadZipFile, EOFError) as exc:  # not a zip, cut short, or a CRC mismatch
        raise DataError(f"{archive} is not a complete zip archive", [Problem(f"{type(exc).__name__}: {exc}")],
                        hint="The download is damaged; delete it and fetch again.") from exc


def _wants(name: str, member: str) -> bool:
    return member == name or ((name == "" or name.endswith("/")) and member.startswith(name))


def _unsafe_member(info: zipfile.ZipInfo) -> Problem | None:
    """Why a member could land outside the extraction folder, or None when its name is a plain relative path."""
    name = info.filename
    path = PurePosixPath(name)
    if "\\" in name:  # a Windows separator: on Windows '..\\x' climbs out
        return Problem(f"{name!r} uses backslashes as folder separators")
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        return Problem(f"{name!r} is an absolute path")
    if ".." in path.parts:
        return Problem(f"{name!r} climbs out of the folder with '..'")
    if stat.S_ISLNK(info.external_attr >> 16):  # the Unix mode sits in the high 16 bits
        return Problem(f"{name!r} is a symbolic link")
    return None
