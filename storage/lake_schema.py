# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""What a termstore lake holds: its tables, their partitioning, its options and its views.

A writer brings a lake up to ``SCHEMA_VERSION`` in one transaction (``ensure_schema``): every
reader that attaches then sees the same tables and views, whichever machine it runs on. The views
live in the catalog with the tables, so the DuckDB CLI sees them too.

Settings, and why:
- ``data_inlining_row_limit = 0``: every commit writes Parquet files, never rows into the catalog.
  Inlined rows must later be flushed, and a flush by one process breaks every other process
  that stays attached (upstream ducklake #1305/#1413: "ducklake_inlined_data_… does not exist"
  until it re-attaches). With nothing inlined there is nothing to flush, so long-lived readers
  keep working across ticks, rebuilds and maintenance. It also measured faster per tick on the
  SQLite catalog (docs/benchmarks.md).
- partitions by UTC month of each table's instant, and maintenance (storage/maintenance.py)
  merges a month into few large files: every data file costs each file list a read of its
  per-column statistics, and on a SQLite catalog that read is a full scan (docs/architecture.md,
  "Where the default catalog stops scaling"), so a year in ~12 files per table reads far
  less catalog than a year in 365. A rebuilt day deletes its rows from the month's file (a
  delete file until maintenance rewrites it) and adds a new file.
- zstd Parquet.
"""

from __future__ import annotations

from typing import Final

import duckdb

from backquant.symbols import SUPPORTED_SYMBOLS
from storage.derived import (
    EXPIRIES_VIEW_SQL,
    EXPIRY_ROWS,
    SORTED_BY,
    STORED_EXPIRIES_SQL,
    STORED_TABLES,
    create_stored_sql,
    stored_table,
)
from storage.errors import NewerLakeError
from storage.research.views import HOURLY_SAMPLE_TABLE, research_views
from storage.schemas import TABLE_SCHEMAS, TIME_COLUMNS, create_table_sql

SCHEMA_VERSION: Final[str] = "11"
META_VIEW: Final[str] = "termstore_meta"
"""Key/value settings (``schema_version``) as a view of constants: a reader checks the version
on attach from the catalog alone, without listing or reading a data file. (Up to schema
version 4 it was a table.)"""
LAKE_TABLES: Final[tuple[str, ...]] = (*map(stored_table, TABLE_SCHEMAS), HOURLY_SAMPLE_TABLE)
"""The tables that hold rows (``expiries`` is a view of ``expiry_rows``: storage/derived.py)."""
PARTITIONS: Final[dict[str, tuple[str, ...]]] = dict.fromkeys(LAKE_TABLES, ("year", "month"))

LAKE_OPTIONS: Final[dict[str, str | int]] = {
    "data_inlining_row_limit": 0,
    "parquet_compression": "zstd",
    "parquet_compression_level": 3,
}
TABLE_OPTIONS: Final[dict[str, dict[str, int | str]]] = {
    # Raw bodies: zstd level 1 writes faster than 3 and, on these bodies, no bigger.
    **{table: {"parquet_compression_level": 1} for table in ("responses", "quarantine")},
    # Sorted when merged (SORTED_BY), not in every tick: an import or a rebuild sorts its rows
    # itself (storage.derived.stored_arrow).
    EXPIRY_ROWS: {"sort_on_insert": "false"},
}

# Each symbol's newest snapshot, found among the last day of ticks (the newest instant comes
# from file statistics, and the bound prunes every older file); the full scan runs only when
# some symbol has no snapshot in that day. The join compares ``concat(e.symbol, '')`` so that
# DuckDB does not push the symbols down to DuckLake as a file filter: on a SQLite catalog each
# filtered column is one more read of the whole file-statistics table, and the computed_at
# bound has already pruned every file the symbols could.
LATEST_TERM_STRUCTURE_SQL: Final[str] = f"""
WITH recent AS (
    SELECT symbol, max(computed_at) AS computed_at FROM snapshots
    WHERE computed_at >= (SELECT max(computed_at) - INTERVAL 1 DAY FROM snapshots)
    GROUP BY symbol
),
older AS (
    SELECT symbol, max(computed_at) AS computed_at FROM snapshots
    WHERE (SELECT count(*) FROM recent) < {len(SUPPORTED_SYMBOLS)}
      AND symbol NOT IN (SELECT symbol FROM recent)
    GROUP BY symbol
),
newest AS (SELECT * FROM recent UNION ALL SELECT * FROM older)
SELECT e.* FROM expiries AS e
JOIN newest ON e.computed_at = newest.computed_at AND concat(e.symbol, '') = newest.symbol
WHERE e.computed_at >= (SELECT min(computed_at) FROM newest)
ORDER BY e.symbol, e.position
"""

# Per symbol, the due minutes (every ``every`` from the hour) in [since, until) with no stored
# attempt: its attempts' outcomes, or "no attempt" when nothing ran (docs/data-dictionary.md).
# ``until`` stops at the current minute: a minute still to come is no gap.
INGEST_GAPS_MACRO: Final[str] = "ingest_gaps_between"
INGEST_GAPS_MACRO_SQL: Final[str] = f"""
CREATE OR REPLACE MACRO {INGEST_GAPS_MACRO}(since, until, every := INTERVAL 1 MINUTE) AS TABLE
WITH span AS (
    SELECT CAST(epoch(every) AS BIGINT) AS step,
           CAST(floor(epoch(since) / epoch(every)) AS BIGINT) AS first_slot,
           CAST(floor(epoch(least(until, now())) / epoch(every)) AS BIGINT) AS end_slot
),
expected AS (
    SELECT symbol, slot * step AS at_s
    FROM (SELECT step, unnest(range(first_slot, end_slot)) AS slot FROM span),
         (SELECT unnest({list(SUPPORTED_SYMBOLS)}) AS symbol)
),
attempted AS (
    SELECT symbol, CAST(floor(epoch(started_at) / 60) AS BIGINT) * 60 AS at_s,
           count(*) AS attempts, bool_or(outcome = 'stored') AS stored,
           string_agg(DISTINCT outcome, ', ' ORDER BY outcome) AS outcomes,
           string_agg(DISTINCT reason, ' | ' ORDER BY reason) AS reasons
    FROM ingest_log WHERE started_at >= since - every AND started_at < until
    GROUP BY ALL
)
SELECT e.symbol, to_timestamp(e.at_s) AS minute, coalesce(a.attempts, 0) AS attempts,
       coalesce(a.outcomes, 'no_attempt') AS outcomes, coalesce(a.reasons, 'no attempt') AS reasons
