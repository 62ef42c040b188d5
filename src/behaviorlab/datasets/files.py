"""Small file helpers shared by the loaders: existence checks, first lines, whitespace tables."""

from __future__ import annotations

from pathlib import Path

from behaviorlab.errors import DataError, Problem


def require_file(path: Path, what: str) -> Path:
    """The path if it is a non-empty file; otherwise a DataError saying what was expected."""
    if not path.is_file():
        raise DataError(f"{what} not found: {path}", hint="Check the path; `behaviorlab data formats` lists the expected files.")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty", hint="The file has no data; re-export or re-download it.")
    return path


def first_line(path: Path) -> str:
    """The first line of a text file ('' when unreadable), for format sniffing."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.readline().rstrip("\r\n")
    except OSError:
        return ""


def read_id_names(path: Path) -> dict[int, str]:
    """'<int id> <name ...>' per line (Kasteren *_names files); every bad line is reported."""
    names: dict[int, str] = {}
    problems = []
    for number, line in enumerate(require_file(path, "Names file").read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        key, _, name = line.strip().partition(" ") if "\t" not in line else line.strip().partition("\t")
        if not key.isdigit() or not name.strip():
            problems.append(Problem(f"expected '<id> <name>', got {line.strip()!r}", row=number))
        else:
            names[int(key)] = name.strip()
    if problems:
        raise DataError(f"{path}: unreadable lines", problems, hint="Each line must be an integer id, a tab, and a name.")
    return names


def read_int_rows(path: Path, width: int) -> list[tuple[int, ...]]:
    """Whitespace-separated integer rows of exactly `width` fields (Kasteren sensors/activities)."""
    rows: list[tuple[int, ...]] = []
    problems = []
    for number, line in enumerate(require_file(path, "Data file").read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != width or not all(f.lstrip("-").isdigit() for f in fields):
            problems.append(Problem(f"expected {width} integers, got {line.strip()!r}", row=number))
        else:
            rows.append(tuple(int(f) for f in fields))
    if problems:
        raise DataError(f"{path}: unreadable lines", problems, hint=f"Each line must hold {width} whole numbers separated by tabs.")
    if not rows:
        raise DataError(f"{path} has no rows", hint="The file has no data; re-export it.")
    return rows
