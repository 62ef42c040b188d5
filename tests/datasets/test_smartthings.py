import pickle

import numpy as np
import pytest

from behaviorlab.datasets import load
from behaviorlab.datasets.smartthings import load_csv, load_pickles
from behaviorlab.errors import DataError, UnsafeFileError
from behaviorlab.sequences import published_split

DICTIONARY = """import pickle
dayofweek_dict = {'day:Mon': 0, 'day:Tue': 1, 'day:Sun': 6}
hour_dict = {'time:(0~3)': 0, 'time:(21~24)': 7}
device_dict = {'Light': 0, 'Television': 1}  # comment
device_control_dict = {
    'Light:switch on': 0,
    'Light:switch off': 1,
    'Television:volumeUp': 2,
}
if __name__ == "__main__":
    print("never run")
"""
# [weekday, hour_bin, device, control, device_control] per event; 2 sequences of 3 events per split
ARRAYS = {
    "trn": [[[0, 0, 0, 0, 0], [1, 7, 0, 1, 1], [6, 7, 1, 0, 2]], [[0, 7, 1, 0, 2], [0, 7, 1, 0, 2], [1, 0, 0, 0, 0]]],
    "vld": [[[6, 0, 0, 0, 0], [6, 0, 0, 1, 1], [6, 7, 1, 0, 2]]],
    "test": [[[1, 0, 1, 0, 2], [1, 7, 0, 0, 0], [1, 7, 0, 1, 1]]],
}
NAMES = {"weekday": {0: "Mon", 1: "Tue", 6: "Sun"}, "hour": {0: "(0~3)", 7: "(21~24)"}, "device": {0: "Light", 1: "Television"},
         "dc": {0: "Light:switch on", 1: "Light:switch off", 2: "Television:volumeUp"}}
SPLIT_NAMES = {"trn": "train", "vld": "valid", "test": "test"}


def write_original(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dictionary.py").write_text(DICTIONARY)
    for prefix, data in ARRAYS.items():
        (folder / f"{prefix}_instance_3.pkl").write_bytes(pickle.dumps(np.array(data, dtype=np.int64)))


def write_csvs(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, data in ARRAYS.items():
        lines = ["sequence_id,position,weekday,hour_bin,device,device_control"]
        for s, sequence in enumerate(data):
            for p, (w, h, d, _, dc) in enumerate(sequence):
                lines.append(f'{s},{p},{NAMES["weekday"][w]},{NAMES["hour"][h]},{NAMES["device"][d]},"{NAMES["dc"][dc]}"')
        (folder / f"{SPLIT_NAMES[prefix]}.csv").write_text("\n".join(lines) + "\n")


def test_csv_and_pickle_forms_give_the_same_log(tmp_path):
    write_csvs(tmp_path / "st")
    write_original(tmp_path / "st" / "original")
    from_csv, from_pickle = load_csv(tmp_path / "st"), load_pickles(tmp_path / "st")
    assert from_csv.frame.sort("user_id", "position").equals(from_pickle.frame.sort("user_id", "position"))
    assert from_csv.vocabulary == from_pickle.vocabulary
    assert from_csv.schema.model_copy(update={"source": None}) == from_pickle.schema.model_copy(update={"source": None})
    assert from_csv.n_users == 4 and from_csv.n_events == 12
    assert from_csv.vocabulary.describe("Television:volumeUp") == "Television: volumeUp"
    row = from_pickle.frame.filter(user_id="train-0", position=2).row(0, named=True)
    assert row == {"user_id": "train-0", "position": 2, "action": "Television:volumeUp", "weekday": "Sun",
                   "hour_bin": "(21~24)", "device": "Television", "split": "train"}


def test_registry_detects_both_forms_and_single_files(tmp_path):
    write_csvs(tmp_path / "st")
    write_original(tmp_path / "orig")
    assert load(tmp_path / "st" / "valid.csv").users() == ["valid-0"]
    assert load(tmp_path / "orig" / "test_instance_3.pkl").users() == ["test-0"]
    split = published_split(load(tmp_path / "orig"))
    assert split.train.n_users == 2 and split.valid.targets == ["Television:volumeUp"]
    assert split.test.histories == [["Television:volumeUp", "Light:switch on"]]
    assert split.test.context == {"weekday": ["Tue"], "hour_bin": ["(21~24)"]}


def test_pickle_ids_missing_from_dictionary_are_listed(tmp_path):
    write_original(tmp_path)
    bad = np.array(ARRAYS["vld"], dtype=np.int64)
    bad[0, 1, 4] = 99
    (tmp_path / "vld_instance_3.pkl").write_bytes(pickle.dumps(bad))
    with pytest.raises(DataError) as info:
        load_pickles(tmp_path / "vld_instance_3.pkl")
    assert any("id 99" in p.message and p.row == 1 for p in info.value.problems)


def test_pickle_holding_code_is_refused_through_the_loader(tmp_path):
    write_original(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    (tmp_path / "trn_instance_3.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UnsafeFileError):
        load(tmp_path)
    assert not marker.exists()


def test_wrong_array_shape_and_missing_dictionary(tmp_path):
    write_original(tmp_path)
    (tmp_path / "test_instance_3.pkl").write_bytes(pickle.dumps(np.zeros((2, 3), dtype=np.int64)))
    with pytest.raises(DataError, match="shape"):
        load_pickles(tmp_path / "test_instance_3.pkl")
    (tmp_path / "dictionary.py").write_text("hour_dict = {}\n")
    with pytest.raises(DataError, match="dictionaries"):
        load_pickles(tmp_path / "vld_instance_3.pkl")


def test_csv_bad_rows_are_reported(tmp_path):
    write_csvs(tmp_path)
    path = tmp_path / "train.csv"
    path.write_text(path.read_text().replace("0,1,Tue", "0,x,Tue").replace('"Light:switch on"', '""', 1))
    with pytest.raises(DataError) as info:
        load_csv(path)
    assert {(p.row, p.column) for p in info.value.problems} == {(2, "position"), (1, "device_control")}


@pytest.mark.parametrize(("entry", "shown"), [("'Light': 'x'", "'x'"), ("'Light': {}", "a dict"), ("'Light': 1.5", "1.5"),
                                              ("'Light': True", "True")])
def test_dictionary_ids_that_are_not_integers_are_listed(tmp_path, entry, shown):
    write_original(tmp_path)
    (tmp_path / "dictionary.py").write_text(DICTIONARY.replace("'Light': 0", entry))
    with pytest.raises(DataError, match="dictionary ids that are not integers") as info:
        load_pickles(tmp_path)
    assert [p.message for p in info.value.problems] == [f"device_dict['Light'] is {shown}, not an integer id"]