FROM expected AS e LEFT JOIN attempted AS a USING (symbol, at_s)
WHERE NOT coalesce(a.stored, false)
ORDER BY e.symbol, minute
"""
# From the first logged attempt up to the current minute (not included: it may be under way).
INGEST_GAPS_SQL: Final[str] = (
    f"SELECT * FROM {INGEST_GAPS_MACRO}((SELECT min(started_at) FROM ingest_log), now())"
)


def views() -> dict[str, str]:
    """View name → query, in creation order (later views read earlier ones)."""
    return {
        "latest_term_structure": LATEST_TERM_STRUCTURE_SQL,
        "ingest_gaps": INGEST_GAPS_SQL,
        **research_views(),
    }


VIEW_NAMES: Final[tuple[str, ...]] = tuple(views())


def schema_version(connection: duckdb.DuckDBPyConnection) -> str | None:
    """The version recorded in the attached lake, None when it has no termstore tables."""
    try:
        row = connection.execute(
            f"SELECT value FROM {META_VIEW} WHERE key = 'schema_version'"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    return None if row is None else str(row[0])


def _is_table(connection: duckdb.DuckDBPyConnection, lake: str, name: str) -> bool:
    row = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
        [lake, name],
    ).fetchone()
    return bool(row and row[0])


def is_older(version: str | None) -> bool:
    """A lake at ``version`` (None: no termstore tables) needs this termstore's upgrade."""
    return version is None or int(version) < int(SCHEMA_VERSION)


