"""Loaders on tiny hand-written files for every supported layout, plus MovieLens 100K."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from fairaudit.data import UNKNOWN, load_dataset, load_tables, read_columns
from fairaudit.data import _validate as V

INTERACTIONS = "user_id,item_id,rating,timestamp\n1,a,4,100\n1,b,3,200\n2,a,5,150\n3,c,2,120\n"
USERS = "user_id,gender,age,zip\n1,F,23,10001\n2,M,47,94043\n3,F,61,02134\n"
ITEMS = "item_id,title,genres,provider\na,Alpha,Action|Drama,indie\nb,Beta,Comedy,studio\nc,Gamma,Drama,studio\n"


def _write(folder, **files: str | bytes):
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def _check_small(ds):
    assert ds.summary() == {"n_users": 3, "n_items": 3, "n_interactions": 4}
    assert ds.interactions.dtypes.to_dict() == {
        "user_id": object, "item_id": object, "rating": np.float64, "timestamp": np.int64,
    }  # fmt: skip
    users = ds.users.set_index("user_id")
    assert users.loc["3", "zip"] == "02134"  # leading zero kept: ids and codes are text
    assert users["age_band"].tolist() == ["18-24", "45-54", "55+"]
    assert users["region"].tolist() == ["Northeast", "West", "Northeast"]
    assert ds.items["genres"].iat[0] == "Action|Drama"


def test_csv_folder(tmp_path):
    ds = load_dataset(_write(tmp_path, **{"interactions.csv": INTERACTIONS, "users.csv": USERS, "items.csv": ITEMS}))
    _check_small(ds)
    assert ds.warnings == ()
    assert ds.name == tmp_path.name


def test_interactions_file_finds_side_tables_beside_it(tmp_path):
    _write(tmp_path, **{"interactions.csv": INTERACTIONS, "users.csv": USERS, "items.csv": ITEMS})
    _check_small(load_dataset(tmp_path / "interactions.csv"))


def test_parquet_folder_with_numeric_zip(tmp_path):
    pd.read_csv(io.StringIO(INTERACTIONS)).to_parquet(tmp_path / "interactions.parquet")
    pd.read_csv(io.StringIO(USERS)).to_parquet(tmp_path / "users.parquet")  # zip read as int: 2134
    pd.read_csv(io.StringIO(ITEMS)).to_parquet(tmp_path / "items.parquet")
    _check_small(load_dataset(tmp_path))


def test_load_tables_from_uploads():
    uploads = [io.BytesIO(text.encode()) for text in (INTERACTIONS, USERS, ITEMS)]
    for upload, name in zip(uploads, ("i.csv", "u.csv", "it.csv")):
        upload.name = name
    ds = load_tables(*uploads)
    _check_small(ds)
    assert ds.name == "i.csv"


def test_mapping_and_aliases(tmp_path):
    _write(
        tmp_path,
        **{
            "interactions.csv": "userId,movieId,score,when\n1,a,4,100\n2,a,3,100\n",
            "users.csv": "userId,sex,zipcode,job\n1,F,10001,x\n2,M,ABCDE,y\n",
        },
    )
    ds = load_dataset(tmp_path, mapping={"when": "timestamp", "job": "occupation"})
    assert ds.interactions.columns.tolist() == ["user_id", "item_id", "rating", "timestamp"]
    assert ds.users.columns.tolist() == ["user_id", "gender", "zip", "occupation", "region", "activity"]
    # no items table: built from the interactions with title = item_id, and reported
    assert ds.items[["item_id", "title"]].values.tolist() == [["a", "a"]]
    messages = [w.message for w in ds.warnings]
    assert V.NO_ITEMS_TABLE in messages and V.UNKNOWN_REGION in messages


def test_movielens_100k_layout(tmp_path):
    flags = "|".join(["0"] * 19)
    action_drama = "|".join("1" if g in (1, 8) else "0" for g in range(19))
    _write(
        tmp_path,
        **{
            "u.data": "1\t10\t4\t881250949\n2\t10\t3\t881250950\n1\t11\t5\t881250951\n",
            "u.user": "1|24|M|technician|85711\n2|53|F|other|T8H1N\n",
            "u.item": f"10|Les Misérables (1995)|01-Jan-1995||http://x|{action_drama}\n11|Blank (1996)|||x|{flags}\n".encode(
                "latin-1"
            ),
        },
    )
    ds = load_dataset(tmp_path / "u.data")
    assert ds.items["title"].tolist() == ["Les Misérables (1995)", "Blank (1996)"]
    assert ds.items["genres"].tolist() == ["Action|Drama", UNKNOWN]
    assert ds.users["age_band"].tolist() == ["18-24", "45-54"]
    assert ds.users["region"].tolist() == ["West", UNKNOWN]
    assert ds.interactions["timestamp"].tolist() == [881250949, 881250950, 881250951]


def test_movielens_1m_layout(tmp_path):
    _write(
        tmp_path,
        **{
            "ratings.dat": "1::1193::5::978300760\n2::1193::3::978300761\n2::661::4::978300762\n",
            "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
            "movies.dat": 'ã'.encode("latin-1").join(
                [b"1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Jo", b'o "Na" (1996)::Animation|Musical\n']
            ),
        },
    )
    ds = load_dataset(tmp_path)
    assert ds.summary() == {"n_users": 2, "n_items": 2, "n_interactions": 3}
    assert ds.users["age_band"].tolist() == ["Under 18", "56+"]
    assert "age" not in ds.users
    assert ds.items["title"].tolist() == ["One Flew Over the Cuckoo's Nest (1975)", 'João "Na" (1996)']
    assert ds.items["genres"].iat[1] == "Animation|Musical"


def test_latin1_csv_falls_back_with_warning(tmp_path):
    _write(tmp_path, **{"interactions.csv": INTERACTIONS, "items.csv": "item_id,title\na,Misérables\n".encode("latin-1")})
    ds = load_dataset(tmp_path)
    assert ds.items["title"].iat[0] == "Misérables"
    assert [(w.file, w.message) for w in ds.warnings if w.message == V.ENCODING_FALLBACK] == [
        ("items.csv", V.ENCODING_FALLBACK)
    ]


def test_derived_tiers_and_activity(tmp_path):
    ds = load_dataset(_write(tmp_path, **{"interactions.csv": INTERACTIONS, "users.csv": USERS, "items.csv": ITEMS}))
    # counts a=2, b=1, c=1 of 4: a covers the first 50% -> head; b starts at 50% -> mid; c starts at 75% -> mid
    assert ds.items["popularity_tier"].tolist() == ["head", "mid", "mid"]
    assert ds.users["activity"].tolist() == ["heavy", "light", "light"]


def test_movielens_100k_official_counts(movielens_100k_path):
    ds = load_dataset(movielens_100k_path)
    assert ds.summary() == {"n_users": 943, "n_items": 1682, "n_interactions": 100_000}
    assert set(ds.users["gender"]) == {"F", "M"}
    assert ds.interactions["rating"].between(1, 5).all()
    assert {"age_band", "region", "activity"} <= set(ds.users.columns)
    assert set(ds.items["popularity_tier"]) == {"head", "mid", "tail"}
    assert ds.items.loc[ds.items["item_id"] == "1", "genres"].item() == "Animation|Children's|Comedy"


def test_read_columns_csv_tsv_parquet(tmp_path):
    (tmp_path / "a.csv").write_text("userId,movieId,rating\n1,2,3\n")
    (tmp_path / "b.tsv").write_text("u\ti\n1\t2\n")
    pd.DataFrame({"user_id": ["1"], "sex": ["F"]}).to_parquet(tmp_path / "c.parquet")
    (tmp_path / "d.csv").write_bytes("nom,préf\n1,2\n".encode("latin-1"))
    assert read_columns(tmp_path / "a.csv") == ["userId", "movieId", "rating"]
    assert read_columns(tmp_path / "b.tsv") == ["u", "i"]
    assert read_columns(tmp_path / "c.parquet") == ["user_id", "sex"]
    assert read_columns(tmp_path / "d.csv") == ["nom", "préf"]
