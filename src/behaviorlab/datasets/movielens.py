"""MovieLens, in RecBole atomic files (`.inter`, `.item`, `.user`, typed `name:type` headers) or raw
(`u.data`, `u.item`, `u.user`).

action = the item id token; the vocabulary describes each item as "title (year) — genre, genre", so
prompts and text embeddings read real titles. User attributes (age, gender, occupation, zip) are a
side table: `load_user_table(path)` -> one row per user_id, all columns text. Only the EventLog travels
between packages; the profile code reads the user table when it wants real demographics.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from behaviorlab.datasets.files import first_line, require_file
from behaviorlab.datasets.mapping import ColumnMapping, event_log_from_frame
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import USER, EventLog

# RecBole field types -> EventLog extra types; *_seq fields stay text (space-separated tokens).
_RECBOLE_TYPES = {"token": "str", "token_seq": "str", "float": "float", "float_seq": "str"}
RECBOLE_USER, RECBOLE_ITEM, RECBOLE_TIME = "user_id", "item_id", "timestamp"
# The 19 genres of u.item's flag columns, in order (u.genre lists the same when present).
ML_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
             "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")


def item_description(title: str, year: str | None, genres: list[str]) -> str:
    """'Toy Story', '1995', ['Animation', 'Comedy'] -> 'Toy Story (1995) — Animation, Comedy'."""
    title = title.strip()
    if year and not title.endswith(f"({year})"):
        title = f"{title} ({year})"
    genres = [g for g in genres if g and g != "unknown"]
    return f"{title} — {', '.join(genres)}" if genres else title


# ---------------------------------------------------------------- RecBole atomic files


def recbole_header(path: Path) -> dict[str, str]:
    """{'user_id': 'token', ...} from a typed header line; every malformed field is reported."""
    fields = first_line(require_file(path, "RecBole file")).split("\t")
    header: dict[str, str] = {}
    problems = []
    for field in fields:
        name, sep, kind = field.partition(":")
        if not sep or kind not in _RECBOLE_TYPES:
            problems.append(Problem(f"header field {field!r} is not name:type with type in {sorted(_RECBOLE_TYPES)}"))
        else:
            header[name] = kind
    if problems:
        raise DataError(f"{path} has no RecBole typed header", problems,
                        hint="RecBole atomic files start with a tab-separated header like user_id:token item_id:token.")
    return header


def _scan_recbole(path: Path) -> pl.LazyFrame:
    header = recbole_header(path)
    return pl.scan_csv(path, separator="\t", infer_schema=False, has_header=False, skip_rows=1, quote_char=None,
                       new_columns=list(header), encoding="utf8-lossy")


def _atomic_files(path: Path) -> tuple[Path, Path | None, Path | None]:
    """(.inter, .item or None, .user or None); a folder must hold exactly one .inter file."""
    if path.is_dir():
        inters = sorted(path.glob("*.inter"))
        if len(inters) != 1:
            raise DataError(f"Expected one .inter file in {path}, found {len(inters)}", hint="Point at the .inter file itself.")
        path = inters[0]
    item, user = path.with_suffix(".item"), path.with_suffix(".user")
    return path, item if item.is_file() else None, user if user.is_file() else None


def is_recbole(path: Path) -> bool:
    return path.suffix == ".inter" or (path.is_dir() and any(path.glob("*.inter")))


def recbole_item_descriptions(path: Path) -> dict[str, str]:
    """Item token -> "title (year) — genres" (or the item's other fields joined, for non-movie data)."""
    frame = _scan_recbole(path).collect()
    if RECBOLE_ITEM not in frame.columns:
        raise DataError(f"{path} has no item_id column", [Problem("missing", column=RECBOLE_ITEM)])
    title = next((c for c in ("movie_title", "title", "name") if c in frame.columns), None)
    year = next((c for c in ("release_year", "year") if c in frame.columns), None)
    genres = next((c for c in ("class", "genre", "genres", "categories") if c in frame.columns), None)
    others = [c for c in frame.columns if c != RECBOLE_ITEM]
    out = {}
    for row in frame.iter_rows(named=True):
        if title:
            out[row[RECBOLE_ITEM]] = item_description(row[title] or row[RECBOLE_ITEM], row[year] if year else None,
                                                      (row[genres] or "").split() if genres else [])
        else:
            out[row[RECBOLE_ITEM]] = "; ".join(f"{c}: {row[c]}" for c in others if row[c]) or row[RECBOLE_ITEM]
    return out


def load_recbole(path: Path) -> EventLog:
    inter, item, _ = _atomic_files(path)
    header = recbole_header(inter)
    extras = {name: _RECBOLE_TYPES[kind] for name, kind in header.items() if name not in (RECBOLE_USER, RECBOLE_ITEM, RECBOLE_TIME)}
    mapping = ColumnMapping(user=RECBOLE_USER, action=RECBOLE_ITEM, time=RECBOLE_TIME,
                            time_format="epoch_s" if RECBOLE_TIME in header else "row_order",
                            extras=extras, name=inter.stem, domain="items", action_meaning="item")
    descriptions = recbole_item_descriptions(item) if item else None
    return event_log_from_frame(_scan_recbole(inter), mapping, source=str(inter), descriptions=descriptions)


# ---------------------------------------------------------------- raw MovieLens (ml-100k layout)


def _raw_folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def is_raw_movielens(path: Path) -> bool:
    return path.name == "u.data" or (path.is_dir() and (path / "u.data").is_file())


def raw_item_descriptions(path: Path) -> dict[str, str]:
    """u.item: id|title (year)|release date|video date|url|19 genre flags (Latin-1 text)."""
    genre_file = path.parent / "u.genre"
    genres = list(ML_GENRES)
    if genre_file.is_file():
        pairs = [line.rsplit("|", 1) for line in genre_file.read_text(encoding="latin-1").splitlines() if "|" in line]
        genres = [name for name, _ in sorted(pairs, key=lambda p: int(p[1]))]
    out: dict[str, str] = {}
    problems = []
    for number, line in enumerate(require_file(path, "u.item").read_text(encoding="latin-1").splitlines(), 1):
        fields = line.split("|")
        if len(fields) != 5 + len(genres):
            problems.append(Problem(f"expected {5 + len(genres)} '|' fields, got {len(fields)}", row=number))
            continue
        flagged = [g for g, flag in zip(genres, fields[5:], strict=True) if flag.strip() == "1"]
        match = re.search(r"\((\d{4})\)\s*$", fields[1])
        out[fields[0].strip()] = item_description(fields[1], match.group(1) if match else None, flagged)
    if problems:
        raise DataError(f"{path}: unreadable lines", problems, hint="u.item lines are id|title|date|video date|url|genre flags.")
    return out


def load_raw_movielens(path: Path) -> EventLog:
    folder = _raw_folder(path)
    data = require_file(folder / "u.data", "u.data")
    frame = pl.scan_csv(data, separator="\t", has_header=False, infer_schema=False, quote_char=None,
                        new_columns=["user_id", "item_id", "rating", "timestamp"])
    mapping = ColumnMapping(user="user_id", action="item_id", time="timestamp", time_format="epoch_s",
                            extras={"rating": "float"}, name="movielens", domain="items", action_meaning="item")
    item_file = folder / "u.item"
    descriptions = raw_item_descriptions(item_file) if item_file.is_file() else None
    return event_log_from_frame(frame, mapping, source=str(data), descriptions=descriptions)


# ---------------------------------------------------------------- user attributes


def load_user_table(path: Path) -> pl.DataFrame:
    """User attributes from a RecBole .user file or a raw u.user beside the data; user_id + text columns."""
    if is_raw_movielens(path):
        users = require_file(_raw_folder(path) / "u.user", "u.user")
        frame = pl.read_csv(users, separator="|", has_header=False, infer_schema=False, encoding="utf8-lossy",
                            new_columns=[USER, "age", "gender", "occupation", "zip_code"])
    else:
        _, _, user = _atomic_files(path)
        if user is None:
            raise DataError(f"No .user file beside {path}", hint="User attributes need a RecBole .user or a raw u.user file.")
        frame = _scan_recbole(user).collect()
        if RECBOLE_USER not in frame.columns:
            raise DataError(f"{user} has no user_id column", [Problem("missing", column=RECBOLE_USER)])
        frame = frame.rename({RECBOLE_USER: USER})
    return frame.with_columns(pl.col(USER).str.strip_chars())
