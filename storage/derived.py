# SQL built from column names and formulas that are constants of this module, never input.
# ruff: noqa: S608
"""The columns of ``expiries`` that a formula of its other columns gives back, stored only
where it does not.

Five columns of ``expiries`` follow from others: the contract defines ``skew_25d``, ``pcr``,
``total_oi`` and ``notional_oi_usd`` by formula (docs/data-dictionary.md), and
``years_to_expiry`` is termstore's ACT/365. Stored as doubles they take a large share of the
table's bytes (docs/benchmarks.md): a double's trailing digits do not compress. So the lake
keeps ``expiries`` in the table ``expiry_rows``, where each of these columns is NULL wherever its
formula, evaluated on the row, gives back exactly the published value, and holds the published
value everywhere else; its bit in ``derived_kept`` is set where it was kept. The view
``expiries`` evaluates the formula where the bit is clear. Both sides are the same DuckDB
evaluating the same expression on the same stored inputs, so the view returns every published
value bit for bit, whatever the API sends: a value off its formula, or a NULL where the formula
gives a number.

A tick stores its derived values as published, every bit set, and evaluates no formula; the
nightly rebuild of its day (``history_nightly``), an import and ``termstore rebuild`` store
rows compactly, in key order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import duckdb
import polars as pl

from storage.schemas import (
    EXPIRIES_SCHEMA,
    TABLE_SCHEMAS,
    TABLE_SORT_KEYS,
    create_table_sql,
    sort_by_key,
)

if TYPE_CHECKING:
    # pyarrow only as a type: importing it costs a CLI call that never writes (docs/benchmarks.md).
    import pyarrow as pa

EXPIRY_ROWS: Final[str] = "expiry_rows"
KEPT_COLUMN: Final[str] = "derived_kept"
DERIVED_FORMULAS: Final[dict[str, str]] = {
    # (expiry_at - computed_at) in seconds / 365 days, each division rounded once as in
    # storage.normalise; the microsecond difference is exact in a double.
    "years_to_expiry": "(epoch_us(expiry_at) - epoch_us(computed_at)) / 1000000 / 31536000",
    "skew_25d": "round(put_25d_iv - call_25d_iv, 4)",
    "pcr": "round(put_oi / call_oi, 6)",
    "total_oi": "round(call_oi + put_oi, 1)",
    "notional_oi_usd": "round(round(call_oi + put_oi, 1) * spot_price, 2)",
}
"""Each derived column's formula over columns that are always stored. The roundings are the
API's published precision; where a value does not follow them, it is kept, so they only decide
how small the table is, never what it returns."""

DERIVED_BITS: Final[dict[str, int]] = {name: 1 << i for i, name in enumerate(DERIVED_FORMULAS)}
"""Each derived column's bit in ``derived_kept``."""
ALL_KEPT: Final[int] = sum(DERIVED_BITS.values())
EXPIRY_ROWS_SCHEMA: Final = pl.Schema({**EXPIRIES_SCHEMA, KEPT_COLUMN: pl.Int16()})
STORED_TABLES: Final[dict[str, str]] = {"expiries": EXPIRY_ROWS}
"""A table users query → the lake table that holds its rows, where the two differ."""
SORTED_BY: Final[dict[str, str]] = {EXPIRY_ROWS: ", ".join(TABLE_SORT_KEYS["expiries"])}
"""DuckLake sorts these tables' rows when it merges their files: one symbol's values side by
side compress better (docs/benchmarks.md)."""


def _follows(name: str) -> str:
    """Whether ``name``'s published value is exactly what its formula gives (-0.0 is not 0.0:
    SQL compares them equal, but the published sign is kept)."""
    formula = DERIVED_FORMULAS[name]
    return (
        f"({name} IS NOT DISTINCT FROM ({formula}) "
        f"AND coalesce(signbit({name}) = signbit({formula}), true))"
    )


def _stored_column(name: str) -> str:
    if name not in DERIVED_FORMULAS:
        return name
    return f"CASE WHEN {_follows(name)} THEN NULL ELSE {name} END AS {name}"


_KEPT_SQL: Final[str] = " + ".join(
    f"CASE WHEN {_follows(name)} THEN 0 ELSE {bit} END" for name, bit in DERIVED_BITS.items()
)
STORED_EXPIRIES_SQL: Final[str] = ", ".join(
    [
        *map(_stored_column, EXPIRIES_SCHEMA.names()),
        f"CAST({_KEPT_SQL} AS SMALLINT) AS {KEPT_COLUMN}",
    ]
)
"""The ``expiry_rows`` columns of a relation with the ``expiries`` columns."""


def _view_column(name: str) -> str:
    if name not in DERIVED_FORMULAS:
        return name
    bit, formula = DERIVED_BITS[name], DERIVED_FORMULAS[name]
    return f"CASE WHEN {KEPT_COLUMN} & {bit} = 0 THEN {formula} ELSE {name} END AS {name}"


EXPIRIES_VIEW_SQL: Final[str] = (
    f"SELECT {', '.join(map(_view_column, EXPIRIES_SCHEMA.names()))} FROM {EXPIRY_ROWS}"
)


def stored_table(table: str) -> str:
    """The lake table that holds ``table``'s rows."""
    return STORED_TABLES.get(table, table)


def stored_arrow(
    connection: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, *, as_published: bool
) -> duckdb.DuckDBPyRelation:
    """``frame`` (``table``'s columns) as the rows its lake table stores. ``as_published``
    stores every derived value as it came, with every bit set: a tick then binds no formula,
    a cost of milliseconds per statement (docs/warehouse.md), and the nightly rebuild of its
    day stores the day compactly."""
    if table != "expiries":
        return connection.from_arrow(_one_chunk(frame, TABLE_SCHEMAS[table]))
    if as_published:
        kept = pl.lit(ALL_KEPT, dtype=pl.Int16()).alias(KEPT_COLUMN)
        return connection.from_arrow(_one_chunk(frame.with_columns(kept), EXPIRY_ROWS_SCHEMA))
    # In key order, as DuckLake sorts the table when it merges (SORTED_BY): an import's or a
    # rebuild's file may never be merged.
    relation = connection.from_arrow(_one_chunk(sort_by_key(frame, "expiries"), EXPIRIES_SCHEMA))
    return relation.project(STORED_EXPIRIES_SQL)


def _one_chunk(frame: pl.DataFrame, schema: pl.Schema) -> pa.Table:
    # One chunk: a concat of per-body frames has a chunk per body, and DuckDB scans each as
    # its own Arrow batch, which made a day's insert many times slower.
    return frame.select(schema.names()).rechunk().to_arrow()


def create_stored_sql() -> str:
    """``CREATE TABLE`` of ``expiry_rows``."""
    return create_table_sql(EXPIRY_ROWS, EXPIRY_ROWS_SCHEMA)
