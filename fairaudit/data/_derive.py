"""Derived user and item attributes: age bands, Census regions, activity levels, popularity tiers,
the item x genre matrix.

All functions are vectorised over whole columns and return string Series with an explicit
``"unknown"`` group for values that cannot be mapped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fairaudit.data._output import cache_root, write_bytes_atomic
from fairaudit.data._schema import GENRE_SEP, UNKNOWN

#: Default age-band edges: ``[0, 18)`` -> "Under 18", ``[18, 25)`` -> "18-24", ..., ``[55, inf)`` -> "55+".
AGE_EDGES = (18, 25, 35, 45, 55)
#: MovieLens 1M age codes -> band labels (the code is the lower bound of its bucket).
ML1M_AGE_BANDS = {
    1: "Under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56+",
}
#: Share of interactions covered by the head and head+mid popularity tiers.
POPULARITY_CUTS = (0.5, 0.8)
ACTIVITY_LEVELS = ("light", "medium", "heavy")
POPULARITY_TIERS = ("head", "mid", "tail")

#: US Census regions by state postal code (50 states + DC).
CENSUS_REGIONS = {
    **dict.fromkeys(["CT", "ME", "MA", "NH", "RI", "VT", "NJ", "NY", "PA"], "Northeast"),
    **dict.fromkeys(["IL", "IN", "MI", "OH", "WI", "IA", "KS", "MN", "MO", "NE", "ND", "SD"], "Midwest"),
    **dict.fromkeys(
        ["DE", "DC", "FL", "GA", "MD", "NC", "SC", "VA", "WV", "AL", "KY", "MS", "TN", "AR", "LA", "OK", "TX"],
        "South",
    ),
    **dict.fromkeys(
        ["AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY", "AK", "CA", "HI", "OR", "WA"],
        "West",
    ),
}


def age_band_labels(edges: Sequence[int] = AGE_EDGES) -> list[str]:
    """Labels of the bands cut at ``edges``.

    >>> age_band_labels((18, 25))
    ['Under 18', '18-24', '25+']
    """
    edges = list(edges)
    inner = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
    return [f"Under {edges[0]}", *inner, f"{edges[-1]}+"]


def age_band(age: pd.Series, edges: Sequence[int] = AGE_EDGES) -> pd.Series:
    """Bin numeric ages into labelled bands; non-numeric or missing ages -> ``"unknown"``.

    Bands are left-closed: with the default edges 25 falls in ``"25-34"``.

    >>> age_band(pd.Series([17, 25, 60, None, "x"])).tolist()
    ['Under 18', '25-34', '55+', 'unknown', 'unknown']
    """
    edges = sorted(int(e) for e in edges)
    numeric = pd.to_numeric(age, errors="coerce").to_numpy(dtype=float)
    labels = np.array(age_band_labels(edges) + [UNKNOWN], dtype=object)
    code = np.searchsorted(np.asarray(edges, dtype=float), numeric, side="right")
    code[np.isnan(numeric) | (numeric < 0)] = len(labels) - 1
    return pd.Series(labels[code], index=age.index, name="age_band", dtype=object)


@functools.cache
def _zip_tables() -> tuple[dict[str, str], dict[str, str]]:
    """ZIP -> state and 3-digit ZIP prefix -> most common state, built from ``zipcodes`` once per machine.

    Building them reads all 42,000 ZIP records (~1.4 s, most of a dashboard's first data load), so the two
    maps are kept in the cache folder (:func:`cache_root`, one JSON per ``zipcodes`` version) and read
    from there afterwards (~30 ms). An unwritable or damaged cache only means building them again.
    """
    import zipcodes

    cached = cache_root() / "zip_states" / f"zipcodes-{zipcodes.__version__}.json"
    try:
        document = json.loads(cached.read_text(encoding="utf-8"))
        return dict(document["exact"]), dict(document["prefix"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    exact = {z["zip_code"]: z["state"] for z in zipcodes.list_all() if z["state"] in CENSUS_REGIONS}
    table = pd.DataFrame({"p": [z[:3] for z in exact], "state": list(exact.values())})
    pairs = table.value_counts(["p", "state"]).reset_index()
    prefix = pairs.sort_values(["p", "count", "state"], ascending=[True, False, True]).drop_duplicates("p")
    prefixes = dict(zip(prefix["p"], prefix["state"]))
    try:
        write_bytes_atomic(cached, json.dumps({"exact": exact, "prefix": prefixes}).encode())
    except OSError:
        pass
    return exact, prefixes


def zip_region(zip_code: pd.Series) -> pd.Series:
    """US Census region (Northeast/Midwest/South/West) of 5-digit ZIP codes.

    A ZIP is looked up in the ``zipcodes`` table; ZIPs absent from it (retired or PO-box
    codes) fall back to the state of their 3-digit prefix. ``"12345-6789"`` ZIP+4 forms use
    the first five digits. Anything else (foreign postcodes, letters, missing) -> ``"unknown"``.

    >>> zip_region(pd.Series(["10001", "94043", "60614-1234", "T8H1B", None])).tolist()
    ['Northeast', 'West', 'Midwest', 'unknown', 'unknown']
    """
    exact, prefix = _zip_tables()
    text = zip_code.astype("string").str.strip()
    five = text.str.extract(r"^(\d{5})(?:-\d{4})?$", expand=False)
    state = five.map(exact).fillna(five.str[:3].map(prefix))
    region = state.map(CENSUS_REGIONS).fillna(UNKNOWN).astype(object)
    return pd.Series(region.to_numpy(), index=zip_code.index, name="region", dtype=object)


def activity_level(interactions: pd.DataFrame, user_ids: pd.Series) -> pd.Series:
    """Light / medium / heavy users by tertiles of their interaction counts.

    Cut points are the 1/3 and 2/3 quantiles of per-user counts over ``user_ids`` (users
    without interactions count 0): ``count <= q1/3`` -> light, ``count <= q2/3`` -> medium,
    else heavy. Ties at a cut stay in the lower level, so levels can be unequal in size.

    >>> inter = pd.DataFrame({"user_id": ["a"] + ["b"] * 2 + ["c"] * 5, "item_id": list("abcdefgh")})
    >>> activity_level(inter, pd.Series(["a", "b", "c"])).tolist()
    ['light', 'medium', 'heavy']
    """
    counts = user_ids.map(interactions["user_id"].value_counts()).fillna(0).to_numpy(dtype=float)
    cuts = np.quantile(counts, [1 / 3, 2 / 3]) if counts.size else np.zeros(2)
    code = np.searchsorted(cuts, counts, side="left")
    return pd.Series(np.array(ACTIVITY_LEVELS, dtype=object)[code], index=user_ids.index, name="activity")


def popularity_tier(
    interactions: pd.DataFrame, item_ids: pd.Series, cuts: tuple[float, float] = POPULARITY_CUTS
) -> pd.Series:
    """Head / mid / tail items by cumulative share of interactions.

    Items are sorted by interaction count (descending, ties by ``item_id``). An item is
    ``head`` while the cumulative share *before* it is below ``cuts[0]`` (default: the most
    popular items that together cover the first 50% of interactions), ``mid`` while below
    ``cuts[1]`` (the next 30%), else ``tail`` — including items never interacted with.

    >>> inter = pd.DataFrame({"user_id": list("abcdefghij"), "item_id": list("xxxxxyyyzw")})
    >>> popularity_tier(inter, pd.Series(["x", "y", "z", "w", "v"])).tolist()
    ['head', 'mid', 'tail', 'tail', 'tail']
    """
    counts = item_ids.map(interactions["item_id"].value_counts()).fillna(0).to_numpy(dtype=float)
    return popularity_tier_from_counts(counts, item_ids, cuts)


def popularity_tier_from_counts(
    counts: np.ndarray, item_ids: pd.Series, cuts: tuple[float, float] = POPULARITY_CUTS
) -> pd.Series:
    """:func:`popularity_tier` from each item's interaction count (one per ``item_ids`` entry).

    For engines that count interactions where they live (Spark) and bring only the catalogue here.

    >>> popularity_tier_from_counts(np.array([5.0, 3.0, 1.0, 1.0, 0.0]), pd.Series(list("xyzwv"))).tolist()
    ['head', 'mid', 'tail', 'tail', 'tail']
    """
    counts = np.asarray(counts, dtype=float)
    order = np.lexsort((item_ids.astype(str).to_numpy(), -counts))
    before = np.concatenate([[0.0], np.cumsum(counts[order])[:-1]]) / max(counts.sum(), 1.0)
    code_sorted = np.searchsorted(np.asarray(cuts, dtype=float), before, side="right")
    code_sorted[counts[order] == 0] = 2
    code = np.empty_like(code_sorted)
    code[order] = code_sorted
    return pd.Series(np.array(POPULARITY_TIERS, dtype=object)[code], index=item_ids.index, name="popularity_tier")


def genre_matrix(items: pd.DataFrame, *, normalise: bool = False) -> pd.DataFrame:
    """Multi-hot item x genre matrix from the ``genres`` column (``"A|B"``), sorted genre columns.

    With ``normalise=True`` each row is divided by its number of genres, i.e. ``p(g|i) = 1/|genres(i)|``
    (Steck 2018). Items with an empty genre string get the genre ``"unknown"``.

    >>> genre_matrix(pd.DataFrame({"item_id": ["x", "y"], "genres": ["B|A", ""]})).to_dict("list")
    {'A': [1.0, 0.0], 'B': [1.0, 0.0], 'unknown': [0.0, 1.0]}
    """
    genres = items["genres"].fillna("").astype(str).str.strip().replace("", UNKNOWN)
    multi = genres.str.get_dummies(sep=GENRE_SEP).astype(float)
    multi = multi.drop(columns=[c for c in multi.columns if not c.strip()])
    multi = multi[sorted(multi.columns)]
    multi.index = pd.Index(items["item_id"].astype(str), name="item_id")
    if normalise:
        multi = multi.div(multi.sum(axis=1), axis=0).fillna(0.0)
    return multi
