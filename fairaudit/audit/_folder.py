"""The audit folder on disk: the tables of :class:`AuditResult` and ``audit.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fairaudit.audit._config import AuditConfig

FILES = {
    "recommendations": "recommendations.parquet",
    "user_metrics": "user_metrics.parquet",
    "group_metrics": "group_metrics.csv",
    "gaps": "gaps.csv",
    "item_exposure": "item_exposure.csv",
    "meta": "audit.json",
}
_TEXT_COLUMNS = (
    "model", "attribute", "group", "metric", "reference", "reference_group", "direction", "user_attribute",
    "user_group", "item_attribute", "item_group", "browsing",
)  # fmt: skip
_MISSING_FILE = "Audit folder '{0}' lacks {1}; write it with write_audit"


@dataclass
class AuditResult:
    """The tables of one audit (see ``docs/architecture.md``, audit contract) plus ``meta`` (``audit.json``)."""

    recommendations: pd.DataFrame
    user_metrics: pd.DataFrame
    group_metrics: pd.DataFrame
    gaps: pd.DataFrame
    item_exposure: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def config(self) -> AuditConfig:
        return AuditConfig.from_dict(self.meta.get("config", {}))


def write_audit(result: AuditResult, directory: str | Path) -> Path:
    """Write the audit folder: the five tables and ``audit.json`` (see :data:`FILES`; example in :func:`run_audit`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("recommendations", "user_metrics"):
        getattr(result, name).to_parquet(directory / FILES[name], index=False)
    for name in ("group_metrics", "gaps", "item_exposure"):
        getattr(result, name).to_csv(directory / FILES[name], index=False)
    (directory / FILES["meta"]).write_text(json.dumps(result.meta, indent=1, default=str))
    return directory


def read_audit(directory: str | Path) -> AuditResult:
    """Read an audit folder written by :func:`write_audit` (text columns stay strings, floats exact).

    Raises ``FileNotFoundError`` naming the first missing file. Example in :func:`run_audit`.
    """
    directory = Path(directory)
    for file in FILES.values():
        if not (directory / file).is_file():
            raise FileNotFoundError(_MISSING_FILE.format(directory, file))
    tables = {name: pd.read_parquet(directory / FILES[name]) for name in ("recommendations", "user_metrics")}
    for name in ("group_metrics", "gaps", "item_exposure"):
        path = directory / FILES[name]
        header = pd.read_csv(path, nrows=0).columns
        text = {c: str for c in header if c in _TEXT_COLUMNS}
        numeric = {c: [""] for c in header if c not in _TEXT_COLUMNS}
        tables[name] = pd.read_csv(
            path, dtype=text, keep_default_na=False, na_values=numeric, float_precision="round_trip"
        )
    return AuditResult(**tables, meta=json.loads((directory / FILES["meta"]).read_text()))
