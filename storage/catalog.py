"""The DuckDB catalog: ``warehouse.duckdb`` holds views only, each over an explicit file list.

Why explicit lists: listing ~1,460 day files per query costs ~120 ms; a list baked into the view
costs nothing at query time, and ``latest_term_structure`` reads just four tiny files.

Why a new file each time: a process holding a read-write DuckDB connection locks everyone else
out, and read-only readers lock out a writer. So the writer never opens the live catalog. It
copies it to a temp file in the same directory, replaces the views that changed, closes it (fully
checkpointed) and renames it over ``warehouse.duckdb`` (storage/catalog_file.py). Readers that
already have it open keep reading the old inode; new connections see the new views. All paths are
absolute, so the views work from any directory.

Why each table is ``_cold_<table> UNION ALL _hot_<table>``: a tick changes only the hot lists,
so only the hot views are recreated and the year of cold files is not bound again.

Visibility: a symbol-day that ``state/tiers.json`` calls cold is read from its cold file only;
any other day from its hot files. Hot ``expiries``/``venue_oi`` files count only when the tick's
``snapshots`` file exists, because ingest writes that one last: a tick cut short by a crash is
invisible until the next ingest of that key or a rebuild completes it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from storage.schemas import empty_frame
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.atomic import atomic_write_parquet
from storage.catalog_file import CatalogWrite, remove_stale_catalog_temps, write_catalog
from storage.layout import (
    SUMMARY_TABLES,
    TABLES,
    Layout,
    hour_prefix,
    name_hour_prefix,
    rollup_name,
    stream_of,
)
from storage.state import TierState

VIEW_NAMES = (
    *TABLES,
    "latest_term_structure",
    "ingest_gaps",
    "expiries_hourly",
    "constant_maturity",
    "constant_maturity_hourly",
    "forward_vol_listed",
    "forward_vol_tenor",
    "term_structure_shape",
    "daily_term_structure",
    "daily_constant_maturity",
    "opex_anchors",
    "next_anchor",
)

_INGEST_GAPS_SQL = """
CREATE VIEW ingest_gaps AS
WITH attempts AS (
    SELECT symbol, CAST(floor(epoch(started_at) / 60) AS BIGINT) AS minute_index, outcome, reason
    FROM ingest_log
),
bounds AS (
    SELECT symbol, min(minute_index) AS first_index, max(minute_index) AS last_index
    FROM attempts GROUP BY symbol
),
minutes AS (
    SELECT symbol, unnest(range(first_index, last_index + 1)) AS minute_index FROM bounds
),
per_minute AS (
    SELECT symbol, minute_index, count(*) AS attempts,
           bool_or(outcome = 'stored') AS stored,
           string_agg(DISTINCT outcome, ', ' ORDER BY outcome) AS outcomes,
           string_agg(DISTINCT reason, ' | ' ORDER BY reason) AS reasons
    FROM attempts GROUP BY symbol, minute_index
)
SELECT m.symbol,
       to_timestamp(m.minute_index * 60) AS minute,
       coalesce(p.attempts, 0) AS attempts,
       coalesce(p.outcomes, 'no_attempt') AS outcomes,
       coalesce(p.reasons, 'no fetch attempt was logged in this minute') AS reasons
FROM minutes AS m LEFT JOIN per_minute AS p USING (symbol, minute_index)
WHERE NOT coalesce(p.stored, false)
ORDER BY m.symbol, minute
"""


def ensure_schema_files(layout: Layout) -> None:
    """Zero-row files that come first in every file list: they fix the view's columns and
    keep a view valid when a table has no data yet."""
    for table in TABLES:
        path = layout.schema_file(table)
        if not path.exists():
            atomic_write_parquet(path, empty_frame(table))


def _listed(directory: Path) -> Iterator[os.DirEntry[str]]:
    if not directory.is_dir():
        return
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith("."):
                yield entry


def hot_days(layout: Layout, table: str, symbol: str) -> list[date]:
    days = []
    for entry in _listed(layout.hot_symbol_dir(table, symbol)):
        try:
            days.append(date.fromisoformat(entry.name))
        except ValueError:
            continue
    return sorted(days)


def _hot_names(layout: Layout, table: str, symbol: str, day: date) -> set[str]:
    return {
        entry.name
        for entry in _listed(layout.hot_day_dir(table, symbol, day))
        if entry.name.endswith(".parquet")
    }


@functools.lru_cache(maxsize=256)
def _cold_paths(
    layout: Layout, table: str, symbol: str, days: tuple[tuple[date, str | None], ...]
) -> tuple[Path, ...]:
    # Cached: a long-lived writer (Dagster, the benchmark) lists the same year every tick.
    return tuple(layout.cold_file(table, symbol, day, generation) for day, generation in days)


def cold_file(layout: Layout, state: TierState, table: str, symbol: str, day: date) -> Path:
    """The current cold file of a cold symbol-day (the generation the state names)."""
    return layout.cold_file(table, symbol, day, state.generation(symbol, day))


def cold_files(layout: Layout, state: TierState, table: str) -> list[Path]:
    """The current cold files of every symbol-day the state calls cold."""
    files: list[Path] = []
    for symbol in SUPPORTED_SYMBOLS:
        days = tuple(
            (day, state.generation(symbol, day)) for day in sorted(state.of(symbol).cold_days)
        )
        files.extend(_cold_paths(layout, table, symbol, days))
    return files


def tick_names(layout: Layout, table: str, symbol: str, day: date) -> set[str]:
    """Names of a day's tick files of ``table`` (summary tables: complete ticks only)."""
    names = _hot_names(layout, table, symbol, day)
    if table in SUMMARY_TABLES and table != "snapshots":
        names &= _hot_names(layout, "snapshots", symbol, day)
    return names


