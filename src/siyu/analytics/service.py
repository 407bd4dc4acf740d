"""The analytics facade: export a workspace's analytic tables to Parquet, and open an export on Spark as
a read-only store the metrics run on unchanged (docs/analytics-engines.md)."""

from siyu.analytics.export import ANALYTIC_TABLES, ExportedTable, Manifest, export_parquet, read_manifest
from siyu.analytics.spark import LOCAL_MASTER, SparkStore, spark_session
from siyu.analytics.transpile import to_spark_sql

__all__ = [
    "ANALYTIC_TABLES",
    "LOCAL_MASTER",
    "ExportedTable",
    "Manifest",
    "SparkStore",
    "export_parquet",
    "read_manifest",
    "spark_session",
    "to_spark_sql",
]
