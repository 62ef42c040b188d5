from pathlib import Path

import pytest

from behaviorlab.atomic import atomic_path, write_text_atomic


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
