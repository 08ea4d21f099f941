"""Metadata helpers: column schemas for the asset catalog and tables a person reads at a glance."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg

from assets.columns import table_columns
from assets.display import display_value

if TYPE_CHECKING:
    import polars as pl

# BackfillPolicy is beta in Dagster 1.13; batched backfills are worth it, the warning is not.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

SIMULATED_BANNER = (
    "⚠ SIMULATED DATA — this code location polls termstore's local BackQuant simulator, "
    "not api.backquant.com. Set BACKQUANT_API_KEY (and unset TERMSTORE_SIMULATED) for real data."
)


def column_schema(table: str) -> dg.TableSchema:
    """The Dagster column schema of a lake table: names, SQL types and descriptions from the
    data dictionary (assets.columns)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=column.name, type=column.type, description=column.description)
            for column in table_columns(table)
        ]
    )


def table_metadata(rows: Sequence[Mapping[str, object]]) -> dg.MetadataValue:
    """A table the asset page shows inline (Dagster shows longer Markdown only behind a link);
    cells as display text, numbers rounded (assets.display)."""
    if not rows:
        return dg.MetadataValue.md("_(nothing)_")
    columns = list(rows[0])
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord({column: display_value(row.get(column)) for column in columns})
            for row in rows
        ],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, "string") for name in columns]),
    )


def frame_metadata(frame: pl.DataFrame) -> dg.MetadataValue:
    """A polars frame as an inline table, numbers rounded for display."""
    return table_metadata(list(frame.iter_rows(named=True)))


def describe(text: str, *, simulated: bool) -> str:
    return f"{SIMULATED_BANNER}\n\n{text}" if simulated else text
