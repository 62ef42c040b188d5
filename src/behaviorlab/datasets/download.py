"""One file over HTTP(S): resumable, checked, and moved into place only when whole and correct.

Bytes arrive in `<target>.part`. A later call finds the part and asks the server for the rest with an
HTTP Range request (a server that ignores Range answers 200 and the file starts over). When the part
is complete it is checked against the expected size and SHA-256, whichever are known; a mismatch
removes it (ChecksumError), a match renames it to `target` atomically. A target already present is
checked the same way and used as is, so a file saved there by hand (no network) is accepted once it
matches. Failures to reach the server, HTTP errors and dropped connections raise
DatasetNotAvailableError naming the URL and the exact path the file belongs at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from behaviorlab.datasets.files import file_sha256
from behaviorlab.errors import ChecksumError, DatasetNotAvailableError, Problem
from behaviorlab.progress import ProgressReporter, no_progress

PART_SUFFIX = ".part"
_CHUNK = 1 << 16  # bytes per network read: progress updates often, memory stays flat
Checked = Literal["sha256", "size", "nothing"]


@dataclass(frozen=True)
class Verified:
    """What a file was checked against, and its digest (computed here, so an unknown one can be recorded)."""

    path: Path
    size: int
    sha256: str
    checked: Checked


def verify_file(path: Path, size: int | None, sha256: str | None) -> Verified:
    """Check `path` against the known size and digest; on a mismatch it is removed and ChecksumError raised."""
    actual_size = path.stat().st_size
    actual = file_sha256(path)
    problems = []
    if size is not None and actual_size != size:
        problems.append(Problem(f"size {actual_size:,} bytes, expected {size:,}"))
    if sha256 is not None and actual != sha256:
        problems.append(Problem(f"SHA-256 {actual}, expected {sha256}"))
    if problems:
        path.unlink()
        raise ChecksumError(f"{path.name} is not the expected file; it has been removed", problems,
                            hint="Run the same command again to download it afresh. If it fails again, the publisher "
                                 "may have changed the file: check the dataset's page before using another copy.")
    checked: Checked = "sha256" if sha256 is not None else "size" if size is not None else "nothing"
    return Verified(path, actual_size, actual, checked)


def download_file(url: str, target: Path, *, size: int | None = None, sha256: str | None = None,
                  progress: ProgressReporter = no_progress, timeout: float = 30.0) -> Verified:
    """`target`, checked; downloaded from `url` (resuming a `.part` left by an earlier try) unless present."""
    if target.is_file():
        return verify_file(target, size, sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    _receive(url, part, target, size, progress, timeout)
    verified = verify_file(part, size, sha256)
    os.replace(part, target)  # same folder: atomic, so `target` only ever holds a checked file
    return Verified(target, verified.size, verified.sha256, verified.checked)


def _receive(url: str, part: Path, target: Path, size: int | None, progress: ProgressReporter, timeout: float) -> None:
    """Append the rest of `url` to `part`, or start it over when the server sends the whole file."""
    import httpx  # imported here: `behaviorlab --help` and plain loading never pay for it

    offset = part.stat().st_size if part.is_file() else 0
    if size is not None and offset == size:
        return  # an earlier run received every byte and stopped before the check
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    received = offset
    try:
        with httpx.stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as response:
            if response.status_code == 416 and offset:  # nothing after `offset`: the part is already whole
                return
            if response.status_code not in (200, 206):
                raise _unavailable(url, target, f"the server answered HTTP {response.status_code} {response.reason_phrase}")
            resumed = response.status_code == 206
            if resumed and _range_start(response.headers.get("content-range")) != offset:
                part.unlink(missing_ok=True)  # bytes from elsewhere in the file cannot be appended
                raise _unavailable(url, target, f"asked for bytes {offset:,}- the server sent "
                                                f"{response.headers.get('content-range')!r}; the partial file was dropped")
            received = offset if resumed else 0
            length = response.headers.get("content-length")
            total = received + int(length) if length and length.isdigit() else size or 0
            with open(part, "ab" if resumed else "wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    progress(received, max(total, received), {"file": target.name})
                out.flush()
                os.fsync(out.fileno())
            if length and length.isdigit() and received < total:  # httpx notices most, not all, short bodies
                raise httpx.RemoteProtocolError(f"the body ended after {received:,} of {total:,} bytes")
    except httpx.HTTPError as exc:
        if received > 0:
            raise DatasetNotAvailableError(
                f"The download of {url} stopped after {received:,} bytes ({type(exc).__name__}: {exc})",
                hint=f"The bytes received are kept in {part}; run the same command again to resume from there.",
            ) from exc
        raise _unavailable(url, target, f"{type(exc).__name__}: {exc}") from exc


def _range_start(content_range: str | None) -> int | None:
    """The first byte of a `Content-Range: bytes START-END/TOTAL` header, or None when there is none."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    start = content_range[6:].split("-", 1)[0]
    return int(start) if start.isdigit() else None


def _unavailable(url: str, target: Path, reason: str) -> DatasetNotAvailableError:
    return DatasetNotAvailableError(
        f"Could not download {url}: {reason}",
        hint=f"Download {url} another way (a browser, another machine) and save it as {target}; then run the same "
             "command again: the file is checked and used from there.",
    )
