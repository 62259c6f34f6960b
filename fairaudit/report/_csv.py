"""CSV export that spreadsheets cannot execute (guards against formula injection)."""

from __future__ import annotations

import csv

import pandas as pd

#: First characters that make Excel, LibreOffice or Google Sheets treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _neutralise(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_csv(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """UTF-8 CSV bytes of ``frame`` in which no text cell can run as a spreadsheet formula.

    Text cells (and column names) starting with ``= + - @``, a tab or a carriage return get a
    leading apostrophe (OWASP "CSV injection" advice); numbers, including negative ones, are
    written unchanged. Every text cell is quoted, so embedded line breaks stay inside their cell.

    >>> frame = pd.DataFrame({"group": ["=HYPERLINK(\\"x\\")", "-1+2", "F"], "value": [-0.5, 1.0, 2.0]})
    >>> print(safe_csv(frame).decode())
    "group","value"
    "'=HYPERLINK(""x"")",-0.5
    "'-1+2",1.0
    "F",2.0
    <BLANKLINE>
    """
    safe = frame.copy()
    safe.columns = [_neutralise(str(c)) for c in safe.columns]
    for column in safe.columns:
        if not (pd.api.types.is_numeric_dtype(safe[column]) or pd.api.types.is_bool_dtype(safe[column])):
            safe[column] = safe[column].map(_neutralise)
    if index:
        safe.index = safe.index.map(_neutralise)
    return safe.to_csv(index=index, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")
