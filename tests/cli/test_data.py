import pickle
import re

import numpy as np
import polars as pl
import pytest

from behaviorlab.cli import main
from behaviorlab.datasets import ColumnMapping, load, read_event_log

CSV = "uid,ts,item,stars\nu1,2024-01-01T08:00:00Z,open,5\nu1,2024-01-01T09:00:00Z,close,3\nu2,2024-01-02T10:00:00Z,open,4\n"


def test_inspect_prints_counts_and_top_actions(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    code = main(["data", "inspect", str(path), "--map", "user=uid,time=ts,action=item", "--extra", "stars:int"])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"users\s*│\s*2\s", out) and re.search(r"events\s*│\s*3\s", out)
    assert re.search(r"open\s*│\s*2\s", out) and "stars:int" in out


def test_inspect_with_toml_config(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    config = tmp_path / "mapping.toml"
    config.write_text('user = "uid"\ntime = "ts"\naction = "item"\n[extras]\nstars = "float"\n')
    assert main(["data", "inspect", str(path), "--config", str(config)]) == 0
    assert "stars:float" in capsys.readouterr().out
    config.write_text('usr = "uid"\n')
    assert main(["data", "inspect", str(path), "--config", str(config)]) == 2
    assert "usr" in capsys.readouterr().err


def test_bad_input_gives_message_and_exit_code_without_traceback(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text("uid,ts,item\nu1,yesterday,open\n,2024-01-01,close\n")
    code = main(["data", "inspect", str(path), "--map", "user=uid,time=ts,action=item"])
    err = capsys.readouterr().err
    assert code == 3
    assert "row 1" in err and "row 2" in err and "Traceback" not in err


def test_malicious_pickle_is_refused_by_the_cli(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    (tmp_path / "dictionary.py").write_text("dayofweek_dict = {}\nhour_dict = {}\ndevice_dict = {}\ndevice_control_dict = {}\n")
    (tmp_path / "trn_instance_10.pkl").write_bytes(pickle.dumps(Evil()))
    assert main(["data", "inspect", str(tmp_path)]) == 3
    assert "os" in capsys.readouterr().err and not marker.exists()


def test_convert_writes_a_lossless_parquet(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text(CSV + "u2,2024-01-02T10:00:00Z,open,4\n")
    out = tmp_path / "out.parquet"
    assert main(["data", "convert", str(path), str(out), "--map", "user=uid,time=ts,action=item", "--drop-duplicates"]) == 0
    assert "1 duplicate" in capsys.readouterr().out
    log = read_event_log(out)
    assert log.n_events == 3 and log.n_users == 2
    assert main(["data", "inspect", str(out)]) == 0  # and it is recognised as a behaviorlab log


@pytest.mark.parametrize("bucket_rows", [3, 1_000])  # several buckets of users (grouped and deduplicated one at a time), one bucket
def test_convert_drops_duplicates_as_the_in_memory_filter_does(tmp_path, capsys, monkeypatch, bucket_rows):
    from behaviorlab import schema
    from behaviorlab.sequences import drop_exact_duplicates

    def whole_log_in_memory(*args, **kwargs):
        raise AssertionError("data convert loaded the whole log")

    monkeypatch.setattr(schema, "USER_BUCKET_ROWS", bucket_rows)
    monkeypatch.setattr("behaviorlab.sequences.GROUP_BUCKET_ROWS", bucket_rows)  # split into buckets of users first
    monkeypatch.setattr("behaviorlab.cli.common.load", whole_log_in_memory)
    # 60 events of 6 users out of time order; every 7th row repeated (9 repeats), one of them twice (a 3rd copy).
    rows = [f"u{i % 6},{1_700_000_000 + (i * 37) % 60},i{i % 5},{i % 3}\n" for i in range(60)]
    rows += rows[::7] + rows[:1]
    path = tmp_path / "events.csv"
    path.write_text("uid,ts,item,stars\n" + "".join(rows))
    out = tmp_path / "out.parquet"
    mapping = ["--map", "user=uid,time=ts,action=item", "--extra", "stars:int"]
    assert main(["data", "convert", str(path), str(out), *mapping, "--drop-duplicates"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "out.parquet"]  # the buckets are gone
    printed = capsys.readouterr().out
    expected, report = drop_exact_duplicates(load(path, mapping=ColumnMapping(user="uid", time="ts", action="item", extras={"stars": "int"})))
    assert report.events_removed == 10 and str(report) in printed and "6 users, 60 events, 5 actions" in printed
    written = read_event_log(out)
    assert written.schema == expected.schema and written.vocabulary == expected.vocabulary
    columns = written.frame.columns
    assert written.frame.sort(columns).equals(expected.frame.sort(columns))
    assert written.frame.get_column("user_id").rle_id().max() == 5  # each user's events in one run of rows
    for user in ("u0", "u1", "u5"):  # in time order, ties in the order of the input
        assert written.filter(pl.col("user_id") == user).frame.equals(expected.sorted().filter(pl.col("user_id") == user).frame)


def test_convert_failure_leaves_no_output(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text("uid,ts,item\nu1,never,open\n")
    out = tmp_path / "out.parquet"
    assert main(["data", "convert", str(path), str(out), "--map", "user=uid,time=ts,action=item"]) == 3
    assert list(tmp_path.iterdir()) == [path]
    assert main(["data", "convert", str(path), str(tmp_path / "out.csv")]) == 2


def test_convert_counts_actions_like_inspect(tmp_path, capsys):
    """A vocabulary may name actions that never occur (a sensor that never fired): both commands count those that do."""
    (tmp_path / "houseA.sensors").write_text("1000\t5\t1\n1100\t2\t2\n")
    (tmp_path / "houseA.activities").write_text("990\t200\t4\n")
    (tmp_path / "houseA.sensor_names").write_text("1\tMicrowave\n2\tFront door\n3\tFridge\n")
    (tmp_path / "houseA.activity_names").write_text("4\tprepare dinner\n")
    assert main(["data", "convert", str(tmp_path / "houseA.sensors"), str(tmp_path / "out.parquet")]) == 0
    assert "2 actions (vocabulary 3)" in capsys.readouterr().out
    assert main(["data", "inspect", str(tmp_path / "houseA.sensors")]) == 0
    assert "2 (vocabulary 3)" in capsys.readouterr().out


def test_formats_lists_every_format(capsys):
    assert main(["data", "formats"]) == 0
    out = capsys.readouterr().out
    for name in ("smartthings-csv", "smartthings-pickle", "recbole", "movielens", "foursquare", "kasteren", "csv"):
        assert name in out


def test_pickled_arrays_inspect_end_to_end(tmp_path, capsys):
    (tmp_path / "dictionary.py").write_text(
        "dayofweek_dict = {'day:Mon': 0}\nhour_dict = {'time:(0~3)': 0}\ndevice_dict = {'Light': 0}\n"
        "device_control_dict = {'Light:switch on': 0, 'Light:switch off': 1}\n")
    array = np.array([[[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]] * 3, dtype=np.int64)
    (tmp_path / "trn_instance_2.pkl").write_bytes(pickle.dumps(array))
    assert main(["data", "inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "smartthings-pickle" in out and "Light: switch on" in out and "train: 3 sequences / 6 events" in out


def test_sep_and_no_header_read_a_semicolon_file_by_column_index(tmp_path, capsys):
    path = tmp_path / "sessions.csv"
    path.write_text("u1;2024-01-01T08:00:00Z;open\nu1;2024-01-01T09:00:00Z;close\nu2;2024-01-02T10:00:00Z;open\n")
    out = tmp_path / "sessions.parquet"
    assert main(["data", "convert", str(path), str(out), "--sep", "semicolon", "--no-header",
                 "--map", "user=0,time=1,action=2"]) == 0
    log = read_event_log(out)
    assert log.n_events == 3 and sorted(log.frame["action"].unique().to_list()) == ["close", "open"]
    capsys.readouterr()
    # the wrong separator is refused with the one the file seems to use
    assert main(["data", "inspect", str(path), "--sep", ",", "--no-header", "--map", "user=0,time=1,action=2"]) != 0
    assert "pass --sep ';'" in capsys.readouterr().err
    assert main(["data", "inspect", str(path), "--sep", "ab"]) == 2
    assert "single-byte character" in capsys.readouterr().err


def test_inspect_reads_a_sequence_lines_file_with_its_item_attributes(tmp_path, capsys):
    (tmp_path / "Shop.txt").write_text("1 5 6 7\n2 6 7\n3 5 7 8 6\n")
    (tmp_path / "Shop_item2attributes.json").write_text('{"5": [1], "6": [1, 2], "7": [3], "8": [2]}')
    assert main(["data", "inspect", str(tmp_path / "Shop.txt")]) == 0
    out = capsys.readouterr().out
    assert "sequence-lines" in out and re.search(r"events\s*│\s*9\s", out)


# --- datasets by name: `data list`, `data fetch`, and a name given to --data ----------------------------------


def _ring_csv() -> bytes:
    """40 users walking a ring of 6 actions one hour apart: enough for a leave-one-out split."""
    ring = ["wake", "coffee", "commute", "work", "dinner", "sleep"]
    lines = ["user_id,timestamp,action"] + [f"u{u},2024-01-01T{t:02d}:00:00Z,{ring[(u + t) % 6]}"
                                            for u in range(40) for t in range(12)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def named_log(file_server, tmp_path, monkeypatch):
    """A catalog entry 'lab-ring' ($BEHAVIORLAB_CATALOG) served from 127.0.0.1, data folder in tmp_path."""
    import hashlib

    data = _ring_csv()
    file_server.files["/ring.csv"] = data
    catalog = tmp_path / "datasets.toml"
    catalog.write_text(f"""[[dataset]]
name = "lab-ring"
description = "a ring of six actions"
format = "csv"
path = "ring.csv"
license = "CC0"
citation = "nobody"
[[dataset.files]]
url = "{file_server.url}/ring.csv"
name = "ring.csv"
size = {len(data)}
sha256 = "{hashlib.sha256(data).hexdigest()}"
""")
    monkeypatch.setenv("BEHAVIORLAB_CATALOG", str(catalog))
    monkeypatch.setenv("BEHAVIORLAB_DATA", str(tmp_path / "data"))
    return file_server


def test_data_fetch_downloads_once_then_uses_the_copy_and_list_shows_it(named_log, tmp_path, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "ml-100k" in out and "lab-ring" in out and "smartthings-fr" in out
    assert main(["data", "fetch", "lab-ring"]) == 0
    out = capsys.readouterr().out
    assert f"ring.csv: {len(_ring_csv()):,} bytes" in out and "SHA-256 matches" in out and "License: CC0" in out
    assert main(["data", "fetch", "lab-ring"]) == 0
    assert "already in" in capsys.readouterr().out and len(named_log.requests) == 1
    assert main(["data", "list"]) == 0
    assert re.search(r"lab-ring .*│ yes", capsys.readouterr().out)


def test_data_fetch_without_network_exits_3_and_says_where_to_save_the_file(named_log, tmp_path, capsys):
    named_log.stop()
    assert main(["data", "fetch", "lab-ring"]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "could not be downloaded" in err and f"save it as {tmp_path / 'data' / 'lab-ring' / 'ring.csv'}" in err
    assert main(["data", "fetch", "no-such-set"]) == 3
    assert "No dataset is named" in capsys.readouterr().err


def test_a_command_given_a_dataset_name_for_data_fetches_and_reads_it(named_log, tmp_path, capsys):
    model_dir = tmp_path / "markov"
    assert main(["train", "--model", "markov", "--data", "lab-ring", "--out", str(model_dir)]) == 0
    assert (tmp_path / "data" / "lab-ring" / "ring.csv").is_file() and len(named_log.requests) == 1
    named_log.stop()  # the copy is used from now on
    assert main(["evaluate", str(model_dir), "--data", "lab-ring"]) == 0
    assert "HR@10" in capsys.readouterr().out
    assert main(["data", "inspect", "lab-ring"]) == 0  # the positional path of data inspect / convert too
    assert re.search(r"events\s*│\s*480\s", capsys.readouterr().out)
    assert main(["train", "--model", "markov", "--data", "no-such-set", "--out", str(tmp_path / "m2")]) == 3
    assert "neither an existing path nor a dataset name" in capsys.readouterr().err


def test_a_dataset_without_digest_is_refused_by_name_until_fetched_with_trust(named_log, tmp_path, capsys):
    import os

    catalog = tmp_path / "datasets.toml"
    catalog.write_text("\n".join(line for line in catalog.read_text().splitlines() if not line.startswith("sha256")))
    assert os.environ["BEHAVIORLAB_CATALOG"] == str(catalog)
    assert main(["train", "--model", "markov", "--data", "lab-ring", "--out", str(tmp_path / "m")]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "no recorded SHA-256" in err and "behaviorlab data fetch lab-ring --trust-unverified" in err
    assert main(["data", "fetch", "lab-ring", "--trust-unverified"]) == 0
    assert "size matches, no SHA-256 recorded" in capsys.readouterr().out
    assert main(["train", "--model", "markov", "--data", "lab-ring", "--out", str(tmp_path / "m")]) == 0
    assert len(named_log.requests) == 1


def test_convert_streams_delimited_text_into_the_same_parquet_and_lists_bad_rows(tmp_path, capsys):
    path = tmp_path / "events.tsv"
    path.write_text("uid\tts\titem\n" + "".join(f"u{i % 4}\t{1_700_000_000 + i}\ti{i % 5}\n" for i in range(40)))
    out = tmp_path / "out.parquet"
    assert main(["data", "convert", str(path), str(out), "--map", "user=uid,time=ts,action=item"]) == 0
    assert "4 users, 40 events, 5 actions" in capsys.readouterr().out
    loaded = load(path, mapping=ColumnMapping(user="uid", time="ts", action="item"))
    written = read_event_log(out)
    assert written.vocabulary == loaded.vocabulary and written.schema == loaded.schema
    # The same rows, each user's in one run of rows and in the same order (convert groups the events by user).
    assert written.row_hash() == loaded.row_hash() and written.action_sequences() == loaded.action_sequences()
    assert written.frame.get_column("user_id").rle_id().max() == 3
    path.write_text(path.read_text() + "u1\t\ti1\nu2\t1700000099\t\n")  # rows 41 and 42: no time, no action
    assert main(["data", "convert", str(path), str(out), "--map", "user=uid,time=ts,action=item"]) == 3
    err = capsys.readouterr().err
    assert "row 41" in err and "row 42" in err and read_event_log(out).frame.equals(written.frame)  # the old file stays
