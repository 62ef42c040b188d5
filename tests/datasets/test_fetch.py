import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from behaviorlab.datasets import load
from behaviorlab.datasets.catalog import CATALOG_ENV, DatasetEntry, RemoteFile, catalog, get_dataset
from behaviorlab.datasets.fetch import DATA_ENV, MANIFEST, data_root, fetch, local_copy, resolve_data
from behaviorlab.errors import DataError, DatasetNotAvailableError, UnverifiedFileError

U_DATA = "1\t10\t5\t881250949\n1\t11\t3\t881250950\n2\t10\t4\t881250951\n"


def movielens_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml/u.data", U_DATA)
        archive.writestr("ml/README", "MovieLens-like fixture")
        archive.writestr("other/x.txt", "not wanted")
    return buffer.getvalue()


def zip_entry(url: str, data: bytes, name: str = "tiny-ml") -> DatasetEntry:
    return DatasetEntry(name=name, description="fixture", format="movielens", path="ml", license="test", citation="-",
                        files=(RemoteFile(url=f"{url}/tiny.zip", name="tiny.zip", size=len(data),
                                          sha256=hashlib.sha256(data).hexdigest(), extract=("ml/",)),))


def test_fetch_downloads_checks_extracts_and_the_loader_reads_it(file_server, tmp_path):
    data = movielens_zip()
    file_server.files["/tiny.zip"] = data
    fetched = fetch(zip_entry(file_server.url, data), root=tmp_path)
    assert fetched.path == tmp_path / "tiny-ml" / "ml" and load(fetched.path).n_events == 3
    assert (tmp_path / "downloads" / "tiny.zip").read_bytes() == data and not (tmp_path / "tiny-ml" / "other").exists()
    record = json.loads((tmp_path / "tiny-ml" / MANIFEST).read_text())
    assert record["written"] == ["ml/u.data", "ml/README"] and record["files"][0]["checked"] == "sha256"


def test_a_present_copy_is_used_without_the_network(file_server, tmp_path):
    data = movielens_zip()
    file_server.files["/tiny.zip"] = data
    entry = zip_entry(file_server.url, data)
    assert local_copy(entry, tmp_path) is None
    fetch(entry, root=tmp_path)
    file_server.stop()
    assert local_copy(entry, tmp_path) == tmp_path / "tiny-ml" / "ml"
    (tmp_path / "tiny-ml" / "ml" / "u.data").unlink()  # incomplete: fetched again, from the kept archive
    assert local_copy(entry, tmp_path) is None
    assert fetch(entry, root=tmp_path).path.joinpath("u.data").read_text() == U_DATA
    assert len(file_server.requests) == 1


def test_no_network_lists_every_file_with_where_to_save_it_and_saved_files_are_then_used(closed_port_url, tmp_path):
    files = (RemoteFile(url=f"{closed_port_url}/a.txt", name="a.txt", size=2, sha256=hashlib.sha256(b"a\n").hexdigest()),
             RemoteFile(url=f"{closed_port_url}/b.txt", name="b.txt", size=2, sha256=hashlib.sha256(b"b\n").hexdigest()))
    entry = DatasetEntry(name="two", description="-", format="csv", path="a.txt", license="-", citation="-", files=files)
    with pytest.raises(DatasetNotAvailableError) as error:
        fetch(entry, root=tmp_path)
    message = str(error.value)
    assert "2 of 2 files of two" in message
    for name in ("a.txt", "b.txt"):
        assert f"download {closed_port_url}/{name} and save it as {tmp_path / 'two' / name}" in message
    (tmp_path / "two" / "a.txt").write_text("a\n")
    (tmp_path / "two" / "b.txt").write_text("b\n")
    assert fetch(entry, root=tmp_path).path == tmp_path / "two" / "a.txt"


def test_files_without_digests_are_refused_together_until_trusted(file_server, tmp_path):
    file_server.files |= {"/a.txt": b"a\n", "/b.txt": b"b\n"}
    entry = DatasetEntry(name="raw", description="-", format="csv", path="a.txt", license="-", citation="-",
                         files=tuple(RemoteFile(url=f"{file_server.url}/{n}", name=n) for n in ("a.txt", "b.txt")))
    with pytest.raises(UnverifiedFileError) as error:
        fetch(entry, root=tmp_path)
    for data in (b"a\n", b"b\n"):
        assert hashlib.sha256(data).hexdigest() in str(error.value)
    assert "behaviorlab data fetch raw --trust-unverified" in str(error.value)
    assert local_copy(entry, tmp_path) is None
    fetched = fetch(entry, root=tmp_path, trust_unverified=True)
    assert [f.checked for f in fetched.files] == ["nothing", "nothing"] and len(file_server.requests) == 2


def test_two_datasets_from_one_archive_download_it_once(file_server, tmp_path):
    data = movielens_zip()
    file_server.files["/tiny.zip"] = data
    fetch(zip_entry(file_server.url, data, "first"), root=tmp_path)
    fetch(zip_entry(file_server.url, data, "second"), root=tmp_path)
    assert (tmp_path / "second" / "ml" / "u.data").is_file() and len(file_server.requests) == 1


def test_resolve_data_takes_a_path_as_is_and_a_name_from_the_catalog(file_server, tmp_path, monkeypatch):
    data = movielens_zip()
    file_server.files["/tiny.zip"] = data
    entry = zip_entry(file_server.url, data)
    extra = tmp_path / "datasets.toml"
    lines = [f'{k} = "{v}"' for k, v in entry.model_dump(exclude={"files"}).items()]
    file_lines = [f'{k} = {json.dumps(v)}' for k, v in entry.files[0].model_dump().items() if v is not None]
    extra.write_text("[[dataset]]\n" + "\n".join(lines) + "\n[[dataset.files]]\n" + "\n".join(file_lines) + "\n")
    monkeypatch.setenv(CATALOG_ENV, str(extra))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    assert data_root() == tmp_path / "data"
    assert resolve_data(tmp_path) == tmp_path
    assert resolve_data("tiny-ml") == tmp_path / "data" / "tiny-ml" / "ml"
    assert resolve_data("tiny-ml") == tmp_path / "data" / "tiny-ml" / "ml" and len(file_server.requests) == 1
    with pytest.raises(DataError, match="neither an existing path nor a dataset name"):
        resolve_data(tmp_path / "nope.csv")


SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.mark.parametrize(("name", "folder", "events"), [("amazon-beauty", "amazon-beauty", 198_502),
                                                       ("smartthings-fr", "smartthings-fr/original", 44_230)])
def test_builtin_entries_fetched_from_copies_of_their_files_load(file_server, tmp_path, name, folder, events):
    """The real entries, their URLs pointed at 127.0.0.1 serving the shared copies: digests, layout and format hold."""
    if not (SHARED / folder).is_dir():
        pytest.skip(f"the shared copy {SHARED / folder} is absent")
    entry = get_dataset(name, catalog())
    files = []
    for file in entry.files:
        file_server.files[f"/{file.name}"] = (SHARED / folder / file.name).read_bytes()
        files.append(file.model_copy(update={"url": f"{file_server.url}/{file.name}"}))
    entry = entry.model_copy(update={"files": tuple(files)})
    fetched = fetch(entry, root=tmp_path, trust_unverified=not entry.verified)
    assert load(fetched.path).n_events == events