def refuse_newer(version: str | None) -> None:
    """``NewerLakeError`` for a lake a newer termstore has upgraded: this one would write the
    older layout into it, or put its older views back."""
    if version is not None and int(version) > int(SCHEMA_VERSION):
        raise NewerLakeError(
            f"the lake is at schema version {version}, newer than this termstore's "
            f"{SCHEMA_VERSION} (another machine runs a newer termstore)",
            advice="upgrade termstore here (git pull, then make setup) before writing to it",
        )


def ensure_schema(connection: duckdb.DuckDBPyConnection, lake: str) -> bool:
    """Bring the attached, writable lake to ``SCHEMA_VERSION``; True when anything had to
    change. Tables and views change in one transaction; the options DuckLake sets outside a
    transaction come before it (the lake's) and after it (each table's). A lake of a newer
    version is refused (``refuse_newer``)."""
    version = schema_version(connection)
    if version == SCHEMA_VERSION:
        return False
    refuse_newer(version)
    for option, value in LAKE_OPTIONS.items():
        rendered = value if isinstance(value, int) else f"'{value}'"
        connection.execute(f"CALL {lake}.set_option('{option}', {rendered})")
    connection.execute("BEGIN")
    try:
        if _is_table(connection, lake, "expiries"):
            _store_expiries_as_rows(connection)
        for table in TABLE_SCHEMAS:
            if table not in STORED_TABLES:
                connection.execute(create_table_sql(table))
        connection.execute(create_stored_sql())
        connection.execute(f"CREATE OR REPLACE VIEW expiries AS {EXPIRIES_VIEW_SQL}")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {HOURLY_SAMPLE_TABLE} AS SELECT * FROM expiries LIMIT 0"
        )
        for table in LAKE_TABLES:
            _lay_out(connection, table)
        connection.execute(INGEST_GAPS_MACRO_SQL)
        for name, query in views().items():
            connection.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")
        if _is_table(connection, lake, META_VIEW):
            connection.execute(f"DROP TABLE {META_VIEW}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    for table, options in TABLE_OPTIONS.items():
        for option, value in options.items():
            connection.execute(
                f"CALL {lake}.set_option('{option}', {value}, table_name => '{table}')"
            )
    # The version last: a writer stopped before this point leaves the old one, and the next
    # writer does every (idempotent) step again, the table options included.
    connection.execute(
        f"CREATE OR REPLACE VIEW {META_VIEW} AS "
        f"SELECT 'schema_version' AS key, '{SCHEMA_VERSION}' AS value"
    )
    return True


def _store_expiries_as_rows(connection: duckdb.DuckDBPyConnection) -> None:
    """A lake of schema version 8 or older kept ``expiries`` as a table of every column: its
    rows move to ``expiry_rows``, in the transaction that makes ``expiries`` the view, into
    month files as new rows go (a year of rows: docs/runbook.md)."""
    connection.execute(create_stored_sql())
    _lay_out(connection, EXPIRY_ROWS)
    # A month at a time: one partition's files open at once keeps the memory of a year's move
    # to that of a month.
    months = connection.execute(
        "SELECT DISTINCT date_trunc('month', computed_at) AS month FROM expiries ORDER BY month"
    ).fetchall()
    for (month,) in months:
        connection.execute(
            f"INSERT INTO {EXPIRY_ROWS} SELECT {STORED_EXPIRIES_SQL} FROM expiries "
            "WHERE computed_at >= ? AND computed_at < ? + INTERVAL 1 MONTH",
            [month, month],
        )
    connection.execute("DROP TABLE expiries")


def _lay_out(connection: duckdb.DuckDBPyConnection, table: str) -> None:
    """``table``'s partitioning and, where it has one, the order DuckLake merges its rows in."""
    column = TIME_COLUMNS.get(table, "computed_at")
    listed = ", ".join(f"{part}({column})" for part in PARTITIONS[table])
    connection.execute(f"ALTER TABLE {table} SET PARTITIONED BY ({listed})")
    if table in SORTED_BY:
        connection.execute(f"ALTER TABLE {table} SET SORTED BY ({SORTED_BY[table]})")
