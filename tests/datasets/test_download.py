import hashlib

import pytest

from behaviorlab.datasets.download import PART_SUFFIX, UNVERIFIED_SUFFIX, VALIDATOR_SUFFIX, download_file
from behaviorlab.errors import ChecksumError, DatasetNotAvailableError, OutputError, UnverifiedFileError

DATA = bytes(range(256)) * 1000  # 256,000 bytes: several network reads
DIGEST = hashlib.sha256(DATA).hexdigest()


def test_download_checks_the_file_and_moves_it_into_place(file_server, tmp_path):
    file_server.files["/d/f.bin"] = DATA
    target = tmp_path / "sub" / "f.bin"
    seen = []
    verified = download_file(f"{file_server.url}/d/f.bin", target, size=len(DATA), sha256=DIGEST,
                             progress=lambda done, total, info=None: seen.append((done, total)))
    assert target.read_bytes() == DATA and verified.checked == "sha256" and verified.sha256 == DIGEST
    assert not target.with_name("f.bin" + PART_SUFFIX).exists()
    assert seen[-1] == (len(DATA), len(DATA))


def test_a_checksum_mismatch_refuses_and_removes_the_file(file_server, tmp_path):
    file_server.files["/f.bin"] = DATA[:-1] + b"\x00"
    target = tmp_path / "f.bin"
    with pytest.raises(ChecksumError) as error:
        download_file(f"{file_server.url}/f.bin", target, size=len(DATA), sha256=DIGEST)
    assert "has been removed" in str(error.value) and DIGEST in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == [".f.bin.lock"]  # the emptied one-writer lock, nothing else


def test_a_dropped_connection_keeps_the_bytes_and_the_next_call_resumes_with_range(file_server, tmp_path):
    file_server.files["/f.bin"] = DATA
    file_server.drop_after["/f.bin"] = 100_000
    target = tmp_path / "f.bin"
    part = tmp_path / ("f.bin" + PART_SUFFIX)
    with pytest.raises(DatasetNotAvailableError) as error:
        download_file(f"{file_server.url}/f.bin", target, size=len(DATA), sha256=DIGEST)
    assert part.stat().st_size == 100_000 and not target.exists()
    assert str(part) in str(error.value) and "resumes" in str(error.value)
    download_file(f"{file_server.url}/f.bin", target, size=len(DATA), sha256=DIGEST)
    assert target.read_bytes() == DATA and not part.exists()
    assert file_server.requests == [("/f.bin", None), ("/f.bin", "bytes=100000-")]


def test_a_server_that_ignores_range_restarts_the_file(file_server, tmp_path):
    file_server.files["/f.bin"] = DATA
    file_server.ignore_range = True
    (tmp_path / ("f.bin" + PART_SUFFIX)).write_bytes(DATA[:5000])
    download_file(f"{file_server.url}/f.bin", tmp_path / "f.bin", size=len(DATA), sha256=DIGEST)
    assert (tmp_path / "f.bin").read_bytes() == DATA


def test_a_complete_part_is_checked_without_another_request(file_server, tmp_path):
    (tmp_path / ("f.bin" + PART_SUFFIX)).write_bytes(DATA)
    download_file(f"{file_server.url}/f.bin", tmp_path / "f.bin", size=len(DATA), sha256=DIGEST)
    assert (tmp_path / "f.bin").read_bytes() == DATA and file_server.requests == []


