import os
import signal
from pathlib import Path

import pytest

from behaviorlab.atomic import atomic_path, check_output_path, exclusive_writer, write_text_atomic
from behaviorlab.errors import OutputError


def test_success_replaces_target_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "result.txt"
    write_text_atomic(target, "first")
    write_text_atomic(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.txt"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]


def test_failure_with_no_previous_file_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.txt"
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_new_files_are_readable_by_others_and_replacements_keep_the_old_mode(tmp_path: Path) -> None:
    target = tmp_path / "shared.txt"
    write_text_atomic(target, "x")
    assert target.stat().st_mode & 0o777 == 0o644
    target.chmod(0o600)
    write_text_atomic(target, "y")
    assert target.stat().st_mode & 0o777 == 0o600


def test_unwritable_outputs_are_refused_up_front(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(folder)
    with pytest.raises(OutputError, match="is not a directory"):
        check_output_path(a_file, directory=True)
    with pytest.raises(OutputError, match="is a file"):
        check_output_path(a_file / "inside" / "out.json")
    with pytest.raises(OutputError, match="not writable"):
        check_output_path("/proc/behaviorlab-test/out.json")  # not writable even for root
    assert check_output_path(tmp_path / "new" / "deeper" / "out.json") == tmp_path / "new" / "deeper" / "out.json"
    assert not (tmp_path / "new").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a-folder"]


def test_writing_over_a_directory_is_an_output_error_that_leaves_it_alone(tmp_path: Path) -> None:
    (tmp_path / "out.json").mkdir()
    with pytest.raises(OutputError):
        write_text_atomic(tmp_path / "out.json", "{}")
    assert (tmp_path / "out.json").is_dir() and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_second_writer_is_refused_with_the_holders_pid_until_the_holder_is_killed(tmp_path: Path, lock_holder) -> None:
    target = tmp_path / "run"
    pid = lock_holder(target)
    with pytest.raises(OutputError, match=rf"PID {pid}\) is writing the run .*run"), exclusive_writer(target, "the run"):
        pytest.fail("the lock was granted twice")
    os.kill(pid, signal.SIGKILL)  # kill -9: no clean-up code runs in the holder
    os.waitpid(pid, 0)
    with exclusive_writer(target, "the run"):  # the kernel released the dead holder's lock
        assert (tmp_path / ".run.lock").read_text() == str(os.getpid())
    assert not target.exists()  # the lock sits beside the output and creates nothing in its place


def test_the_same_process_may_re_enter_its_own_lock(tmp_path: Path) -> None:
    with exclusive_writer(tmp_path / "model", "the model"), exclusive_writer(tmp_path / "model", "the model"):
        pass
    with exclusive_writer(tmp_path / "model", "the model"):  # and it was released at the outer exit
        pass