def hot_files(layout: Layout, state: TierState, table: str) -> list[Path]:
    """The hot files of days that are not cold: each rolled hour's roll-up file, and the tick
    files of every other hour (summary tables: complete ticks only), in key order."""
    stream = stream_of(table)
    files: list[Path] = []
    for symbol in SUPPORTED_SYMBOLS:
        entry = state.of(symbol)
        for day in hot_days(layout, table, symbol):
            if day in entry.cold_days:
                continue
            rolled = entry.rolled_on(stream, day)
            covered = {hour_prefix(hour) for hour in rolled}
            day_dir = layout.hot_day_dir(table, symbol, day)
            hours_dir = layout.hot_hours_dir(table, symbol, day)
            ordered = [
                (hour_prefix(hour), hours_dir / rollup_name(hour, generation))
                for hour, generation in rolled.items()
            ]
            ordered.extend(
                (name, day_dir / name)
                for name in tick_names(layout, table, symbol, day)
                if name_hour_prefix(name) not in covered
            )
            files.extend(path for _, path in sorted(ordered))
    return files


def visible_files(layout: Layout, state: TierState, table: str) -> list[Path]:
    """The files a table's view reads, by the visibility rule above (schema file first)."""
    return [
        layout.schema_file(table),
        *cold_files(layout, state, table),
        *hot_files(layout, state, table),
    ]


def latest_file(layout: Layout, symbol: str) -> Path | None:
    """The symbol's newest latest-file; an older one may linger for a moment after a crash."""
    names = [
        entry.name
        for entry in _listed(layout.latest_dir(symbol))
        if entry.name.endswith(".parquet")
    ]
    return layout.latest_dir(symbol) / max(names) if names else None


def latest_files(layout: Layout) -> list[Path]:
    files = [layout.schema_file("expiries")]
    for symbol in SUPPORTED_SYMBOLS:
        path = latest_file(layout, symbol)
        if path is not None:
            files.append(path)
    return files


def _file_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(path).replace("'", "''") + "'" for path in paths) + "]"


def _read(paths: list[Path]) -> str:
    # union_by_name=false: DuckDB binds on the first file (the schema file) instead of opening
    # every file when the view is created. Every file is written with that same schema.
    return f"read_parquet({_file_list(paths)}, union_by_name = false, hive_partitioning = false)"


def cold_view(table: str) -> str:
    return f"_cold_{table}"


def hot_view(table: str) -> str:
    return f"_hot_{table}"


def build_catalog_sql(layout: Layout, state: TierState) -> list[str]:
    """Every CREATE VIEW statement of the catalog, in creation order.

    Each table is the union of a cold view and a hot view, so a tick (which changes only hot
    lists) leaves the cold views, and the cost of binding a year of files, alone.
    """
    # Table names are constants and paths are built by Layout and quoted by _file_list.
    statements: list[str] = []
    for table in TABLES:
        schema = layout.schema_file(table)
        cold = [schema, *cold_files(layout, state, table)]
        hot = [schema, *hot_files(layout, state, table)]
        statements += [
            f"CREATE VIEW {cold_view(table)} AS SELECT * FROM {_read(cold)}",  # noqa: S608
            f"CREATE VIEW {hot_view(table)} AS SELECT * FROM {_read(hot)}",  # noqa: S608
            f"CREATE VIEW {table} AS SELECT * FROM {cold_view(table)} "  # noqa: S608
            f"UNION ALL SELECT * FROM {hot_view(table)}",
        ]
    statements.append(
        "CREATE VIEW latest_term_structure AS SELECT * FROM "  # noqa: S608
        f"{_read(latest_files(layout))} ORDER BY symbol, position"
    )
    statements.append(_INGEST_GAPS_SQL)
    # Imported here: storage.research builds on this module.
    from storage.research.views import research_views

    statements.extend(research_views(layout, state))
    return statements


def refresh_catalog(layout: Layout, state: TierState) -> Path:
    """Bring ``warehouse.duckdb`` up to date with the state and the files on disk (atomic)."""
    return refresh_catalog_report(layout, state).path


def refresh_catalog_report(layout: Layout, state: TierState) -> CatalogWrite:
    """``refresh_catalog``, also saying how many views had to be recreated."""
    ensure_schema_files(layout)
    remove_stale_catalog_temps(layout.catalog)
    return write_catalog(layout.catalog, build_catalog_sql(layout, state))
