import json
from pathlib import Path

import pytest

from behaviorlab.errors import DataError
from behaviorlab.profiles.atus import derive_atus_priors, load_atus_priors

SHARED_ATUS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "atus-2022"
CATEGORIES = ("sleeping", "work", "tv")


def _write_fixture(folder: Path, wake: int, bed: int, work: tuple[int, int] | None, diaries: int, stratum: str) -> None:
    """One stratum whose people all wake at `wake`, sleep at `bed` and work in `work` (clock hours)."""
    table = folder / "time_at_activity.csv"
    if not table.exists():
        table.write_text("hour,category,weighted_pct,stratum,day_type\n")
    lines = []
    for day_type in ("weekday", "weekend"):
        for hour in range(24):
            asleep = 100.0 if (hour < wake or hour >= bed) else 0.0
            at_work = 100.0 if work and work[0] <= hour < work[1] and day_type == "weekday" else 0.0
            tv = 100.0 - asleep - at_work
            for category, share in zip(CATEGORIES, (asleep, at_work, tv), strict=True):
                lines.append(f"{hour},{category},{share},{stratum},{day_type}\n")
    with table.open("a") as handle:
        handle.writelines(lines)
    (folder / f"activity_frequency_{stratum}.csv").write_text(
        "trcode,n_episodes,description\n010101," + str(diaries) + ",Sleeping\n")


def test_routines_are_read_off_the_hourly_shares(tmp_path):
    _write_fixture(tmp_path, wake=7, bed=23, work=(9, 17), diaries=300, stratum="O1")
    _write_fixture(tmp_path, wake=9, bed=22, work=None, diaries=100, stratum="O2")
    table = tmp_path / "priors.json"
    table.write_text(json.dumps(derive_atus_priors(tmp_path)))
    priors = load_atus_priors(table)
    assert [s.name for s in priors.strata] == ["O1", "O2"]
    assert priors.weights.tolist() == [0.75, 0.25]
    worker, other = priors.strata
    typical = worker.routine(0.5, 0.5, 0.0, 0.5, 0.5)
    # everyone wakes at 7, goes to bed at 23 and works 9-17: the median of each anchor is that hour
    assert (typical.wake, typical.sleep, typical.work_start, typical.work_end) == (7.0, 23.0, 9.0, 17.0)
    early = worker.routine(0.1, 0.1, 0.0, 0.1, 0.1)
    assert (early.wake, early.sleep, early.work_start) == (6.6, 22.6, 8.6)  # spread over the half-hour either side
    assert worker.work_share == 1.0 and "mostly employed" in worker.label
    assert other.routine(0.5, 0.5, 0.0, 0.5, 0.5).work_start is None
    assert other.evening_activity()[0][0] == "tv"


def test_missing_files_and_categories_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="missing"):
        derive_atus_priors(tmp_path)
    (tmp_path / "time_at_activity.csv").write_text("hour,category,weighted_pct,stratum,day_type\n0,work,1,O1,weekday\n")
    (tmp_path / "activity_frequency_O1.csv").write_text("trcode,n_episodes\n010101,5\n")
    with pytest.raises(DataError) as caught:
        derive_atus_priors(tmp_path)
    assert len(caught.value.problems) == 2  # no sleeping shares for weekday nor weekend


def test_shipped_table_has_four_strata_with_plausible_routines():
    priors = load_atus_priors()
    assert "Time Use Survey" in priors.source and len(priors.strata) == 4
    for stratum in priors.strata:
        typical = stratum.routine(0.5, 0.5, 0.5, 0.5, 0.5)
        assert 5.0 < typical.wake < 9.0 and 21.0 < typical.sleep < 25.0


@pytest.mark.skipif(not SHARED_ATUS.exists(), reason="ATUS aggregates not present at ../shared/datasets/atus-2022")
def test_shipped_table_is_what_the_derivation_gives():
    shipped = json.loads((Path(__file__).resolve().parents[2] / "src/behaviorlab/profiles/data/atus_routines.json").read_text())
    assert derive_atus_priors(SHARED_ATUS) == shipped
