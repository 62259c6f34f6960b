"""Counterfactual rewriting of user texts: swap gender markers (pronouns, gendered nouns, names).

A rewrite is one regular expression over every text at once (``Series.str.replace``): whole words
only (``\\b`` on both sides, so "he" never matches inside "the" or "she"), case-insensitive, and the
replacement takes the case of the word it replaces ("She" -> "He", "SHE" -> "HE", "she" -> "he").
Longer entries are tried first, so a two-word marker ("young woman") wins over its parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pandas as pd

_EMPTY_SWAPS = "The rewrite needs at least one marker to replace; got an empty word list"
_BAD_SWAP = "Marker '{0}' -> '{1}': both sides must be non-empty words without leading or trailing spaces"


def swap_map(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Both directions of word pairs, lower-cased: ``[("she", "he")]`` -> ``{"she": "he", "he": "she"}``.

    A word already mapped keeps its first mapping, so an ambiguous word (``her`` -> ``him`` or
    ``his``) takes the pair listed first and a later pair cannot send it elsewhere.

    >>> swap_map([("she", "he"), ("her", "his"), ("her", "him")])
    {'she': 'he', 'he': 'she', 'her': 'his', 'his': 'her', 'him': 'her'}
    """
    out: dict[str, str] = {}
    for a, b in pairs:
        for word, other in ((a, b), (b, a)):
            out.setdefault(str(word).lower(), str(other).lower())
    return out


def _pattern(swaps: Mapping[str, str]) -> re.Pattern:
    if not swaps:
        raise ValueError(_EMPTY_SWAPS)
    for word, other in swaps.items():
        if not word or not other or word != word.strip() or other != other.strip():
            raise ValueError(_BAD_SWAP.format(word, other))
    words = sorted(swaps, key=lambda w: (-len(w), w))
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


def _cased(word: str, replacement: str) -> str:
    """``replacement`` in the case of ``word``: upper, title or lower."""
    if len(word) > 1 and word.isupper():
        return replacement.upper()
    if word[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def rewrite_texts(texts: pd.Series, swaps: Mapping[str, str]) -> tuple[pd.Series, pd.Series]:
    """Each text with every marker of ``swaps`` replaced, and the number of markers replaced in it.

    Parameters
    ----------
    texts : Series of str
        The texts (any index; kept).
    swaps : mapping
        Marker (matched case-insensitively, whole words) -> its replacement (lower case); see
        :func:`swap_map` for both directions of word pairs.

    Returns
    -------
    (Series, Series)
        The rewritten texts and the per-text count of replaced markers (int), both on ``texts``' index.
        A text without markers comes back unchanged, character for character.

    Examples
    --------
    >>> swaps = swap_map([("she", "he"), ("her", "his"), ("mother", "father"), ("Maria", "John")])
    >>> new, n = rewrite_texts(pd.Series(["She told HER Mother: Maria's there.", "The theme is shepherds."]), swaps)
    >>> new.tolist(), n.tolist()
    (["He told HIS Father: John's there.", 'The theme is shepherds.'], [4, 0])
    """
    lowered = {str(k).lower(): str(v).lower() for k, v in swaps.items()}
    pattern = _pattern(lowered)
    texts = texts.astype(str)
    counts = texts.str.count(pattern).astype(int)
    rewritten = texts.str.replace(pattern, lambda m: _cased(m.group(0), lowered[m.group(0).lower()]), regex=True)
    return rewritten, counts
