"""Derived attributes on hand-computed cases."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fairaudit.data import UNKNOWN, activity_level, age_band, popularity_tier, zip_region
from fairaudit.data._derive import CENSUS_REGIONS, _zip_tables


def test_census_table_covers_50_states_and_dc():
    assert len(CENSUS_REGIONS) == 51
    assert pd.Series(CENSUS_REGIONS).value_counts().to_dict() == {"South": 17, "West": 13, "Midwest": 12, "Northeast": 9}


def test_age_band_edges_are_left_closed_and_configurable():
    ages = pd.Series([0, 17, 18, 24, 25, 44.9, 45, 55, 99, -1, None])
    assert age_band(ages).tolist() == [
        "Under 18", "Under 18", "18-24", "18-24", "25-34", "35-44", "45-54", "55+", "55+", UNKNOWN, UNKNOWN,
    ]  # fmt: skip
    assert age_band(pd.Series([29, 30, 65]), edges=(30, 65)).tolist() == ["Under 30", "30-64", "65+"]


@pytest.mark.parametrize(
    "code, region",
    [("02134", "Northeast"), ("60614", "Midwest"), ("30301", "South"), ("20500", "South"), ("99501", "West"),
     (" 94043 ", "West"), ("94043-1351", "West"), ("9404", UNKNOWN), ("K1A 0B1", UNKNOWN), ("", UNKNOWN), (None, UNKNOWN)],
)  # fmt: skip
def test_zip_region(code, region):
    assert zip_region(pd.Series([code])).tolist() == [region]


def test_zip_tables_are_kept_in_the_cache_folder_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    """Built once per machine (the first data load of a fresh dashboard server pays ~1.4 s otherwise)."""
    monkeypatch.setenv("FAIRAUDIT_CACHE", str(tmp_path))
    _zip_tables.cache_clear()
    try:
        built = _zip_tables()
        (cached,) = (tmp_path / "zip_states").glob("zipcodes-*.json")
        assert json.loads(cached.read_text()) == {"exact": built[0], "prefix": built[1]}
        cached.write_text(json.dumps({"exact": {"02134": "CA"}, "prefix": {}}))  # a cache file is read as is
        _zip_tables.cache_clear()
        assert zip_region(pd.Series(["02134", "60614"])).tolist() == ["West", UNKNOWN]
        cached.write_text("{not json")  # damaged: built again, and written again
        _zip_tables.cache_clear()
        assert _zip_tables() == built and json.loads(cached.read_text())["prefix"] == built[1]
    finally:
        _zip_tables.cache_clear()


def test_activity_tertiles_with_ties_and_inactive_users():
    inter = pd.DataFrame({"user_id": ["a", "b", "b", "c", "c", "c", "d", "d", "d", "d", "d", "d"]})
    users = pd.Series(["a", "b", "c", "d", "e", "f"])  # counts 1,2,3,6,0,0 -> cuts at 0.67 and 2.33
    assert activity_level(inter, users).tolist() == ["medium", "medium", "heavy", "heavy", "light", "light"]


def test_popularity_tiers_cover_shares_and_break_ties_by_id():
    # counts: p=4, q=3, r=2, s=1 of 10, t never seen: cumulative share before p=0, q=.4, r=.7, s=.9
    inter = pd.DataFrame({"item_id": list("ppppqqqrrs")})
    items = pd.Series(["t", "s", "r", "q", "p"])
    assert popularity_tier(inter, items).tolist() == ["tail", "tail", "mid", "head", "head"]
    assert popularity_tier(inter, items, cuts=(0.3, 0.5)).tolist() == ["tail", "tail", "tail", "mid", "head"]
    tie = pd.DataFrame({"item_id": list("ab")})
    assert popularity_tier(tie, pd.Series(["b", "a"])).tolist() == ["mid", "head"]
