import os
import signal
from contextlib import contextmanager

import pytest

from behaviorlab.datasets import files
from behaviorlab.datasets.files import (
    find_not_utf8,
    first_line,
    read_utf8_text,
    refuse_repeated_names,
    require_file,
    require_utf8_head,
)
from behaviorlab.errors import DataError


@contextmanager
def returns_within(seconds: int):
    """Fail instead of hanging: SIGALRM interrupts an open() blocked on a FIFO, and the handler's
    exception ends the call (PEP 475)."""
    def give_up(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s: the FIFO was opened")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs need a POSIX system")
def test_a_fifo_is_refused_without_being_opened(tmp_path):
    pipe = tmp_path / "events.csv"
    os.mkfifo(pipe)  # opening it for reading would block until something writes: these calls must not
    with returns_within(10):
        with pytest.raises(DataError, match="is not a regular file or folder: it is a FIFO"):
            require_file(pipe, "Table")
        assert first_line(pipe) == ""


def test_a_folder_where_a_file_is_expected(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        require_file(tmp_path, "Table")


@pytest.mark.parametrize(("encoding", "named", "command"), [
    ("utf-16", "UTF-16 (with a byte-order mark)", "iconv -f UTF-16 -t UTF-8"),
    ("utf-16-le", "UTF-16LE (no byte-order mark)", "iconv -f UTF-16LE -t UTF-8"),
    ("utf-16-be", "UTF-16BE (no byte-order mark)", "iconv -f UTF-16BE -t UTF-8"),
    ("latin-1", "Latin-1 (ISO-8859-1), judging by byte 0xE9 at line 2, column 4", "iconv -f LATIN1 -t UTF-8"),
    ("cp1252", "Windows-1252 (cp1252), judging by byte 0x93 at line 2, column 1", "iconv -f CP1252 -t UTF-8"),
])
def test_text_that_is_not_utf8_is_named_with_the_command_that_converts_it(tmp_path, encoding, named, command):
    path = tmp_path / "in put.csv"
    text = "user,action\n\u201cx\u201d,caf\xe9\n" if encoding == "cp1252" else "user,action\nJos\xe9,caf\xe9\n"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(DataError) as info:
        require_utf8_head(path)
    assert info.value.message.endswith(f"is not UTF-8 text: it looks like {named}")
    assert command in info.value.hint and "'" in info.value.hint  # the path with a space is quoted for the shell


def test_the_first_bad_byte_is_found_across_chunks_and_split_characters_are_not_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_CHUNK", 7)  # every 2-byte 'é' lands on a chunk edge somewhere
    path = tmp_path / "t.csv"
    path.write_bytes(("a,b\n" + "é" * 20 + "\nok\nü,").encode() + b"\xff\n")
    with pytest.raises(DataError) as info:
        require_utf8_head(path)  # the head check sees it too; find_not_utf8 is for files whose head is fine
    located = find_not_utf8(path)
    assert located is not None and located.message == info.value.message
    assert "byte 0xFF at line 4, column 4" in located.message
    path.write_bytes(("a,b\n" + "é" * 20 + "\n").encode())
    assert find_not_utf8(path) is None and require_utf8_head(path).startswith(b"a,b")


def test_read_utf8_text(tmp_path):
    path = tmp_path / "dictionary.py"
    path.write_text("x = {'é': 1}\n", encoding="utf-8")
    assert read_utf8_text(path, "dictionary") == "x = {'é': 1}\n"
    path.write_text("x = {'é': 1}\n", encoding="utf-16")
    with pytest.raises(DataError, match="UTF-16"):
        read_utf8_text(path, "dictionary")


def test_repeated_names_are_listed_once_each(tmp_path):
    refuse_repeated_names(tmp_path / "t.csv", ["a", "b"])
    with pytest.raises(DataError) as info:
        refuse_repeated_names(tmp_path / "t.csv", ["a", "b", "a", "c", "b", "a"])
    assert info.value.message.endswith("the header repeats the columns 'a', 'b'")


def test_file_sha256_reads_in_chunks_and_matches_hashlib(tmp_path):
    import hashlib

    from behaviorlab.datasets.files import file_sha256

    data = bytes(range(256)) * 40_000  # 10 MB: more than one read
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
