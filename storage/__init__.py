"""The termstore warehouse: DuckLake tables (raw archive, summary tables, ingest log,
quarantine), the tick and rebuild transactions, bulk import, maintenance and the query API.

No Dagster import here: the CLI, research code and the Dagster code location all use this.
"""

from storage.errors import QueryError, StorageError
from storage.ingest import ingest_once, ingest_outcomes
from storage.lake_config import HOME_ENV, LakeConfig
from storage.rebuild import rebuild_day, rebuild_range
from storage.reports import RebuildReport, SymbolDayRebuild, SymbolReport, TickReport
from storage.warehouse import Warehouse

__all__ = [
    "HOME_ENV",
    "LakeConfig",
    "QueryError",
    "RebuildReport",
    "StorageError",
    "SymbolDayRebuild",
    "SymbolReport",
    "TickReport",
    "Warehouse",
    "ingest_once",
    "ingest_outcomes",
    "rebuild_day",
    "rebuild_range",
]
