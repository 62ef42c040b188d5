from datetime import UTC, datetime

import pytest

from behaviorlab.datasets import load
from behaviorlab.errors import DataError


def write_house(folder, name="houseA", sensors="1000\t5\t1\r\n1100\t2\t2\r\n5000\t1\t9\r\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.sensors").write_text(sensors)
    (folder / f"{name}.activities").write_text("990\t200\t4\n4000\t100\t5\n")
    (folder / f"{name}.sensor_names").write_text("1\tMicrowave\r\n2\tFront door\t\r\n")
    (folder / f"{name}.activity_names").write_text("4\tprepare dinner\n5\tgo to bed\n")


def test_sensor_events_with_covering_activity(tmp_path):
    write_house(tmp_path)
    log = load(tmp_path / "houseA.sensors")
    rows = log.frame.to_dicts()
    assert [r["action"] for r in rows] == ["Microwave", "Front door", "houseA:sensor#9"]
    assert rows[0]["timestamp"] == datetime.fromtimestamp(1000, UTC)
    assert [r["activity"] for r in rows] == ["prepare dinner", "prepare dinner", None]  # 5000 is after 4000+100
    assert [r["duration_s"] for r in rows] == [5, 2, 1]
    assert log.vocabulary.describe("houseA:sensor#9") == "sensor 9 (no name in houseA.sensor_names)"


def test_folder_loads_every_house(tmp_path):
    write_house(tmp_path, "houseA")
    write_house(tmp_path, "houseB", sensors="7\t1\t2\n")
    log = load(tmp_path)
    assert sorted(log.users()) == ["houseA", "houseB"] and log.n_events == 4


def test_unreadable_lines_are_listed(tmp_path):
    write_house(tmp_path, sensors="1000\t5\t1\nnot a line\n1100\t2\n")
    with pytest.raises(DataError) as info:
        load(tmp_path / "houseA.sensors")
    assert [p.row for p in info.value.problems] == [2, 3]
