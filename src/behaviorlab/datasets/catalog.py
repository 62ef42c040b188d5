"""Public datasets by name: where each is published, what it weighs, its digest, its terms, its loader.

`behaviorlab data fetch NAME` and `resolve_data(NAME)` read these records. A digest is recorded only
when it was checked against a byte-identical copy of the published file (`digest_source` says how);
a file without one is downloaded but refused until the user trusts it (see datasets/download.py).
More entries can be added without editing behaviorlab: a TOML file named by $BEHAVIORLAB_CATALOG
holds `[[dataset]]` tables with the same keys (a lab's own mirror or an internal log).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path, PurePosixPath

from pydantic import field_validator

from behaviorlab.config import StrictConfig, load_config
from behaviorlab.errors import ConfigError, DataError

CATALOG_ENV = "BEHAVIORLAB_CATALOG"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _relative(value: str, what: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f"{what} {value!r} must be a relative path inside the dataset folder")
    return value


class RemoteFile(StrictConfig):
    """One published file. An archive (`extract` not empty) is kept under downloads/ and the named members
    (paths, or folder prefixes ending in '/') are extracted into the dataset folder; any other file is
    saved in the dataset folder under `name`."""

    url: str
    name: str
    size: int | None = None
    sha256: str | None = None
    digest_source: str = ""
    extract: tuple[str, ...] = ()

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"url {value!r} must start with http:// or https://")
        return value

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise ValueError(f"name {value!r} must be a plain file name")
        return value

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value):
            raise ValueError(f"sha256 {value!r} must be 64 lowercase hex digits")
        return value

    @field_validator("extract")
    @classmethod
    def _members(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_relative(member, "extract member") for member in value)


class DatasetEntry(StrictConfig):
    """A named dataset: its files, and which format reads which path of its folder once they are in place."""

    name: str
    description: str
    format: str
    path: str = "."
    files: tuple[RemoteFile, ...]
    license: str
    citation: str
    homepage: str = ""

    @field_validator("name")
    @classmethod
    def _token(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", value):
            raise ValueError(f"name {value!r} must be lowercase letters, digits, '.', '_' or '-'")
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from behaviorlab.datasets.registry import format_names  # the loaders' registry, one import away

        if value not in format_names():
            raise ValueError(f"format {value!r} is not one of {', '.join(format_names())}")
        return value

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _relative(value, "path")

    @property
    def size(self) -> int | None:
        """Bytes to download, when every file's size is known."""
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(s for s in sizes if s is not None)

    @property
    def verified(self) -> bool:
        """Whether every file has a recorded SHA-256 (else fetching needs trust_unverified)."""
        return all(f.sha256 is not None for f in self.files)


class CatalogFile(StrictConfig):
    """The TOML file named by $BEHAVIORLAB_CATALOG: `[[dataset]]` tables."""

    dataset: tuple[DatasetEntry, ...] = ()


_S3REC = "https://raw.githubusercontent.com/aHuiWang/CIKM2020-S3Rec/master/data"
_SMARTGUARD = "https://raw.githubusercontent.com/xjywhu/SmartGuard"
_SMARTGUARD_NOTE = "none published; SmartGuard's repository pins no digests"
# The tab-separated layout the kasteren loader reads is published by the TL project (converted from the Matlab
# archive on T. van Kasteren's site); its default branch (HEAD), since no commit of it is known to hold every file.
_KASTEREN = "https://raw.githubusercontent.com/agnesvanbelle/TL/HEAD/source-code/our_project/data_src/data"
_TSMC_ZIP = "http://www-public.imtbs-tsp.eu/~zhang_da/pub/dataset_tsmc2014.zip"
_TSMC_CITATION = ("Dingqi Yang, Daqing Zhang, Vincent W. Zheng, Zhiyong Yu. Modeling User Activity Preference by "
                  "Leveraging User Spatial Temporal Characteristics in LBSNs. IEEE Trans. on Systems, Man, and "
                  "Cybernetics: Systems 45(1), 2015.")
_TSMC_LICENSE = "Research use; cite the paper (terms on the dataset's page)."


def _tsmc(city: str, label: str) -> DatasetEntry:
    member = f"dataset_tsmc2014/dataset_TSMC2014_{city}.txt"
    return DatasetEntry(
        name=f"foursquare-{city.lower()}", format="foursquare", path=member,
        description=f"Foursquare check-ins in {label}, 2012-04 to 2013-02 (TSMC 2014 release, original tab-separated file)",
        files=(RemoteFile(url=_TSMC_ZIP, name="dataset_tsmc2014.zip", extract=(member,),
                          digest_source="none published by the authors"),),
        license=_TSMC_LICENSE, citation=_TSMC_CITATION,
        homepage="https://sites.google.com/site/yangdingqi/home/foursquare-dataset")


