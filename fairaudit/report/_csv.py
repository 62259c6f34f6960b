"""CSV export that spreadsheets cannot execute (guards against formula injection).

``safe_csv`` is :func:`fairaudit.data.csv_bytes`, the one CSV writer of FairAudit: every CSV a
command, a page or an audit folder writes goes through it, and :func:`fairaudit.data.read_csv`
reads the original values back (see ``docs/input_validation.md``).
"""

from __future__ import annotations

from fairaudit.data import FORMULA_PREFIXES
from fairaudit.data import csv_bytes as safe_csv

__all__ = ["FORMULA_PREFIXES", "safe_csv"]
