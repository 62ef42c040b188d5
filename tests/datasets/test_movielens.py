import pytest

from behaviorlab.datasets import load, load_user_table
from behaviorlab.errors import DataError

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t881250949\n1\t20\t2\t881250900\n2\t10\t5\t881251000\n"
ITEM = ("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "10\tToy Story\t1995\tAnimation Children's Comedy\n20\tHeat\t1995\tAction Crime Thriller\n")
USER = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t94043\n"


def write_recbole(folder, inter=INTER):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ml.inter").write_text(inter)
    (folder / "ml.item").write_text(ITEM)
    (folder / "ml.user").write_text(USER)
    return folder


def write_raw(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("1\t10\t4\t881250949\n1\t20\t2\t881250900\n2\t10\t5\t881251000\n")
    flags = {"10": [3, 4, 5], "20": [1, 6, 16]}  # genre flag positions (0 = unknown)
    lines = []
    for item, title in (("10", "Toy Story (1995)"), ("20", "Heat (1995)")):
        genre_flags = ["1" if i in flags[item] else "0" for i in range(19)]
        lines.append("|".join([item, title, "01-Jan-1995", "", "http://x"] + genre_flags))
    (folder / "u.item").write_bytes("\n".join(lines).encode("latin-1"))
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return folder


def test_recbole_and_raw_movielens_agree(tmp_path):
    recbole, raw = load(write_recbole(tmp_path / "rb")), load(write_raw(tmp_path / "raw"))
    assert recbole.frame.equals(raw.frame)
    assert dict(recbole.vocabulary.descriptions) == dict(raw.vocabulary.descriptions) == {
        "10": "Toy Story (1995) — Animation, Children's, Comedy", "20": "Heat (1995) — Action, Crime, Thriller"}
    assert recbole.action_sequences() == {"1": ["20", "10"], "2": ["10"]}
    assert recbole.schema.extras == {"rating": "float"} and recbole.schema.domain == "items"


def test_user_tables_from_both_layouts(tmp_path):
    for folder in (write_recbole(tmp_path / "rb"), write_raw(tmp_path / "raw")):
        users = load_user_table(folder)
        assert users.columns == ["user_id", "age", "gender", "occupation", "zip_code"]
        assert users.row(1) == ("2", "53", "F", "other", "94043")


def test_recbole_without_timestamp_uses_row_order(tmp_path):
    folder = write_recbole(tmp_path, inter="user_id:token\titem_id:token\n1\t20\n1\t10\n")
    log = load(folder / "ml.inter")
    assert log.time_column == "position" and log.action_sequences() == {"1": ["20", "10"]}


def test_recbole_bad_header_and_bad_rows(tmp_path):
    write_recbole(tmp_path, inter="user_id\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match="typed header"):
        load(tmp_path / "ml.inter")
    write_recbole(tmp_path, inter="user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\tgood\t881250949\n\t10\t4\tyesterday\n")
    with pytest.raises(DataError) as info:
        load(tmp_path / "ml.inter")
    assert {(p.row, p.column) for p in info.value.problems} == {(1, "rating"), (2, "user_id"), (2, "timestamp")}
