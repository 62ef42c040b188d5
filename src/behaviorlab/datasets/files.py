"""Small file helpers shared by the loaders: existence and type checks, text encoding, first lines,
repeated column names, whitespace tables, SHA-256 digests."""

from __future__ import annotations

import codecs
import hashlib
import stat
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from behaviorlab.config import conversion_command, guess_encoding
from behaviorlab.errors import DataError, Problem

# The start of a text file checked up front (what a UTF-16 file or an early Latin-1 byte shows in); the rest
# is strictly decoded by the readers, and a failure there is located by find_not_utf8.
TEXT_HEAD_BYTES = 64 << 10
_CHUNK = 4 << 20  # bytes decoded at a time when looking for the first byte that is not UTF-8
_SAMPLE = 64 << 10  # bytes after that one that the encoding is guessed from


def refuse_special_file(path: Path) -> None:
    """A DataError for a path that exists but is neither a regular file nor a folder (a FIFO, socket or
    device), raised before anything opens it: opening a FIFO blocks until another program writes to it."""
    if not path.exists() or path.is_file() or path.is_dir():
        return
    mode = path.stat().st_mode
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    raise DataError(f"{path} is not a regular file or folder: it is {kind}",
                    hint="Save the data to a file first (e.g. cat PIPE > events.csv) and load that file.")


def require_file(path: Path, what: str) -> Path:
    """The path if it is a non-empty regular file; otherwise a DataError saying what was expected."""
    refuse_special_file(path)
    if path.is_dir():
        raise DataError(f"{what} expected, but {path} is a folder", hint="Point at the file, or at the folder without --format.")
    if not path.is_file():
        raise DataError(f"{what} not found: {path}", hint="Check the path; `behaviorlab data formats` lists the expected files.")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty", hint="The file has no data; re-export or re-download it.")
    return path


def require_utf8_head(path: Path) -> bytes:
    """The first TEXT_HEAD_BYTES of a text file, after checking that they are UTF-8 text."""
    with open(path, "rb") as handle:
        head = handle.read(TEXT_HEAD_BYTES)
    _check_utf8(path, head, complete=len(head) < TEXT_HEAD_BYTES)
    return head


def read_utf8_text(path: Path, what: str) -> str:
    """The whole text of a small UTF-8 file, e.g. a dictionary.py; a DataError naming the encoding otherwise."""
    data = require_file(path, what).read_bytes()
    _check_utf8(path, data, complete=True)
    return data.decode("utf-8")


def _check_utf8(path: Path, data: bytes, complete: bool) -> None:
    """A DataError when `data`, the start of `path` (or all of it when `complete`), is not UTF-8 text.

    UTF-16 is told by its byte-order mark or, without one, by its NUL bytes (ASCII text in UTF-16 is
    valid UTF-8 with a NUL in every other byte, which a reader would take for garbled column names).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\0" in data:
        raise _not_utf8(path, data[:_SAMPLE])
    offset, _ = _utf8_error(data, complete)
    if offset is not None:
        with open(path, "rb") as handle:
            raise _not_utf8(path, data[offset:offset + _SAMPLE], _line_and_column(handle, offset))


def find_not_utf8(path: Path) -> DataError | None:
    """The DataError naming the first byte of `path` that is not UTF-8 and the encoding the file seems to be
    in, or None when it is all UTF-8. One read of the file: for explaining a failed read, not for every load."""
    with open(path, "rb") as handle:
        checked = 0
        while chunk := handle.read(_CHUNK):
            offset, length = _utf8_error(chunk, complete=len(chunk) < _CHUNK)
            if offset is not None:
                return _not_utf8(path, chunk[offset:offset + _SAMPLE], _line_and_column(handle, checked + offset))
            checked += length
            handle.seek(checked)  # a character cut by the chunk's end is read again with the next chunk
    return None


def _utf8_error(data: bytes, complete: bool) -> tuple[int | None, int]:
    """(offset of the first byte that is not UTF-8, or None; how many bytes were checked). When `data` is
    only a part of the text, a character cut by its end is not an error: it is left for the next part."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and not complete:
            return None, exc.start
        return exc.start, exc.start
    return None, len(data)


def _line_and_column(handle: BinaryIO, offset: int) -> tuple[int, int]:
    """The 1-based line and byte column of file offset `offset`, counted from the start of the file."""
    handle.seek(0)
    line, line_start, position = 1, 0, 0
    while position < offset:
        chunk = handle.read(min(_CHUNK, offset - position))
        line += chunk.count(b"\n")
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            line_start = position + newline + 1
        position += len(chunk)
    return line, offset - line_start + 1


def _not_utf8(path: Path, sample: bytes, where: tuple[int, int] | None = None) -> DataError:
    name, description = guess_encoding(sample)
    located = f", judging by byte 0x{sample[0]:02X} at line {where[0]}, column {where[1]}" if where else ""
    return DataError(f"{path} is not UTF-8 text: it looks like {description}{located}",
                     hint=f"{conversion_command(path, name)}, and load the result.")


def refuse_repeated_names(path: Path, names: Sequence[str], where: str = "the header") -> None:
    """A DataError when a column name occurs twice: which copy holds the data cannot be guessed."""
    counts = Counter(names)
    repeated = [name for name in dict.fromkeys(names) if counts[name] > 1]
    if repeated:
        listed = ", ".join(repr(name) for name in repeated)
        raise DataError(f"{path}: {where} repeats the column{'s' if len(repeated) > 1 else ''} {listed}",
                        hint="Rename or drop the repeated columns; the file cannot be read until each name is used once.")


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of a file, read in chunks (a gigabyte never sits in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def first_line(path: Path) -> str:
    """The first line of a regular text file ('' when there is none or it is unreadable), for format
    sniffing; a FIFO or device is never opened."""
    if not path.is_file():
        return ""
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