def test_404_names_the_url_and_the_path_to_save_the_file_at(file_server, tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(DatasetNotAvailableError) as error:
        download_file(f"{file_server.url}/missing.bin", target, sha256=DIGEST)
    message = str(error.value)
    assert "HTTP 404" in message and f"{file_server.url}/missing.bin" in message and f"save it as {target}" in message
    assert not target.exists() and not tmp_path.joinpath("f.bin" + PART_SUFFIX).exists()


def test_no_network_says_which_file_to_put_where(closed_port_url, tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(DatasetNotAvailableError) as error:
        download_file(f"{closed_port_url}/f.bin", target, sha256=DIGEST, timeout=5)
    assert "ConnectError" in str(error.value) and f"download {closed_port_url}/f.bin and save it as {target}" in str(error.value)


def test_a_file_saved_by_hand_is_checked_and_used_without_the_network(closed_port_url, tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(DATA)
    assert download_file(f"{closed_port_url}/f.bin", target, size=len(DATA), sha256=DIGEST).checked == "sha256"
    target.write_bytes(DATA[:10])
    with pytest.raises(ChecksumError):
        download_file(f"{closed_port_url}/f.bin", target, size=len(DATA), sha256=DIGEST)
    assert not target.exists()


def test_a_file_without_a_digest_waits_aside_until_accepted_then_needs_no_second_download(file_server, tmp_path):
    file_server.files["/f.bin"] = DATA
    target = tmp_path / "f.bin"
    aside = tmp_path / ("f.bin" + UNVERIFIED_SUFFIX)
    for _ in range(2):  # the second refusal comes from the kept copy, not a new download
        with pytest.raises(UnverifiedFileError) as error:
            download_file(f"{file_server.url}/f.bin", target)
        assert DIGEST in str(error.value) and "--trust-unverified" in str(error.value) and not target.exists()
    assert aside.read_bytes() == DATA and len(file_server.requests) == 1
    verified = download_file(f"{file_server.url}/f.bin", target, accept_unverified=True)
    assert verified.checked == "nothing" and verified.sha256 == DIGEST and target.read_bytes() == DATA
    assert not aside.exists() and len(file_server.requests) == 1


def test_a_second_process_downloading_the_same_file_is_refused(file_server, tmp_path, lock_holder):
    file_server.files["/f.bin"] = DATA
    target = tmp_path / "f.bin"
    pid = lock_holder(target)
    with pytest.raises(OutputError, match=f"PID {pid}"):
        download_file(f"{file_server.url}/f.bin", target, sha256=DIGEST)
    assert file_server.requests == []


def test_a_file_changed_on_the_server_since_the_interruption_is_downloaded_whole(file_server, tmp_path):
    file_server.files["/f.bin"] = DATA
    file_server.drop_after["/f.bin"] = 100_000
    target = tmp_path / "f.bin"
    with pytest.raises(DatasetNotAvailableError):
        download_file(f"{file_server.url}/f.bin", target)
    assert (tmp_path / ("f.bin" + PART_SUFFIX + VALIDATOR_SUFFIX)).is_file()
    changed = DATA[::-1]  # a new release under the same URL
    file_server.files["/f.bin"] = changed
    download_file(f"{file_server.url}/f.bin", target, accept_unverified=True)
    assert target.read_bytes() == changed  # not 100,000 old bytes followed by the new file's tail
    assert not tmp_path.joinpath("f.bin" + PART_SUFFIX + VALIDATOR_SUFFIX).exists()


def test_a_part_longer_than_the_file_on_the_server_starts_over(file_server, tmp_path):
    file_server.files["/f.bin"] = DATA[:1000]
    (tmp_path / ("f.bin" + PART_SUFFIX)).write_bytes(DATA[:5000])
    download_file(f"{file_server.url}/f.bin", tmp_path / "f.bin", accept_unverified=True)
    assert (tmp_path / "f.bin").read_bytes() == DATA[:1000]
    assert [r for _, r in file_server.requests] == ["bytes=5000-", None]


def test_a_full_disk_is_an_output_error_that_keeps_what_arrived(file_server, tmp_path, monkeypatch):
    import builtins

    file_server.files["/f.bin"] = DATA
    real_open = builtins.open

    class FullDisk:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, chunk):
            if self.written + len(chunk) > 50_000:
                raise OSError(28, "No space left on device")
            self.written += len(chunk)
            return self.handle.write(chunk)

    def opener(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return FullDisk(handle) if str(path).endswith(PART_SUFFIX) else handle

    monkeypatch.setattr(builtins, "open", opener)
    with pytest.raises(OutputError, match="No space left on device") as error:
        download_file(f"{file_server.url}/f.bin", tmp_path / "f.bin", sha256=DIGEST)
    assert "BEHAVIORLAB_DATA" in str(error.value) and not (tmp_path / "f.bin").exists()
