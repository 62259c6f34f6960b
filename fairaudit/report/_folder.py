"""The audit folder as the report sees it: the audit engine's tables plus the optional explanation files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fairaudit.audit import read_audit

_TEXT_COLUMNS = ("attribute", "value", "metric", "feature", "model")


@dataclass(frozen=True)
class AuditFolder:
    """The tables and metadata of one audit folder."""

    meta: dict[str, Any]
    group_metrics: pd.DataFrame
    gaps: pd.DataFrame
    item_exposure: pd.DataFrame
    user_metrics: pd.DataFrame
    probes: pd.DataFrame | None
    shap_drivers: pd.DataFrame | None

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.meta.get("data") or {})

    @property
    def data_fingerprint(self) -> str:
        return str(self.data.get("fingerprint", "not recorded"))

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.meta.get("config") or {})

    @property
    def k(self) -> int:
        return int(self.config.get("k", 10))

    @property
    def min_group_size(self) -> int:
        return int(self.config.get("min_group_size", 30))

    @property
    def models(self) -> list[str]:
        """Model names in audit order."""
        return list(dict.fromkeys(self.group_metrics["model"].astype(str)))

    @property
    def attributes(self) -> list[str]:
        """User attributes audited (without ``all``), in table order."""
        return [a for a in dict.fromkeys(self.group_metrics["attribute"]) if a != "all"]

    def model_meta(self, name: str) -> dict[str, Any]:
        """The audit.json entry of one model (kind, params, fingerprint, split, data_fingerprint)."""
        return dict((self.meta.get("models") or {}).get(name) or {})

    @property
    def config_fingerprint(self) -> str:
        """The recorded configuration fingerprint, else SHA-256 (16 hex) of the canonical config JSON."""
        recorded = self.meta.get("config_fingerprint")
        if recorded:
            return str(recorded)
        canonical = json.dumps(self.config, sort_keys=True, default=str).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]


def _optional_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    header = pd.read_csv(path, nrows=0).columns
    text = {c: str for c in header if c in _TEXT_COLUMNS}
    return pd.read_csv(path, dtype=text, keep_default_na=False, na_values={c: [""] for c in header if c not in text})


def read_audit_folder(path: str | Path) -> AuditFolder:
    """Load the report's inputs from ``path`` (:func:`fairaudit.audit.read_audit` plus the optional
    ``probes.csv`` and ``shap_drivers.csv``, which become ``None`` when absent)."""
    path = Path(path)
    result = read_audit(path)
    return AuditFolder(
        meta=result.meta, group_metrics=result.group_metrics, gaps=result.gaps,
        item_exposure=result.item_exposure, user_metrics=result.user_metrics,
        probes=_optional_csv(path / "probes.csv"), shap_drivers=_optional_csv(path / "shap_drivers.csv"),
    )
