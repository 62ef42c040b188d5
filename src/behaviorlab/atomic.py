"""Atomic file writes: write beside the target, then rename, so no reader sees half a file.

`check_output_path` tells early (before any work) whether a target can be written at all;
`exclusive_writer` keeps a second process from writing the same output at the same time.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from behaviorlab.errors import OutputError

_DEFAULT_MODE = 0o644
_HELD: set[Path] = set()  # lock files this process holds (see exclusive_writer)


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


@contextmanager
def exclusive_writer(target: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold the one-writer lock of an output (a run folder, a model folder, a results file) while writing it.

    The lock is an `fcntl.flock` on `.<name>.lock` beside the target (beside, not inside: a model folder
    is replaced whole when it is saved). The kernel drops the lock when its holder exits, kill -9
    included, so a stale file never blocks a later run; the file names the holder's PID for the
    message a second writer gets. Without the lock two processes on one run folder send the same
    paid requests twice and collide on the store.
    """
    target = Path(target).absolute()
    lock_path = target.parent / f".{target.name}.lock"
    if lock_path in _HELD:  # re-entered by the same process (the CLI locks early, the library again): already ours
        yield
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole block
    except OSError as exc:
        raise OutputError(f"Cannot create the lock file {lock_path}: {exc.strerror}",
                          hint="Choose an output in a folder you can write to.") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise OutputError(f"Another behaviorlab process (PID {holder}) is writing {what} {target}",
                              hint="Wait for it to finish or stop it, or choose another output; a second writer "
                                   "would repeat its work and could corrupt the output.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _HELD.add(lock_path)
        try:
            yield
        finally:
            _HELD.discard(lock_path)
            # Emptied, not deleted: unlinking a lock file lets a third process lock a new file of the
            # same name while a second still holds the old one.
            handle.truncate(0)
