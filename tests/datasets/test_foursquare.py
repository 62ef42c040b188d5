from datetime import UTC, datetime

from behaviorlab.datasets import detect_format, load
from behaviorlab.sequences import sessions_by_day

ORIGINAL = [
    # userId, venueId, categoryId, category, lat, lon, offset (min), UTC time
    ("470", "49bbd6c0f964a520f4531fe3", "4bf58dd8d48988d127951735", "Arts & Crafts Store", "40.719810", "-74.002581", "-240",
     "Tue Apr 03 18:00:09 +0000 2012"),
    ("470", "4a43c0aef964a520c6a61fe3", "4bf58dd8d48988d1df941735", "Bridge", "40.606800", "-74.044170", "-240",
     "Wed Apr 04 02:30:00 +0000 2012"),
    ("979", "4c5cc7b485a1e21e00d35711", "4bf58dd8d48988d103941735", "Café", "40.716162", "-73.883070", "-300",
     "Sat Dec 01 04:59:00 +0000 2012"),
]


def test_original_tsv_local_time_from_offset(tmp_path):
    path = tmp_path / "dataset_TSMC2014_NYC.txt"
    path.write_text("\n".join("\t".join(r) for r in ORIGINAL) + "\n", encoding="utf-8")
    assert detect_format(path).name == "foursquare"
    log = load(path)
    rows = log.frame.sort("timestamp").to_dicts()
    assert rows[0]["timestamp"] == datetime(2012, 4, 3, 18, 0, 9, tzinfo=UTC)
    assert (rows[0]["local_hour"], rows[0]["weekday"]) == (14, "Tue")
    # 02:30 UTC Wednesday is 22:30 Tuesday in New York (UTC-4)
    assert (rows[1]["local_hour"], rows[1]["weekday"]) == (22, "Tue")
    assert (rows[2]["local_hour"], rows[2]["weekday"], rows[2]["action"]) == (23, "Fri", "Café")
    assert rows[0]["item"] == "49bbd6c0f964a520f4531fe3" and abs(rows[0]["latitude"] - 40.71981) < 1e-9
    # a "day" is the user's local day
    sessions = sessions_by_day(log).frame.sort("timestamp").get_column("session_id").to_list()
    assert sessions == ["470:2012-04-03", "470:2012-04-03", "979:2012-11-30"]


def test_prepared_csv_folder_loads_every_slice(tmp_path):
    header = "user_id,POI_id,POI_catid,POI_catname,latitude,longitude,timezone,UTC_time,trajectory_id,time_period"
    for name, rows in (("checkins_a.csv", ORIGINAL[:2]), ("checkins_b.csv", ORIGINAL[2:])):
        (tmp_path / name).write_text(header + "\n" + "\n".join(",".join(r) + ",t1,0.5" for r in rows) + "\n")
    (tmp_path / "poi_info.csv").write_text("poi_id,poi_catid,latitude,longitude\nx,y,1,2\n")
    log = load(tmp_path)
    assert log.n_events == 3 and log.n_users == 2
    assert set(log.schema.extras) == {"item", "latitude", "longitude", "utc_offset_min", "trajectory_id", "local_hour", "weekday"}
