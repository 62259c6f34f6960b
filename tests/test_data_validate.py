"""Every validation path: its message constant, file, column, example rows and counts."""

from __future__ import annotations

import pytest

from fairaudit.cli import main
from fairaudit.data import UNKNOWN, DataError, load_dataset, validate_path
from fairaudit.data import _validate as V

GOOD = "user_id,item_id,rating,timestamp\n1,a,4,100\n2,b,3,200\n"
USERS = "user_id,gender\n1,F\n2,M\n"
ITEMS = "item_id,title\na,Alpha\nb,Beta\n"


def _folder(tmp_path, interactions=GOOD, users=USERS, items=ITEMS):
    for name, text in (("interactions.csv", interactions), ("users.csv", users), ("items.csv", items)):
        if text is not None:
            (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return tmp_path


def _only(issues, message):
    found = [i for i in issues if i.message == message]
    assert len(found) == 1, [str(i) for i in issues]
    return found[0]


def _errors(path, **options):
    with pytest.raises(DataError) as info:
        load_dataset(path, **options)
    return info.value.issues


def test_valid_folder_has_no_issues(tmp_path):
    assert validate_path(_folder(tmp_path)) == []


def test_file_too_large_is_refused_before_reading(tmp_path):
    issue = _only(_errors(_folder(tmp_path), max_bytes=10), V.FILE_TOO_LARGE.format(size=len(GOOD), limit=10))
    assert (issue.severity, issue.file) == ("error", "interactions.csv")


def test_path_not_found_and_no_interactions_file(tmp_path):
    _only(_errors(tmp_path / "missing"), V.PATH_NOT_FOUND)
    (tmp_path / "other.txt").write_text("x")
    _only(_errors(tmp_path), V.NO_INTERACTIONS_FILE)
    _only(_errors(tmp_path / "other.txt"), V.UNSUPPORTED_FORMAT.format(suffix=".txt"))


def test_corrupt_parquet_is_unreadable(tmp_path):
    (tmp_path / "interactions.parquet").write_bytes(b"not parquet at all")
    issue = _errors(tmp_path)[0]
    assert issue.message.startswith(V.UNREADABLE_FILE.split("{")[0].format() + "Parquet")


def test_bad_explicit_encoding_names_the_fix(tmp_path):
    _folder(tmp_path, items="item_id,title\na,Misérables\nb,B\n".encode("latin-1"))
    issue = _only(_errors(tmp_path, encoding="utf-8"), V.BAD_ENCODING.format(encoding="utf-8"))
    assert issue.file == "items.csv"
    assert load_dataset(tmp_path, encoding="latin-1").items["title"].iat[0] == "Misérables"


def test_missing_required_columns(tmp_path):
    issues = _errors(_folder(tmp_path, interactions="user_id,rating\n1,4\n", items="item_id,name\n"))
    issue = _only(issues, V.MISSING_COLUMN.format(column="item_id", found=["rating", "user_id"]))
    assert (issue.file, issue.column) == ("interactions.csv", "item_id")


def test_empty_tables(tmp_path):
    issue = _only(_errors(_folder(tmp_path, users="user_id,gender\n")), V.EMPTY_TABLE)
    assert issue.file == "users.csv"


def test_unparseable_values_quote_file_rows(tmp_path):
    text = "user_id,item_id,rating,timestamp\n1,a,4,100\n1,b,four,2020-01-02\n2,a,3,yesterday\n,b,1,5\n2,b,,6\n"
    issues = _errors(_folder(tmp_path, interactions=text, users="user_id,age\n1,30\n2,old\n"))
    rating = _only(issues, V.UNPARSEABLE_NUMBER.format(column="rating"))
    assert (rating.file, rating.column, rating.count) == ("interactions.csv", "rating", 2)
    assert rating.examples == ("row 3: 'four'", "row 6: <empty>")
    stamp = _only(issues, V.UNPARSEABLE_TIMESTAMP)  # the ISO date in row 3 parses; "yesterday" does not
    assert stamp.examples == ("row 4: 'yesterday'",)
    missing = _only(issues, V.MISSING_ID.format(column="user_id"))
    assert missing.examples == ("row 5: <empty>",)
    age = _only(issues, V.UNPARSEABLE_NUMBER.format(column="age"))
    assert (age.file, age.examples) == ("users.csv", ("row 3: 'old'",))


def test_missing_age_is_a_warning_with_unknown_band(tmp_path):
    ds = load_dataset(_folder(tmp_path, users="user_id,age\n1,30\n2,\n"))
    assert ds.users["age_band"].tolist() == ["25-34", UNKNOWN]
    assert _only(ds.warnings, V.MISSING_ATTRIBUTE).examples == ("row 3: <empty>",)


def test_iso_dates_become_unix_seconds(tmp_path):
    ds = load_dataset(_folder(tmp_path, interactions="user_id,item_id,timestamp\n1,a,1970-01-02\n2,b,86401\n"))
    assert ds.interactions["timestamp"].tolist() == [86_400, 86_401]


def test_duplicates_keep_last_pair_and_first_id(tmp_path):
    inter = "user_id,item_id,rating\n1,a,1\n1,a,5\n2,b,3\n"
    ds = load_dataset(_folder(tmp_path, interactions=inter, items="item_id,title\na,First\na,Second\nb,B\n"))
    assert ds.interactions["rating"].tolist() == [5.0, 3.0]
    pair = _only(ds.warnings, V.DUPLICATE_PAIRS)
    assert (pair.count, pair.examples) == (1, ("row 2: 'a'",))
    ids = _only(ds.warnings, V.DUPLICATE_IDS.format(column="item_id"))
    assert (ids.file, ids.examples) == ("items.csv", ("row 3: 'a'",))
    assert ds.items["title"].tolist() == ["First", "B"]


def test_orphan_interactions_are_dropped_with_counts(tmp_path):
    inter = GOOD + "3,a,2,300\n1,z,2,300\n2,z,1,400\n"
    ds = load_dataset(_folder(tmp_path, interactions=inter))
    assert len(ds.interactions) == 2
    assert _only(ds.warnings, V.UNKNOWN_USER).examples == ("row 4: '3'",)
    item = _only(ds.warnings, V.UNKNOWN_ITEM)
    assert (item.count, item.column) == (2, "item_id")


def test_all_interactions_orphaned_is_an_error(tmp_path):
    _only(_errors(_folder(tmp_path, users="user_id,gender\n7,F\n")), V.EMPTY_TABLE)


def test_missing_attributes_become_unknown_and_single_groups_warn(tmp_path):
    ds = load_dataset(_folder(tmp_path, users="user_id,gender,tier\n1,,gold\n2,M,gold\n"))
    assert ds.users["gender"].tolist() == [UNKNOWN, "M"]
    missing = _only(ds.warnings, V.MISSING_ATTRIBUTE)
    assert (missing.file, missing.column, missing.count) == ("users.csv", "gender", 1)
    single = [i.column for i in ds.warnings if i.message.startswith("fewer than two known groups")]
    assert single == ["gender", "tier"]


def test_absent_side_tables_are_synthesised(tmp_path):
    ds = load_dataset(_folder(tmp_path, users=None, items=None))
    assert ds.users["user_id"].tolist() == ["1", "2"] and ds.items["title"].tolist() == ["a", "b"]
    _only(ds.warnings, V.NO_USERS_TABLE)
    _only(ds.warnings, V.NO_ITEMS_TABLE)


def test_cli_exit_codes_and_report(tmp_path, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    assert main(["validate", str(_folder(good))]) == 0
    _folder(bad, interactions="userId,movie,rating\n1,a,x\n")
    assert main(["validate", str(bad), "--mapping", "movie=item_id"]) == 1  # bad data (2 is bad usage)
    out = capsys.readouterr().out
    assert V.UNPARSEABLE_NUMBER.format(column="rating") in out and "row 2: 'x'" in out
    assert "1 error(s)" in out
