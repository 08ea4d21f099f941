"""Metadata helpers: column schemas for the asset catalog and tables a person reads at a glance."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import dagster as dg
import polars as pl

from storage.schemas import TABLE_SCHEMAS

# BackfillPolicy is beta in Dagster 1.13; batched backfills are worth it, the warning is not.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

SIMULATED_BANNER = (
    "⚠ SIMULATED DATA — this code location polls termstore's local BackQuant simulator, "
    "not api.backquant.com. Set BACKQUANT_API_KEY (and unset TERMSTORE_SIMULATED) for real data."
)


def column_schema(table: str) -> dg.TableSchema:
    """The Dagster column schema of a warehouse table, from its explicit polars schema."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype))
            for name, dtype in TABLE_SCHEMAS[table].items()
        ]
    )


def table_metadata(rows: Sequence[Mapping[str, str]]) -> dg.MetadataValue:
    """A small table for the UI; every cell shown as text."""
    if not rows:
        return dg.MetadataValue.md("_(nothing)_")
    columns = list(rows[0])
    header = "| " + " | ".join(columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = [
        "| " + " | ".join(str(row.get(column, "")).replace("|", "/") for column in columns) + " |"
        for row in rows
    ]
    return dg.MetadataValue.md("\n".join([header, rule, *body]))


def frame_metadata(frame: pl.DataFrame) -> dg.MetadataValue:
    return table_metadata(
        [
            {name: "" if value is None else str(value) for name, value in row.items()}
            for row in frame.iter_rows(named=True)
        ]
    )


def describe(text: str, *, simulated: bool) -> str:
    return f"{SIMULATED_BANNER}\n\n{text}" if simulated else text
