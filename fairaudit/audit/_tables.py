"""Column schema of every audit-folder table, and :func:`select_rows`, the query helper pages use.

One vocabulary
--------------
The contracted tables (``group_metrics.csv``, ``gaps.csv``, ``item_exposure.csv``,
``recommendations.parquet``, ``user_metrics.parquet``) fix the words: ``model``; user groups as
``attribute`` + ``group`` (``all``/``all`` for every user); ``reference`` for what a group is
compared with; ``metric``; ``ci_low``/``ci_high`` for a 95% interval; ``n_users`` for a count of
users; ``difference`` for a signed change. The optional tables keep every column they had and
are aligned to these words where they meant the same thing under another name:

- ``probes.csv`` adds ``group`` (= ``original_value``): the users a row describes, ``all`` for the
  pooled and spread rows, as in ``group_metrics.csv``; ``select_rows(probes, attribute="gender",
  group="all")`` reads like a query of the other tables. Folders written before it get it on reading.
  Its number stays ``estimate`` and gains no ``value`` twin: in the pooled probe schema
  (:func:`fairaudit.plots.probe_summary`, STYLE's long schema) ``value`` names the attribute
  value a user is moved to, so a numeric ``value`` column would give the word two meanings.
- ``gap_decomposition.csv`` already speaks ``attribute, group, reference`` (as ``gaps.csv``),
  ``shap_drivers.csv`` ``model, metric, n_users``; nothing to add.
- ``comparison.csv`` and ``verdicts.csv`` key their rows by the pair ``model_a, model_b`` (one
  ``model`` column would be ambiguous) and otherwise use ``attribute, group, metric, n_users,
  difference, ci_low, ci_high``; nothing to add.
- ``item_exposure.csv`` (contracted) names its two sides ``user_attribute/user_group`` and
  ``item_attribute/item_group``; it stays as it is.

Kinds: ``text`` columns are read as strings (``"01"`` stays ``"01"``, empty stays ``""``),
``flags`` as booleans, every other listed column must be numeric (empty cells are NaN).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

_UNKNOWN_COLUMN = "Column '{0}' not found in {1}; expected one of {2}"


@dataclass(frozen=True)
class TableSchema:
    """One table of the audit folder.

    Attributes
    ----------
    name : str
        Field of :class:`~fairaudit.audit.AuditResult` holding it.
    file : str
        File name inside the audit folder.
    columns : tuple of str
        Every known column, in contract order.
    required : tuple of str
        Columns every file of this kind must have (default: all of ``columns``).
    text : tuple of str
        Columns read as strings.
    flags : tuple of str
        Boolean columns (``True``/``False``).
    derived : mapping
        Aligned column -> the column it copies, added on reading when a file lacks it.
    open : bool
        Other (unlisted) columns are expected, e.g. the metric and attribute columns of ``user_metrics.parquet``.
    optional : bool
        The folder may lack the file (the field is then ``None``).
    """

    name: str
    file: str
    columns: tuple[str, ...]
    required: tuple[str, ...] | None = None
    text: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    derived: Mapping[str, str] = field(default_factory=dict)
    open: bool = False
    optional: bool = False

    @property
    def required_columns(self) -> tuple[str, ...]:
        return self.columns if self.required is None else self.required

    @property
    def numeric(self) -> tuple[str, ...]:
        """Listed columns that must be numeric."""
        return tuple(c for c in self.columns if c not in self.text and c not in self.flags)


_COMPARISON_TEXT = ("model_a", "model_b", "attribute", "group", "quantity", "metric")

#: Every table of an audit folder by :class:`~fairaudit.audit.AuditResult` field, required tables first.
TABLES: dict[str, TableSchema] = {
    schema.name: schema
    for schema in (
        TableSchema("recommendations", "recommendations.parquet", ("model", "user_id", "rank", "item_id", "score"),
                    text=("model", "user_id", "item_id")),
        TableSchema("user_metrics", "user_metrics.parquet", ("model", "user_id"), text=("model", "user_id"), open=True),
        TableSchema("group_metrics", "group_metrics.csv",
                    ("model", "attribute", "group", "metric", "value", "ci_low", "ci_high", "n_users", "flagged"),
                    text=("model", "attribute", "group", "metric"), flags=("flagged",)),
        TableSchema("gaps", "gaps.csv",
                    ("model", "attribute", "group", "reference", "reference_group", "metric", "difference", "ratio",
                     "ci_low", "ci_high", "p_value", "p_adjusted", "direction", "mdg"),
                    required=("model", "attribute", "group", "reference", "metric", "difference", "ratio", "ci_low",
                              "ci_high", "p_value", "p_adjusted"),
                    text=("model", "attribute", "group", "reference", "reference_group", "metric", "direction")),
        TableSchema("item_exposure", "item_exposure.csv",
                    ("model", "user_attribute", "user_group", "item_attribute", "item_group", "browsing",
                     "exposure_share", "catalogue_share", "relevance_share"),
                    text=("model", "user_attribute", "user_group", "item_attribute", "item_group", "browsing")),
        TableSchema("probes", "probes.csv",
                    ("model", "attribute", "original_value", "counterfactual_value", "metric", "estimate", "ci_low",
                     "ci_high", "n_users", "group"),
                    required=("attribute", "original_value", "counterfactual_value", "metric", "estimate", "ci_low",
                              "ci_high"),
                    text=("model", "attribute", "original_value", "counterfactual_value", "metric", "group"),
                    derived={"group": "original_value"}, optional=True),
        TableSchema("fairllm", "fairllm.csv",
                    ("model", "attribute", "group", "reference", "metric", "estimate", "ci_low", "ci_high", "n_users",
                     "p_value"),
                    required=("model", "attribute", "group", "reference", "metric", "estimate", "ci_low", "ci_high"),
                    text=("model", "attribute", "group", "reference", "metric"), optional=True),
        TableSchema("shap_drivers", "shap_drivers.csv",
                    ("model", "metric", "feature", "mean_abs_shap", "mean_shap", "r2", "n_users"),
                    required=("feature", "mean_abs_shap"), text=("model", "metric", "feature"), optional=True),
        TableSchema("gap_decomposition", "gap_decomposition.csv",
                    ("model", "metric", "attribute", "group", "reference", "feature", "role", "contribution",
                     "predicted_gap", "observed_gap", "n_users"),
                    required=("metric", "attribute", "group", "reference", "feature", "role", "contribution",
                              "predicted_gap", "observed_gap", "n_users"),
                    text=("model", "metric", "attribute", "group", "reference", "feature", "role"), optional=True),
        TableSchema("comparison", "comparison.csv",
                    ("model_a", "model_b", "attribute", "group", "quantity", "metric", "n_users", "a", "b",
                     "difference", "ci_low", "ci_high", "significant"),
                    text=_COMPARISON_TEXT, flags=("significant",), optional=True),
        TableSchema("verdicts", "verdicts.csv",
                    ("model_a", "model_b", "attribute", "group", "metric", "gap_a", "gap_b", "gap_reduction",
                     "gap_reduction_ci_low", "gap_reduction_ci_high", "cost", "cost_ci_low", "cost_ci_high",
                     "verdict"),
                    text=("model_a", "model_b", "attribute", "group", "metric", "verdict"), optional=True),
        TableSchema("robustness", "robustness.csv",
                    ("attack", "strength", "model", "attribute", "group", "quantity", "metric", "n_users", "clean",
                     "attacked", "difference", "ci_low", "ci_high", "significant"),
                    text=("attack", "model", "attribute", "group", "quantity", "metric"), flags=("significant",),
                    optional=True),
        # Audits over time (``audit --by-period``, fairaudit.dynamics.add_periods_to_audit).
        TableSchema("period_metrics", "period_metrics.csv",
                    ("period", "start", "end", "model", "attribute", "group", "metric", "value", "ci_low", "ci_high",
                     "n_users", "flagged"),
                    text=("period", "model", "attribute", "group", "metric"), flags=("flagged",), optional=True),
        TableSchema("period_trends", "period_trends.csv",
                    ("model", "attribute", "group", "reference", "metric", "n_periods", "first", "last", "slope",
                     "slope_ci_low", "slope_ci_high", "p_value", "p_adjusted"),
                    text=("model", "attribute", "group", "reference", "metric"), optional=True),
        TableSchema("exposure_drift", "exposure_drift.csv",
                    ("model", "period", "start", "user_attribute", "user_group", "item_attribute", "item_group",
                     "exposure_share", "reference_share", "difference", "total_variation"),
                    text=("model", "period", "user_attribute", "user_group", "item_attribute", "item_group"),
                    optional=True),
        # The audit of text profiles (``python -m fairaudit profiles``, fairaudit.profiles.run_profile_audit).
        TableSchema("profile_accuracy", "profile_accuracy.csv",
                    ("model_a", "model_b", "attribute", "group", "quantity", "metric", "n_users", "a", "b",
                     "difference", "ci_low", "ci_high", "significant"),
                    text=_COMPARISON_TEXT, flags=("significant",), optional=True),
        TableSchema("profile_leakage", "profile_leakage.csv",
                    ("representation", "reference", "attribute", "metric", "estimate", "ci_low", "ci_high", "chance",
                     "n_users", "significant"),
                    text=("representation", "reference", "attribute", "metric"), flags=("significant",),
                    optional=True),
        TableSchema("text_counterfactual", "text_counterfactual.csv",
                    ("model", "attribute", "group", "metric", "value", "ci_low", "ci_high", "n_users", "flagged"),
                    text=("model", "attribute", "group", "metric"), flags=("flagged",), optional=True),
        # Membership-inference audit (``python -m fairaudit privacy``, fairaudit.privacy.membership_inference).
        TableSchema("mia", "mia.csv",
                    ("model", "attack", "attribute", "group", "n_users", "n_members", "n_non_members", "auc",
                     "ci_low", "ci_high", "flagged"),
                    text=("model", "attack", "attribute", "group"), flags=("flagged",), optional=True),
        # Who pays for privacy: a DP model vs its non-private twin (``python -m fairaudit privacy-cost``,
        # fairaudit.privacy.privacy_cost).
        TableSchema("privacy_cost", "privacy_cost.csv",
                    ("model_base", "model_dp", "epsilon", "side", "attribute", "group", "metric", "n_users", "base",
                     "dp", "cost", "cost_ci_low", "cost_ci_high", "excess_cost", "excess_cost_ci_low",
                     "excess_cost_ci_high", "pays_more"),
                    text=("model_base", "model_dp", "side", "attribute", "group", "metric"), flags=("pays_more",),
                    optional=True),
    )
}
#: Text columns of every table (read as strings), for readers of a single CSV.
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {name: schema.text for name, schema in TABLES.items()}


def _condition(series: pd.Series, wanted: object) -> pd.Series:
    if isinstance(wanted, (str, bytes)) or not isinstance(wanted, Iterable):
        return series == wanted
    return series.isin(list(wanted))  # a list, tuple, set, Index, array, ...


def match(frame: pd.DataFrame, where: Mapping[str, object], table: str = "the table") -> pd.DataFrame:
    """Rows of ``frame`` matching every condition of ``where`` (see :func:`select_rows`); ``table`` names it in errors."""
    keep = pd.Series(True, index=frame.index)
    for column, wanted in where.items():
        if column not in frame.columns:
            raise ValueError(_UNKNOWN_COLUMN.format(column, table, list(frame.columns)))
        keep &= _condition(frame[column], wanted)
    return frame[keep]


def select_rows(frame: pd.DataFrame, /, **where: object) -> pd.DataFrame:
    """Rows of an audit table where each named column equals a value, or is in a collection of values.

    The rows keep their order and index (as a boolean filter would); an unknown column raises
    ``ValueError`` naming it and the table's columns.

    >>> gm = pd.DataFrame({"model": ["a", "a", "b"], "attribute": ["all", "gender", "gender"],
    ...                    "metric": "ndcg", "value": [0.3, 0.2, 0.1]})
    >>> select_rows(gm, model="a", attribute=["all", "gender"])["value"].tolist()
    [0.3, 0.2]
    >>> select_rows(gm, modle="a")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Column 'modle' not found in the table; expected one of ['model', 'attribute', 'metric', 'value']
    """
    return match(frame, where)
