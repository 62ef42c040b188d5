import os
import pickle

import numpy as np
import pytest

from behaviorlab.datasets.safe_files import load_array_pickle, read_literal_assignments
from behaviorlab.errors import DataError, UnsafeFileError


class CallsSystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_integer_array_pickles_load(tmp_path):
    array = np.arange(30, dtype=np.int64).reshape(2, 3, 5)
    for protocol in (2, 4, 5):
        path = tmp_path / f"a{protocol}.pkl"
        path.write_bytes(pickle.dumps(array, protocol=protocol))
        assert np.array_equal(load_array_pickle(path), array)


def test_malicious_pickle_is_refused_and_does_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(CallsSystem(marker)))
    with pytest.raises(UnsafeFileError, match="system"):
        load_array_pickle(path)
    assert not marker.exists()


def test_array_inside_a_malicious_container_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([np.zeros(3), CallsSystem(marker)]))
    with pytest.raises(UnsafeFileError):
        load_array_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("value", [{"a": 1}, np.array(["x", "y"], dtype=object), np.zeros(3)])
def test_non_integer_arrays_and_plain_objects_are_refused(tmp_path, value):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(value))
    with pytest.raises(UnsafeFileError):
        load_array_pickle(path)


def test_truncated_pickle_is_a_data_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps(np.arange(10))[:20])
    with pytest.raises(DataError, match="not a readable pickle"):
        load_array_pickle(path)


def test_dictionary_file_is_read_not_executed(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "dictionary.py"
    path.write_text(f"import os\nos.system('touch {marker}')\nnames = {{'a': 0, 'b': 1}}\n"
                    "def f():\n    return 1\nif __name__ == '__main__':\n    f()\n")
    assert read_literal_assignments(path) == {"names": {"a": 0, "b": 1}}
    assert not marker.exists()


def test_non_literal_assignment_is_reported(tmp_path):
    path = tmp_path / "dictionary.py"
    path.write_text("names = dict(a=__import__('os').getpid())\n")
    with pytest.raises(DataError) as info:
        read_literal_assignments(path)
    assert info.value.problems[0].row == 1


@pytest.mark.parametrize("depth", [3_000, 100_000])
def test_a_literal_nested_too_deeply_for_the_parser_is_a_data_error(tmp_path, depth):
    path = tmp_path / "dictionary.py"
    path.write_text("names = {'a': " + "- " * depth + "1}\n")
    with pytest.raises(DataError, match="nested too deeply"):
        read_literal_assignments(path)


def test_syntax_errors_give_line_and_column_and_unbuildable_literals_are_reported(tmp_path):
    path = tmp_path / "dictionary.py"
    path.write_text("a = {'x': 0}\nb = {'y': 1\n")
    with pytest.raises(DataError, match="not valid Python") as info:
        read_literal_assignments(path)
    assert info.value.problems[0].message.startswith("line 2, column 5:")
    path.write_text("a = {'x': 0}\nb = {['y']: 1}\n")
    with pytest.raises(DataError) as info:
        read_literal_assignments(path)
    assert info.value.problems[0].row == 2 and "unhashable" in info.value.problems[0].message


def _zip(path, members):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                archive.writestr(data, "target")
            else:
                archive.writestr(name, data)
    return path


def test_extract_zip_writes_the_wanted_members_only(tmp_path):
    from behaviorlab.datasets.safe_files import extract_zip

    archive = _zip(tmp_path / "a.zip", {"ml/u.data": "1\t2\n", "ml/u.item": "x", "other.txt": "y"})
    written = extract_zip(archive, tmp_path / "out", ("ml/",))
    assert written == [tmp_path / "out/ml/u.data", tmp_path / "out/ml/u.item"]
    assert (tmp_path / "out/ml/u.data").read_text() == "1\t2\n" and not (tmp_path / "out/other.txt").exists()


def test_extract_zip_refuses_every_unsafe_member_before_writing_any(tmp_path):
    import stat
    import zipfile

    from behaviorlab.datasets.safe_files import extract_zip

    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip(tmp_path / "a.zip", {"ok.txt": "fine", "../evil": "x", "/etc/evil": "x", "link": link})
    with pytest.raises(UnsafeFileError) as error:
        extract_zip(archive, tmp_path / "out")
    message = str(error.value)
    assert "'../evil'" in message and "'/etc/evil'" in message and "'link' is a symbolic link" in message
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil").exists()


def test_extract_zip_names_what_an_archive_lacks_and_refuses_a_damaged_one(tmp_path):
    from behaviorlab.datasets.safe_files import extract_zip

    archive = _zip(tmp_path / "a.zip", {"a.txt": "x"})
    with pytest.raises(DataError, match="lacks ml/") as error:
        extract_zip(archive, tmp_path / "out", ("ml/",))
    assert "a.txt" in str(error.value)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive.read_bytes()[:30])
    with pytest.raises(DataError, match="not a complete zip"):
        extract_zip(cut, tmp_path / "out")
