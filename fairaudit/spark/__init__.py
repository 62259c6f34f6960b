"""The Spark engine: audits of recommendation logs too large for one process (``audit --engine spark``).

:func:`run_spark_audit` writes the audit folder of :func:`fairaudit.audit.run_audit` from Spark
DataFrames, keeping per-user rows in Spark (only group aggregates reach the driver); method and
differences from the pandas engine: ``docs/spark.md``. pyspark is imported only when a session is
started or an audit runs, so ``import fairaudit`` and ``--help`` never load it.
"""

from fairaudit.spark._bootstrap import PoissonSliceReport, poisson_weights
from fairaudit.spark._engine import (
    ENGINES,
    SparkAuditInputs,
    load_inputs,
    read_table,
    run_spark_audit,
    spark_session,
)

__all__ = [
    "ENGINES",
    "PoissonSliceReport",
    "SparkAuditInputs",
    "load_inputs",
    "poisson_weights",
    "read_table",
    "run_spark_audit",
    "spark_session",
]
