"""The termstore warehouse: raw archive, hot/cold Parquet tiers, DuckDB catalog, query API.

No Dagster import here: the CLI, research code and the Dagster code location all use this.
"""

from storage.bulk import BulkReport, FetchedBody, bulk_ingest
from storage.catalog import refresh_catalog
from storage.ingest import ingest_once, ingest_outcomes
from storage.rebuild import dirty_days, rebuild_day, rebuild_dirty, rebuild_range
from storage.reports import RebuildReport, SymbolDayRebuild, SymbolReport, TickReport
from storage.warehouse import HOME_ENV, QueryError, Warehouse

__all__ = [
    "HOME_ENV",
    "BulkReport",
    "FetchedBody",
    "QueryError",
    "RebuildReport",
    "SymbolDayRebuild",
    "SymbolReport",
    "TickReport",
    "Warehouse",
    "bulk_ingest",
    "dirty_days",
    "ingest_once",
    "ingest_outcomes",
    "rebuild_day",
    "rebuild_dirty",
    "rebuild_range",
    "refresh_catalog",
]