BUILTIN: tuple[DatasetEntry, ...] = (
    DatasetEntry(
        name="ml-100k", format="movielens", path="ml-100k",
        description="MovieLens 100K: 100,000 ratings of 1,682 movies by 943 users, 1997-09 to 1998-04 (raw u.data layout)",
        files=(RemoteFile(url="https://files.grouplens.org/datasets/movielens/ml-100k.zip", name="ml-100k.zip",
                          size=4_924_029, sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                          digest_source="the checksum tensorflow/datasets and others record for the GroupLens file",
                          extract=("ml-100k/",)),),
        license="GroupLens terms: research use only, no redistribution without permission, cite the paper.",
        citation="F. Maxwell Harper and Joseph A. Konstan. The MovieLens Datasets: History and Context. ACM TiiS 5(4), 2015.",
        homepage="https://grouplens.org/datasets/movielens/100k/"),
    DatasetEntry(
        name="amazon-beauty", format="sequence-lines", path="Beauty.txt",
        description="Amazon Beauty in the S3-Rec layout: 22,363 users, 12,101 items, 198,502 interactions in time order, "
                    "with item attributes",
        files=(RemoteFile(url=f"{_S3REC}/Beauty.txt", name="Beauty.txt", size=1_090_094,
                          sha256="226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
                          digest_source="computed from a copy of the published file"),
               RemoteFile(url=f"{_S3REC}/Beauty_item2attributes.json", name="Beauty_item2attributes.json", size=305_674,
                          sha256="129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4",
                          digest_source="computed from a copy of the published file")),
        license="Amazon review data (McAuley et al.): research use; cite the papers.",
        citation="Kun Zhou et al. S3-Rec: Self-Supervised Learning for Sequential Recommendation with Mutual Information "
                 "Maximization. CIKM 2020. Julian McAuley et al. Image-based Recommendations on Styles and Substitutes. SIGIR 2015.",
        homepage="https://github.com/aHuiWang/CIKM2020-S3Rec"),
    DatasetEntry(
        name="smartthings-fr", format="smartthings-pickle",
        description="SmartThings device-control logs from France as SmartGuard distributes them: 10-event sequences, "
                    "train/valid/test pickles and dictionary.py",
        files=tuple(RemoteFile(url=f"{_SMARTGUARD}/{commit}/data/data/fr/{name}", name=name, digest_source=_SMARTGUARD_NOTE)
                    for commit, name in (("b9205de497330aa7a83287d498957e92568c6c72", "dictionary.py"),
                                         ("b9205de497330aa7a83287d498957e92568c6c72", "trn_instance_10.pkl"),
                                         ("f1d013143369367b4a1fc03d4bf1cffb9d2eaba8", "vld_instance_10.pkl"),
                                         ("f1d013143369367b4a1fc03d4bf1cffb9d2eaba8", "test_instance_10.pkl"))),
        license="Research data; cite the papers.",
        citation="Hyunsik Jeon et al. Accurate Action Recommendation for Smart Home via Two-Level Encoders and Commonsense "
                 "Knowledge (SmartSense). CIKM 2022. Jingyu Xiao et al. Make Your Home Safe: Time-aware Unsupervised User "
                 "Behavior Anomaly Detection in Smart Homes via Loss-guided Mask (SmartGuard). KDD 2024.",
        homepage="https://github.com/xjywhu/SmartGuard"),
    _tsmc("NYC", "New York City"),
    _tsmc("TKY", "Tokyo"),
    DatasetEntry(
        name="kasteren", format="kasteren",
        description="van Kasteren et al.'s home sensor firings with annotated activities, houses A, B and C, in the "
                    "TL project's tab-separated layout (house C's two 'use-toilet' labels merged into one)",
        files=tuple(RemoteFile(url=f"{_KASTEREN}/house{house}.{part}", name=f"house{house}.{part}",
                               digest_source="none published; the TL repository pins no digests")
                    for house in "ABC" for part in ("sensors", "activities", "sensor_names", "activity_names")),
        license="Research data; cite the papers. The original Matlab archives are on https://sites.google.com/site/tim0306/.",
        citation="T.L.M. van Kasteren, A. Noulas, G. Englebienne and B. Kröse. Accurate Activity Recognition in a Home "
                 "Setting. UbiComp 2008. T.L.M. van Kasteren, G. Englebienne and B. Kröse. Transferring Knowledge of "
                 "Activity Recognition across Sensor Networks. Pervasive 2010.",
        homepage="https://github.com/agnesvanbelle/TL"),
)


def catalog(path: Path | None = None) -> dict[str, DatasetEntry]:
    """The built-in entries and those of `path` (default: the file $BEHAVIORLAB_CATALOG names), by name."""
    entries = {entry.name: entry for entry in BUILTIN}
    extra_file = path if path is not None else Path(os.environ[CATALOG_ENV]) if os.environ.get(CATALOG_ENV) else None
    if extra_file is None:
        return entries
    extra = load_config(CatalogFile, extra_file).dataset
    clashes = sorted({e.name for e in extra} & set(entries)) + sorted(
        {e.name for e in extra if sum(o.name == e.name for o in extra) > 1})
    if clashes:
        raise ConfigError(f"{extra_file} defines datasets whose names are taken: {', '.join(clashes)}",
                          hint="Give each [[dataset]] its own name (built-in: " + ", ".join(e.name for e in BUILTIN) + ").")
    return entries | {entry.name: entry for entry in extra}


def get_dataset(name: str, entries: dict[str, DatasetEntry] | None = None) -> DatasetEntry:
    entries = catalog() if entries is None else entries
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=1)
    raise DataError(f"No dataset is named {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                    hint=f"Known datasets: {', '.join(entries)} (`behaviorlab data list`).")
