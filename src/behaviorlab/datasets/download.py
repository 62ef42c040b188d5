"""One file over HTTP(S): resumable, checked, and moved into place only when whole and correct.

Bytes arrive in `<target>.part`. A later call finds the part and asks the server for the rest with an
HTTP Range request, If-Range the version the part came from (a server that ignores Range, or whose
file changed since, answers 200 and the file starts over). When the part
is complete it is checked against the expected size and SHA-256; a mismatch removes it
(ChecksumError), a match renames it to `target` atomically. A file with no recorded SHA-256 cannot be
checked: it is kept as `<target>.unverified` (UnverifiedFileError, with the digest it has) until the
caller accepts it, and then renamed to `target` without a second download.

A target already present is checked the same way and used as is, so a file saved there by hand (no
network) is accepted once it matches. Failures to reach the server, HTTP errors and dropped
connections raise DatasetNotAvailableError naming the URL and the exact path the file belongs at.
One process at a time downloads a file (the `.<name>.lock` of atomic.exclusive_writer beside it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from behaviorlab.atomic import exclusive_writer
from behaviorlab.datasets.files import file_sha256
from behaviorlab.errors import ChecksumError, DatasetNotAvailableError, OutputError, Problem, UnverifiedFileError
from behaviorlab.progress import ProgressReporter, no_progress

if TYPE_CHECKING:
    import httpx

PART_SUFFIX = ".part"
UNVERIFIED_SUFFIX = ".unverified"
VALIDATOR_SUFFIX = ".validator"
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
                  accept_unverified: bool = False, progress: ProgressReporter = no_progress,
                  timeout: float = 30.0) -> Verified:
    """`target`, checked; downloaded from `url` (resuming a `.part` left by an earlier try) unless present.

    Without a recorded `sha256` the file is accepted only with `accept_unverified`; otherwise it waits
    as `<target>.unverified` and UnverifiedFileError reports the digest it has.
    """
    if target.is_file():
        return verify_file(target, size, sha256)
    aside = target.with_name(target.name + UNVERIFIED_SUFFIX)
    if sha256 is None and aside.is_file():  # received by an earlier run, waiting to be trusted
        return _settle_unverified(aside, target, size, accept_unverified)
    part = target.with_name(target.name + PART_SUFFIX)
    with exclusive_writer(target, "the download"):  # two processes appending to one part would corrupt it
        if target.is_file():  # another process finished it between the check above and taking the lock
            return verify_file(target, size, sha256)
        _receive(url, part, target, size, progress, timeout)
        if sha256 is None:
            os.replace(part, aside)
            return _settle_unverified(aside, target, size, accept_unverified)
        verified = verify_file(part, size, sha256)
        os.replace(part, target)  # same folder: atomic, so `target` only ever holds a checked file
    return Verified(target, verified.size, verified.sha256, verified.checked)


def _settle_unverified(aside: Path, target: Path, size: int | None, accept: bool) -> Verified:
    """Rename a digest-less download to `target` when accepted; else refuse it, naming its digest."""
    verified = verify_file(aside, size, None)
    if not accept:
        raise UnverifiedFileError(
            f"No SHA-256 is recorded for {target.name}, so the download cannot be checked",
            [Problem(f"{target.name} has {verified.size:,} bytes and SHA-256 {verified.sha256} (kept as {aside})")],
            hint="Compare the digest with one its publisher gives; to use the file anyway, run the same command "
                 "again with --trust-unverified (Python: trust_unverified=True).")
    os.replace(aside, target)
    return Verified(target, verified.size, verified.sha256, verified.checked)


def _receive(url: str, part: Path, target: Path, size: int | None, progress: ProgressReporter, timeout: float) -> None:
    """Append the rest of `url` to `part`, or start it over when the server sends the whole file.

    The version a part came from (its ETag or Last-Modified) is kept in `<part>.validator` and sent as
    If-Range, so a file changed on the server since is sent whole instead of appended to old bytes.
    """
    import httpx  # imported here: `behaviorlab --help` and plain loading never pay for it

    validator = part.with_name(part.name + VALIDATOR_SUFFIX)
    offset = part.stat().st_size if part.is_file() else 0
    if size is not None and offset >= size:
        return  # an earlier run received every byte (or more: the check refuses those) and stopped before the check
    # identity: Range offsets count the bytes as stored, which a compressed transfer would not keep
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator.is_file():
            headers["If-Range"] = validator.read_text(encoding="utf-8")
    try:
        with httpx.stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as response:
            if response.status_code == 416 and offset:  # nothing after `offset`: whole, unless the file shrank
                stale = _range_total(response.headers.get("content-range")) not in (offset, None)
            else:
                stale = False
                _append(response, url, part, target, offset, size, progress)
    except httpx.HTTPError as exc:
        raise _unavailable(url, target, part, f"{type(exc).__name__}: {exc}") from exc
    except OSError as exc:  # the disk, not the network: a full or read-only data folder
        raise OutputError(f"Cannot write {part}: {exc.strerror or exc}",
                          hint="Free some space or point BEHAVIORLAB_DATA at another folder; the bytes already "
                               "received are kept and the next run resumes from them.") from exc
    if stale:  # longer than the file on the server, so not a prefix of it: start over
        part.unlink()
        _receive(url, part, target, size, progress, timeout)
        return
    validator.unlink(missing_ok=True)  # the body is whole: nothing left to resume


def _append(response: httpx.Response, url: str, part: Path, target: Path, offset: int, size: int | None,
            progress: ProgressReporter) -> None:
    """Write a 200 (from the start) or 206 (from `offset`) body into `part`; a short body raises."""
    import httpx

    if response.status_code not in (200, 206):
        raise _unavailable(url, target, part, f"the server answered HTTP {response.status_code} {response.reason_phrase}")
    resumed = response.status_code == 206
    if resumed and _range_start(response.headers.get("content-range")) != offset:
        part.unlink(missing_ok=True)  # bytes from elsewhere in the file cannot be appended
        raise _unavailable(url, target, part, f"asked for bytes {offset:,}- the server sent "
                                              f"{response.headers.get('content-range')!r}; the partial file was dropped")
    validator = part.with_name(part.name + VALIDATOR_SUFFIX)
    if not resumed:  # a new start: remember which version of the file these bytes belong to
        version = _version(response.headers)
        if version:
            validator.write_text(version, encoding="utf-8")
        else:
            validator.unlink(missing_ok=True)
    received = offset if resumed else 0
    length = response.headers.get("content-length")
    total = received + int(length) if length and length.isdigit() else size or 0
    with open(part, "ab" if resumed else "wb") as out:
        for chunk in response.iter_raw():  # unbuffered: the bytes before a dropped connection are all kept
            out.write(chunk)
            received += len(chunk)
            progress(received, max(total, received), {"file": target.name})
        out.flush()
        os.fsync(out.fileno())
    if length and length.isdigit() and received < total:  # httpx notices most, not all, short bodies
        raise httpx.RemoteProtocolError(f"the body ended after {received:,} of {total:,} bytes")


def _version(headers: Mapping[str, str]) -> str | None:
    """A validator If-Range accepts: a strong ETag, else Last-Modified (weak ETags are not allowed there)."""
    etag = headers.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("last-modified")


def _range_total(content_range: str | None) -> int | None:
    """TOTAL of a `Content-Range: bytes */TOTAL` (or START-END/TOTAL) header, or None when unknown."""
    total = (content_range or "").rpartition("/")[2]
    return int(total) if total.isdigit() else None


def _range_start(content_range: str | None) -> int | None:
    """The first byte of a `Content-Range: bytes START-END/TOTAL` header, or None when there is none."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    start = content_range[6:].split("-", 1)[0]
    return int(start) if start.isdigit() else None


def _unavailable(url: str, target: Path, part: Path, reason: str) -> DatasetNotAvailableError:
    """The error for a file that did not arrive: what happened, and exactly what to put where."""
    kept = part.stat().st_size if part.is_file() else 0
    resume = f" ({kept:,} bytes received so far are kept in {part}: running again resumes from there)" if kept else ""
    return DatasetNotAvailableError(
        f"Could not download {url}: {reason}",
        [Problem(f"{reason}: download {url} and save it as {target}{resume}")],
        hint="Run the same command again when the server can be reached; or download the file another way (a browser, "
             "another machine) and save it at that path: it is checked and used from there.",
    )
