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
