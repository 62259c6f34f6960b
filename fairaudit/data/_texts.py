"""User texts: the optional fourth table (reviews, comments, messages), its validation and the marker words.

A dataset folder may hold ``user_texts.csv`` (or ``.tsv``/``.parquet``) beside the interactions,
with columns ``user_id, text`` and optionally ``item_id`` (the item a review is about),
``timestamp`` (Unix seconds or an ISO date) and ``kind`` (``review``, ``message`` ...). It is read
by the same reader as the other tables (encoding, size limit, row numbers) and checked here once:

* missing ``user_id``/``text`` column, empty table, empty user id, unparseable timestamp -> error;
* empty texts (blank after stripping) -> warning, dropped;
* users not in the users table (without one: not in the interactions) -> warning, dropped;
* an ``item_id`` not in the items table -> warning, the item is cleared (the text is kept);
* texts longer than :data:`MAX_TEXT_CHARS` characters -> warning, truncated to it (the packaged
  encoder reads only the first 128 tokens, about 500 characters, anyway);
* an empty ``kind`` -> warning, set to ``"unknown"``.

:data:`GENDER_MARKER_PAIRS` is the one documented list of gender-marker words: the sample generator
writes markers only from it, and text counterfactuals swap its pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.data import _validate as V
from fairaudit.data._schema import Dataset, ValidationIssue

#: Longest text kept, in characters; longer texts are truncated with a warning.
MAX_TEXT_CHARS = 2000
#: File stem of the texts table in a dataset folder (``user_texts.csv``, ``.tsv``, ``.parquet``).
TEXTS_STEM = "user_texts"
TEXT_COLUMNS = ("user_id", "text")
TEXT_OPTIONAL = ("item_id", "timestamp", "kind")

EMPTY_TEXT = "empty texts; dropped them"
UNKNOWN_TEXT_USER = "texts whose user_id is not in the users table (or, without one, in the interactions); dropped them"
UNKNOWN_TEXT_ITEM = "item_id not in the items table; cleared it (the text is kept)"
LONG_TEXT = f"texts longer than {MAX_TEXT_CHARS:,} characters; truncated them to {MAX_TEXT_CHARS:,}"

#: Feminine- and masculine-coded names, paired by position (part of :data:`GENDER_MARKER_PAIRS`).
FEMALE_NAMES = ("Anna", "Maria", "Sofia", "Emma", "Laura", "Julia", "Clara", "Elena")
MALE_NAMES = ("Adam", "Mario", "Simon", "Ethan", "Paul", "Julian", "Carl", "Daniel")
#: (feminine-coded, masculine-coded) lowercase words; a counterfactual rewrite replaces each word by its
#: partner at word boundaries, in either direction, keeping the capitalisation. Pronouns, gendered nouns, names.
GENDER_MARKER_PAIRS: tuple[tuple[str, str], ...] = (
    ("she", "he"), ("her", "his"), ("herself", "himself"),
    ("woman", "man"), ("women", "men"), ("girl", "boy"), ("lady", "gentleman"),
    ("mother", "father"), ("mom", "dad"), ("mum", "dad"), ("wife", "husband"), ("girlfriend", "boyfriend"),
    ("sister", "brother"), ("daughter", "son"), ("aunt", "uncle"), ("grandmother", "grandfather"),
    ("mrs", "mr"), ("ms", "mr"),
    *zip((n.lower() for n in FEMALE_NAMES), (n.lower() for n in MALE_NAMES)),
)  # fmt: skip


def validate_texts(
    raw: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, file: str
) -> tuple[pd.DataFrame, list[ValidationIssue]]:
    """Check and repair a raw texts table against the clean users and items tables.

    ``raw`` is indexed by file row number (as ``read_table`` returns it). Returns the clean table
    (``user_id``, ``text`` and the optional columns present) and every issue found; with any
    ``error`` the table must not be used.

    >>> raw = pd.DataFrame({"user_id": ["u1", "u9", "u1"], "text": ["I love horror.", "Hi", " "]}, index=[2, 3, 4])
    >>> texts, issues = validate_texts(raw, pd.DataFrame({"user_id": ["u1"]}), pd.DataFrame({"item_id": []}), "t.csv")
    >>> texts["text"].tolist(), [i.message for i in issues] == [EMPTY_TEXT, UNKNOWN_TEXT_USER]
    (['I love horror.'], True)
    """
    issues = V._required(raw, TEXT_COLUMNS, file)
    if issues:
        return raw, issues
    if raw.empty:
        return raw, [ValidationIssue("error", file, None, V.EMPTY_TABLE)]
    texts = raw[[c for c in (*TEXT_COLUMNS, *TEXT_OPTIONAL) if c in raw]].copy()
    V._clean_ids(texts, "user_id", file, issues)
    text = texts["text"].astype("string").str.strip()
    empty = (text.isna() | (text == "")).to_numpy()
    if empty.any():
        issues.append(V.make_issue("warning", file, "text", EMPTY_TEXT, texts, empty))
    texts["text"] = text.fillna("").astype(object)
    if "timestamp" in texts:
        texts["timestamp"] = V._to_timestamp(texts, file, issues)
    if "kind" in texts:
        texts = V._attributes(texts, "user_id", file, ("text", "item_id", "timestamp"), issues)
    texts = texts[~empty]
    orphan = ~texts["user_id"].isin(users["user_id"]).to_numpy()
    if orphan.any():
        issues.append(V.make_issue("warning", file, "user_id", UNKNOWN_TEXT_USER, texts, orphan))
        texts = texts[~orphan]
    if "item_id" in texts:
        item = texts["item_id"].astype("string").str.strip().fillna("")
        unknown = ((item != "") & ~item.isin(items["item_id"])).to_numpy()
        if unknown.any():
            issues.append(V.make_issue("warning", file, "item_id", UNKNOWN_TEXT_ITEM, texts, unknown))
        texts["item_id"] = item.where(~unknown, "").astype(object)
    long = (texts["text"].str.len() > MAX_TEXT_CHARS).to_numpy()
    if long.any():
        issues.append(V.make_issue("warning", file, "text", LONG_TEXT, texts.assign(text=texts["text"].str[:60]), long))
        texts["text"] = texts["text"].str.slice(0, MAX_TEXT_CHARS)
    if texts.empty and not any(i.severity == "error" for i in issues):
        issues.append(ValidationIssue("warning", file, None, "no usable texts left; the dataset has no texts"))
    return texts.reset_index(drop=True), issues


def text_summary(dataset: Dataset) -> dict:
    """Coverage of the texts table, for the Data page and reports (all zeros without texts).

    >>> texts = pd.DataFrame({"user_id": ["a", "a", "b"], "text": ["x", "y", "z"]})
    >>> ds = Dataset(pd.DataFrame(columns=["user_id", "item_id"]), pd.DataFrame({"user_id": list("abcd")}),
    ...              pd.DataFrame(columns=["item_id", "title"]), texts=texts)
    >>> s = text_summary(ds); s["n_texts"], s["n_users_with_texts"], s["share_users_with_texts"], s["texts_per_user_max"]
    (3, 2, 0.5, 2)
    """
    texts = dataset.texts
    n_users = len(dataset.users)
    if texts is None or texts.empty:
        return {"n_texts": 0, "n_users_with_texts": 0, "share_users_with_texts": 0.0, "texts_per_user_mean": 0.0,
                "texts_per_user_median": 0.0, "texts_per_user_max": 0, "characters_mean": 0.0, "kinds": {}}  # fmt: skip
    per_user = texts["user_id"].value_counts()
    kinds = texts["kind"].value_counts().to_dict() if "kind" in texts else {}
    return {
        "n_texts": int(len(texts)),
        "n_users_with_texts": int(len(per_user)),
        "share_users_with_texts": round(len(per_user) / max(n_users, 1), 4),
        "texts_per_user_mean": round(float(per_user.mean()), 2),
        "texts_per_user_median": float(per_user.median()),
        "texts_per_user_max": int(per_user.max()),
        "characters_mean": round(float(texts["text"].str.len().mean()), 1),
        "kinds": {str(k): int(v) for k, v in kinds.items()},
    }


def text_examples(dataset: Dataset, n: int = 5, seed: int = 0) -> pd.DataFrame:
    """``n`` example rows of the texts table (a reproducible random sample; empty frame without texts).

    >>> texts = pd.DataFrame({"user_id": ["a", "b"], "text": ["x", "y"]})
    >>> ds = Dataset(pd.DataFrame(), pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame(), texts=texts)
    >>> len(text_examples(ds, n=5))
    2
    """
    if dataset.texts is None:
        return pd.DataFrame(columns=list(TEXT_COLUMNS))
    texts = dataset.texts
    return texts.sample(n=min(n, len(texts)), random_state=seed).sort_index().reset_index(drop=True)


def texts_per_user(dataset: Dataset) -> pd.Series:
    """Number of texts of every user of ``dataset.users`` (0 for users without texts), indexed by user id.

    >>> ds = Dataset(pd.DataFrame(), pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame(),
    ...              texts=pd.DataFrame({"user_id": ["a", "a"], "text": ["x", "y"]}))
    >>> texts_per_user(ds).tolist()
    [2, 0]
    """
    ids = dataset.users["user_id"]
    counts = dataset.texts["user_id"].value_counts() if dataset.texts is not None else pd.Series(dtype=np.int64)
    return pd.Series(ids.map(counts).fillna(0).astype(np.int64).to_numpy(), index=ids.to_numpy(), name="n_texts")
