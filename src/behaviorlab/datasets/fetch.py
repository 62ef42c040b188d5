"""A named dataset on this machine: `fetch` downloads, checks and extracts it into the user data folder;
`resolve_data` turns a `--data` value (a path or a catalog name) into the path a loader reads.

Layout under the data folder ($BEHAVIORLAB_DATA, else the platform's user data folder):
`<name>/` holds the dataset as its loader reads it, `downloads/` the archives it was extracted from
(kept, so a second dataset from the same archive needs no download). A dataset counts as present when
`<name>/behaviorlab-fetch.json` (written last, atomically) lists files that are all there; a present
copy is used as is, without the network. Files saved by hand where an error said to put them are
checked and used like downloads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from behaviorlab.atomic import write_text_atomic
from behaviorlab.datasets.catalog import DatasetEntry, RemoteFile, catalog, get_dataset
from behaviorlab.datasets.download import Verified, download_file
from behaviorlab.datasets.safe_files import extract_zip
from behaviorlab.errors import DataError, DatasetNotAvailableError, UnverifiedFileError
from behaviorlab.progress import ProgressReporter, no_progress

DATA_ENV = "BEHAVIORLAB_DATA"
MANIFEST = "behaviorlab-fetch.json"
DOWNLOADS = "downloads"


def data_root() -> Path:
    """Where named datasets live: $BEHAVIORLAB_DATA, else the platform's user data folder + /datasets."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("behaviorlab")) / "datasets"


@dataclass(frozen=True)
class FetchedDataset:
    """A dataset in place: its folder, the path its loader reads, and each file as checked."""

    entry: DatasetEntry
    folder: Path
    path: Path
    files: tuple[Verified, ...]


def dataset_folder(entry: DatasetEntry, root: Path | None = None) -> Path:
    return (root or data_root()) / entry.name


def local_copy(entry: DatasetEntry, root: Path | None = None) -> Path | None:
    """The path the loader reads when a complete earlier fetch is on disk, else None (nothing is hashed)."""
    folder = dataset_folder(entry, root)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        written = json.loads(manifest.read_text(encoding="utf-8"))["written"]
    except (ValueError, KeyError, TypeError):
        return None  # a damaged record: fetch again, which checks every file
    target = folder / entry.path
    present = target.exists() and all((folder / name).is_file() for name in written)
    return target if present else None


def fetch(entry: DatasetEntry, *, root: Path | None = None, trust_unverified: bool = False,
          progress: ProgressReporter = no_progress) -> FetchedDataset:
    """Bring `entry` onto this machine (what is already there is checked, not downloaded again).

    Every file is tried before an error is raised, so one DatasetNotAvailableError lists each file
    that is missing with its URL and destination, and one UnverifiedFileError each digest to judge.
    """
    root = root or data_root()
    folder = dataset_folder(entry, root)
    missing: list[DatasetNotAvailableError] = []
    unverified: list[UnverifiedFileError] = []
    checked: list[tuple[RemoteFile, Verified]] = []
    for remote in entry.files:
        target = (root / DOWNLOADS if remote.extract else folder) / remote.name
        try:
            checked.append((remote, download_file(remote.url, target, size=remote.size, sha256=remote.sha256,
                                                  accept_unverified=trust_unverified, progress=progress)))
        except DatasetNotAvailableError as exc:
            missing.append(exc)
        except UnverifiedFileError as exc:
            unverified.append(exc)
    if missing:
        raise _combined(DatasetNotAvailableError, f"{len(missing)} of {len(entry.files)} files of {entry.name} could not "
                        "be downloaded", missing, missing[0].hint)
    if unverified:
        raise _combined(UnverifiedFileError, f"{entry.name}: {len(unverified)} downloaded files have no recorded SHA-256 "
                        "to check them against", unverified,
                        f"Compare each digest with one the publisher gives; to use the files anyway, run `behaviorlab data "
                        f"fetch {entry.name} --trust-unverified` (Python: fetch(..., trust_unverified=True)); they are not "
                        "downloaded again.")
    written: list[str] = []
    for remote, verified in checked:
        if remote.extract:
            written += [str(p.relative_to(folder)) for p in extract_zip(verified.path, folder, remote.extract)]
        else:
            written.append(remote.name)
    path = folder / entry.path
    if not path.exists():
        raise DataError(f"{entry.name}: {path} is not in the downloaded files",
                        hint="The catalog entry's path does not match what its files hold; correct the entry.")
    record = {"name": entry.name, "written": written,
              "files": [{"url": r.url, "file": str(v.path), "size": v.size, "sha256": v.sha256, "checked": v.checked}
                        for r, v in checked]}
    write_text_atomic(folder / MANIFEST, json.dumps(record, indent=2) + "\n")  # last: marks the copy complete
    return FetchedDataset(entry, folder, path, tuple(v for _, v in checked))


def _combined(kind: type[DataError], message: str, errors: list[DatasetNotAvailableError] | list[UnverifiedFileError],
              hint: str | None) -> DataError:
    """One error of `kind` holding every file's problem (each names its file and what to do with it)."""
    return kind(message, [problem for error in errors for problem in error.problems], hint=hint)


def resolve_data(source: str | os.PathLike[str], *, root: Path | None = None, trust_unverified: bool = False,
                 progress: ProgressReporter = no_progress) -> Path:
    """The path to load for a `--data` value: an existing path as is; a catalog name its local copy,
    fetched first when absent. Anything else is a DataError naming both readings."""
    path = Path(source)
    if path.exists():
        return path
    entries = catalog()
    name = str(source)
    if name not in entries:
        close = [n for n in entries if n in name or name in n]
        raise DataError(f"{source} is neither an existing path nor a dataset name",
                        hint="Check the path, or use a dataset name: " + ", ".join(close or entries) + " (`behaviorlab data list`).")
    entry = get_dataset(name, entries)
    return local_copy(entry, root) or fetch(entry, root=root, trust_unverified=trust_unverified, progress=progress).path
