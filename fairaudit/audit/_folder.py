"""The audit folder on disk: :class:`AuditResult` reads, validates and writes every table and ``audit.json``.

:func:`write_audit` / :func:`read_audit` are :meth:`AuditResult.write` / :meth:`AuditResult.read`.
Table files and their columns come from :data:`fairaudit.audit._tables.TABLES`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fairaudit.audit._config import ALL, AuditConfig
from fairaudit.audit._tables import TABLES, TableSchema, match
from fairaudit.data import csv_bytes, read_csv, replacing_folder

#: Files every audit folder holds (table name -> file name; ``meta`` is ``audit.json``).
FILES = {**{name: s.file for name, s in TABLES.items() if not s.optional}, "meta": "audit.json"}
#: Files an audit folder may hold (field of :class:`AuditResult` -> file name); absent ones are ``None``.
OPTIONAL_FILES = {**{name: s.file for name, s in TABLES.items() if s.optional}, "explanations": "explanations.json"}

_MISSING_FILE = "Audit folder '{0}' lacks {1}; write it with write_audit"
_UNREADABLE = "Audit folder '{0}': {1} cannot be read ({2}); write the folder again with write_audit"
_NOT_AN_OBJECT = "Audit folder '{0}': {1} must hold a JSON object; got {2}"
_NO_CONFIG = "Audit folder '{0}': {1} must hold a 'config' mapping (the AuditConfig); got {2}"
_MISSING_COLUMN = "Audit folder '{0}': {1} lacks column '{2}'; expected columns {3}"
_NOT_NUMERIC = "Audit folder '{0}': column '{2}' of {1} must be numeric; found {3!r}"
_NOT_FLAG = "Audit folder '{0}': column '{2}' of {1} must hold True/False; found {3!r}"
_UNKNOWN_TABLE = "Unknown audit table '{0}'; expected one of {1}"
_NO_TABLE = "This audit holds no {1} (table '{0}')"


class AuditFolderError(ValueError):
    """An audit folder that does not follow the contract (the message names folder, file and column)."""

    __module__ = "fairaudit.audit"


class MissingAuditFileError(AuditFolderError, FileNotFoundError):
    """A required file of the audit folder is absent."""

    __module__ = "fairaudit.audit"


@dataclass
class AuditResult:
    """The tables of one audit (see ``docs/architecture.md``, audit contract) plus ``meta`` (``audit.json``).

    The five required tables come from :func:`~fairaudit.audit.run_audit`; the optional ones
    (``None`` when absent) from :func:`fairaudit.compare.add_comparison` (``comparison``,
    ``verdicts``) and :func:`fairaudit.explain.add_explanations_to_audit` (``probes``,
    ``shap_drivers``, ``gap_decomposition``, ``explanations`` = the settings of ``explanations.json``).
    :meth:`write` and :meth:`read` move all of it to and from an audit folder. For writing, a Parquet
    table may also be the ``Path`` of a Parquet dataset folder written elsewhere (the Spark engine's
    partitioned ``user_metrics.parquet``); it is copied into the folder (hard links where the file
    system allows), and :meth:`read` reads such a folder like a file.
    """

    recommendations: pd.DataFrame | Path
    user_metrics: pd.DataFrame | Path
    group_metrics: pd.DataFrame
    gaps: pd.DataFrame
    item_exposure: pd.DataFrame
    meta: dict = field(default_factory=dict)
    probes: pd.DataFrame | None = None
    shap_drivers: pd.DataFrame | None = None
    gap_decomposition: pd.DataFrame | None = None
    explanations: dict | None = None
    comparison: pd.DataFrame | None = None
    verdicts: pd.DataFrame | None = None
    #: The FaiRLLM/CFaiRLLM probe of LLM recommenders (``fairllm.csv``, :func:`fairaudit.explain.fairllm_probe`).
    fairllm: pd.DataFrame | None = None
    robustness: pd.DataFrame | None = None
    #: Audits over time (fairaudit.dynamics.add_periods_to_audit): group metrics per window, gap trends, exposure drift.
    period_metrics: pd.DataFrame | None = None
    period_trends: pd.DataFrame | None = None
    exposure_drift: pd.DataFrame | None = None
    #: The audit of text profiles (fairaudit.profiles.run_profile_audit): accuracy with vs without texts,
    #: attribute leakage of the profile vectors, text counterfactuals.
    profile_accuracy: pd.DataFrame | None = None
    profile_leakage: pd.DataFrame | None = None
    text_counterfactual: pd.DataFrame | None = None
    #: Membership-inference AUC by user group (fairaudit.privacy.membership_inference, ``python -m fairaudit privacy``).
    mia: pd.DataFrame | None = None
    #: Accuracy and exposure lost per group under DP training (fairaudit.privacy.privacy_cost, ``privacy-cost``).
    privacy_cost: pd.DataFrame | None = None

    # ---- what the folder says about itself -------------------------------------------------
    @property
    def config(self) -> AuditConfig:
        """The typed audit configuration (``audit.json``'s ``config``)."""
        return AuditConfig.from_dict(self.meta.get("config") or {})

    @property
    def models(self) -> list[str]:
        """Model names in audit order."""
        return list(dict.fromkeys(self.group_metrics["model"].astype(str)))

    @property
    def attributes(self) -> list[str]:
        """User attribute specs audited (without ``all``), in table order."""
        return [a for a in dict.fromkeys(self.group_metrics["attribute"]) if a != ALL]

    @property
    def data(self) -> dict[str, Any]:
        """``audit.json``'s ``data`` entry (name, fingerprint, sizes, warnings)."""
        return dict(self.meta.get("data") or {})

    @property
    def data_fingerprint(self) -> str:
        return str(self.data.get("fingerprint", "not recorded"))

    def model_meta(self, name: str) -> dict[str, Any]:
        """The audit.json entry of one model (kind, params, fingerprint, split, data_fingerprint)."""
        return dict((self.meta.get("models") or {}).get(name) or {})

    @property
    def config_fingerprint(self) -> str:
        """The recorded configuration fingerprint, else SHA-256 (16 hex) of the canonical recorded config JSON."""
        recorded = self.meta.get("config_fingerprint")
        if recorded:
            return str(recorded)
        canonical = json.dumps(dict(self.meta.get("config") or {}), sort_keys=True, default=str).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]

    def rows(self, table: str, /, **where: object) -> pd.DataFrame:
        """Rows of one table (a field name, e.g. ``"gaps"``) matching ``where`` (:func:`fairaudit.audit.select_rows`).

        >>> gm = pd.DataFrame({"model": ["a", "b"], "attribute": "all", "metric": "ndcg", "value": [.3, .2]})
        >>> AuditResult(None, None, gm, None, None).rows("group_metrics", model="b")["value"].tolist()
        [0.2]
        """
        if table not in TABLES:
            raise ValueError(_UNKNOWN_TABLE.format(table, list(TABLES)))
        frame = getattr(self, table)
        if frame is None:
            raise ValueError(_NO_TABLE.format(table, TABLES[table].file))
        return match(frame, where, TABLES[table].file)

    # ---- the folder on disk ----------------------------------------------------------------
    def write(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write every table present and ``audit.json``, atomically; optional files this result lacks are gone.

        So a re-audit into an old folder never leaves the previous audit's probes, explanations or
        comparison behind. Other files (a PDF, a run configuration) are kept. The folder is written
        into a temporary sibling and renamed into place under a lock (``.<name>.lock`` beside it):
        a concurrent writer, an existing audit folder without ``overwrite=True``, and a folder that
        is not empty and not an audit folder are refused with :class:`fairaudit.data.OutputError`.
        CSV tables go through :func:`fairaudit.data.csv_bytes` (no cell can start a formula;
        :meth:`read` gives the exact values back).
        """
        directory = Path(directory)
        for name, schema in TABLES.items():
            table = getattr(self, name)
            if table is None and not schema.optional:
                raise AuditFolderError(_MISSING_FILE.format(directory, schema.file))
            if isinstance(table, Path):
                _check_dataset_columns(table, schema, directory)
            elif table is not None:
                _check_columns(table, schema, directory)
        owned = {*FILES.values(), *OPTIONAL_FILES.values()}
        with replacing_folder(directory, overwrite=overwrite, is_ours=is_audit_folder, kind="audit folder",
                              replaced=owned) as temporary:  # fmt: skip
            for name, schema in TABLES.items():
                table, path = getattr(self, name), temporary / schema.file
                if table is None:
                    continue
                if isinstance(table, Path):  # a Parquet dataset written elsewhere (the Spark engine)
                    shutil.copytree(table, path, copy_function=_link_or_copy)
                elif schema.file.endswith(".parquet"):
                    table.to_parquet(path, index=False)
                else:
                    path.write_bytes(csv_bytes(table))
            (temporary / FILES["meta"]).write_text(json.dumps(self.meta, indent=1, default=str))
            if self.explanations is not None:
                (temporary / OPTIONAL_FILES["explanations"]).write_text(json.dumps(self.explanations, indent=1))
        return directory

    @classmethod
    def read(cls, directory: str | Path) -> "AuditResult":
        """Read and validate an audit folder (text columns stay strings, floats exact).

        CSV tables are read with :func:`fairaudit.data.read_csv`, which removes the one apostrophe
        :meth:`write` puts before formula-leading text, so the values are exactly those written.

        Raises :class:`MissingAuditFileError` (also a ``FileNotFoundError``) naming the first missing
        required file, and :class:`AuditFolderError` naming the file and column when ``audit.json``
        is not an object with a ``config`` mapping, a table lacks a required column, or a numeric
        column holds text.
        """
        directory = Path(directory)
        for file in FILES.values():
            if not _present(directory / file):
                raise MissingAuditFileError(_MISSING_FILE.format(directory, file))
        meta = _read_json(directory, FILES["meta"])
        if not isinstance(meta.get("config"), dict):
            raise AuditFolderError(_NO_CONFIG.format(directory, FILES["meta"], type(meta.get("config")).__name__))
        tables = {name: read_table(directory, schema) for name, schema in TABLES.items()
                  if not schema.optional or _present(directory / schema.file)}
        settings = directory / OPTIONAL_FILES["explanations"]
        explanations = _read_json(directory, settings.name) if settings.is_file() else None
        return cls(**tables, meta=meta, explanations=explanations)


def write_audit(result: AuditResult, directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write the audit folder (:meth:`AuditResult.write`; files in :data:`FILES` and :data:`OPTIONAL_FILES`).

    Example in :func:`run_audit`.
    """
    return result.write(directory, overwrite=overwrite)


def is_audit_folder(directory: str | Path) -> bool:
    """Whether ``directory`` is a FairAudit audit folder (it holds ``audit.json``).

    >>> import tempfile
    >>> is_audit_folder(tempfile.mkdtemp())
    False
    """
    return (Path(directory) / FILES["meta"]).is_file()


def read_audit(directory: str | Path) -> AuditResult:
    """Read and validate an audit folder written by :func:`write_audit` (:meth:`AuditResult.read`).

    Example in :func:`run_audit`.
    """
    return AuditResult.read(directory)


def _read_json(directory: Path, file: str) -> dict:
    try:
        document = json.loads((directory / file).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise AuditFolderError(_UNREADABLE.format(directory, file, err)) from err
    if not isinstance(document, dict):
        raise AuditFolderError(_NOT_AN_OBJECT.format(directory, file, type(document).__name__))
    return document


def read_table(directory: Path, schema: TableSchema, *, derive: bool = True) -> pd.DataFrame:
    """One table of an audit-style folder, parsed and checked against ``schema`` (text columns stay text,
    numbers exactly as written, flags as booleans); raises :class:`AuditFolderError` naming file and column.
    ``derive``: add the schema's derived columns that the file lacks (``False``: the columns as written)."""
    path = directory / schema.file
    try:
        if schema.file.endswith(".parquet"):
            table = pd.read_parquet(path)
        else:
            header = read_csv(path, nrows=0).columns
            table = read_csv(
                path, dtype={c: str for c in header if c in schema.text}, keep_default_na=False,
                na_values={c: [""] for c in header if c not in schema.text}, float_precision="round_trip",
            )  # fmt: skip
    except (ValueError, UnicodeDecodeError, OSError) as err:  # pandas/pyarrow parse errors are ValueErrors
        raise AuditFolderError(_UNREADABLE.format(directory, schema.file, err)) from err
    _check_columns(table, schema, directory)
    if len(table):
        for column in (c for c in schema.numeric if c in table.columns):
            if not pd.api.types.is_numeric_dtype(table[column]):
                values = table[column]
                bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
                first = bad.iloc[0] if len(bad) else values.iloc[0]
                raise AuditFolderError(_NOT_NUMERIC.format(directory, schema.file, column, first))
        for column in (c for c in schema.flags if c in table.columns):
            if not pd.api.types.is_bool_dtype(table[column]):
                bad = table[column][~table[column].astype(str).isin(["True", "False"])]
                raise AuditFolderError(_NOT_FLAG.format(directory, schema.file, column, bad.iloc[0]))
    for aligned, source in schema.derived.items() if derive else ():
        if aligned not in table.columns:
            table[aligned] = table[source]
    return table


def _present(path: Path) -> bool:
    """A table file, or a Parquet table written as a dataset folder of part files (the Spark engine)."""
    return path.is_file() or (path.suffix == ".parquet" and path.is_dir())


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link a part file into the new folder (no copy of large data), else copy it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _check_dataset_columns(dataset: Path, schema: TableSchema, directory: Path) -> None:
    """:func:`_check_columns` for a Parquet dataset folder, from its schema alone (no rows are read)."""
    import pyarrow.dataset as ds

    names = ds.dataset(dataset, format="parquet").schema.names
    _check_columns(pd.DataFrame(columns=names), schema, directory)


def _check_columns(table: pd.DataFrame, schema: TableSchema, directory: Path) -> None:
    for column in schema.required_columns:
        if column not in table.columns:
            raise AuditFolderError(_MISSING_COLUMN.format(directory, schema.file, column, list(schema.required_columns)))
