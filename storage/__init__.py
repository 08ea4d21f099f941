"""The termstore warehouse: DuckLake tables (raw archive, summary tables, ingest log,
quarantine), the tick and rebuild transactions, bulk import, maintenance and the query API.

No Dagster import here: the CLI, research code and the Dagster code location all use this.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from storage.errors import QueryError, StorageError
from storage.lake_config import HOME_ENV, LakeConfig
from storage.reports import RebuildReport, SymbolDayRebuild, SymbolReport, TickReport

if TYPE_CHECKING:
    from storage.ingest import ingest_once, ingest_outcomes
    from storage.rebuild import rebuild_day, rebuild_range
    from storage.warehouse import Warehouse

# Loaded on first use: they import DuckDB and polars, and importing any storage module (e.g.
# storage.errors, for the CLI and the Dagster code location) runs this file first.
_LAZY = {
    "Warehouse": "storage.warehouse",
    "ingest_once": "storage.ingest",
    "ingest_outcomes": "storage.ingest",
    "rebuild_day": "storage.rebuild",
    "rebuild_range": "storage.rebuild",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
