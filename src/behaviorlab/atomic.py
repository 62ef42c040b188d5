"""Atomic file writes: write beside the target, then rename, so no reader sees half a file.

`check_output_path` tells early (before any work) whether a target can be written at all.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from behaviorlab.errors import OutputError

_DEFAULT_MODE = 0o644


def check_output_path(target: str | os.PathLike[str], *, directory: bool = False) -> Path:
    """Raise OutputError unless `target` (a file, or with `directory` a folder) can be created or replaced.

    Nothing is left behind: the deepest existing folder on the way is probed with a temporary file
    (a permission check alone says yes to root on read-only places such as /proc).
    """
    target = Path(target)
    what = "folder" if directory else "file"
    if not directory:
        _refuse_directory(target)
    if target.exists() and directory and not target.is_dir():
        raise OutputError(f"{target} exists and is not a directory", hint="Choose another output folder.")
    parent = target.parent.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"Cannot create the output {what} {target}: {parent} is a file",
                          hint="Choose a path whose folders are folders.")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise OutputError(f"Cannot write the output {what} {target}: {parent} is not writable ({exc.strerror})",
                          hint="Choose a folder you can write to.") from None
    return target


def _refuse_directory(target: Path) -> None:
    if target.is_dir():
        raise OutputError(f"{target} is a directory, not a file", hint="Give a file path, e.g. results.json.")


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces the target.

    On any exception the temporary file is removed and the target is left as it was.
    """
    target = Path(target)
    _refuse_directory(target)  # else the rename would fail only after the whole write
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"Cannot write {target}: {exc.strerror}", hint="Choose a path you can write to.") from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the result the mode a plain open() would (or the old file's).
    os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else _DEFAULT_MODE)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # flush to disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
