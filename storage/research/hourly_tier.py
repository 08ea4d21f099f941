# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""The hourly sample: what makes a year of hourly constant-maturity series fast.

Reading a year of 1-minute ``expiries`` for the last snapshot of every hour costs a scan of tens
of millions of rows; the ``hourly_sample`` lake table keeps just those rows (one snapshot per
symbol and hour). ``research_daily`` writes it for its days and a rebuild rewrites it for the
days it replaces, in the same transaction as their rows, so it never describes rows that are
gone. Only days that are over are sampled, and a symbol-day is sampled whole or not at all: the
``expiries_hourly`` view takes every symbol-day the table holds from it and samples every other
one on the fly (storage/research/views.py), so a day sampled half-way would lose its second half.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb

from backquant.symbols import SUPPORTED_SYMBOLS
from storage.archive import day_bounds
from storage.research.derived_sql import MICROS_PER_HOUR, sample_sql
from storage.research.views import HOURLY_SAMPLE_TABLE
from storage.warehouse import Warehouse
from storage.writes import transaction


@dataclass(frozen=True, slots=True)
class DaySampled:
    day: date
    rows: int


def replace_hourly_sample(
    connection: duckdb.DuckDBPyConnection,
    day: date,
    symbols: Sequence[str],
    complete_before: datetime,
) -> int:
    """Inside the caller's transaction: replace the day's sample of ``symbols`` with the last
    snapshot of every hour of ``expiries``, or with nothing when the day is not over by
    ``complete_before`` (its rows are then sampled on the fly). Returns the rows written."""
    start, end = day_bounds(day)
    listed = list(symbols)
    connection.execute(
        f"DELETE FROM {HOURLY_SAMPLE_TABLE} WHERE computed_at >= ? AND computed_at < ? "
        "AND symbol IN (SELECT unnest(?))",
        [start, end, listed],
    )
    if complete_before < end:
        return 0
    window = (
        "(SELECT * FROM expiries WHERE computed_at >= $start AND computed_at < $end "
        "AND symbol IN (SELECT unnest($symbols)))"
    )
    connection.execute(
        f"INSERT INTO {HOURLY_SAMPLE_TABLE} BY NAME {sample_sql(window, MICROS_PER_HOUR)}",
        {"start": start, "end": end, "symbols": listed},
    )
    row = connection.execute(
        f"SELECT count(*) FROM {HOURLY_SAMPLE_TABLE} WHERE computed_at >= ? "
        "AND computed_at < ? AND symbol IN (SELECT unnest(?))",
        [start, end, listed],
    ).fetchone()
    return int(row[0]) if row else 0


def resample_late_rows(
    connection: duckdb.DuckDBPyConnection,
    keys: Iterable[tuple[str, datetime]],
    now: datetime,
) -> list[date]:
    """Inside the caller's transaction, after rows were added at ``keys`` (symbol, computed_at):
    re-sample every day that is over and already holds a sample of those symbols, so the sample
    keeps describing the day's rows (an import of captured bodies, or a tick's late body, can
    land in such a day). Rows of today, a tick's usual case, cost no query. Returns the days
    re-sampled."""
    today = now.astimezone(UTC).date()
    late: dict[date, set[str]] = {}
    for symbol, computed_at in keys:
        day = computed_at.astimezone(UTC).date()
        if day < today:
            late.setdefault(day, set()).add(symbol)
    resampled = []
    for day, symbols in sorted(late.items()):
        start, end = day_bounds(day)
        sampled = connection.execute(
            f"SELECT DISTINCT symbol FROM {HOURLY_SAMPLE_TABLE} WHERE computed_at >= ? "
            "AND computed_at < ? AND symbol IN (SELECT unnest(?)) ORDER BY symbol",
            [start, end, sorted(symbols)],
        ).fetchall()
        if sampled:
            replace_hourly_sample(connection, day, [row[0] for row in sampled], now)
            resampled.append(day)
    return resampled


def materialise_days(
    warehouse: Warehouse,
    days: Sequence[date],
    symbols: Sequence[str] = SUPPORTED_SYMBOLS,
    *,
    now: datetime | None = None,
) -> list[DaySampled]:
    """Write the hourly sample of each day that is over by ``now``, one transaction per day
    (a day not over yet gets no sample). Safe to repeat."""
    complete_before = now or datetime.now(UTC)
    sampled = []
    with warehouse.writer() as connection:
        for day in sorted(set(days)):
            with transaction(connection, warehouse.config, f"the hourly sample of {day}"):
                rows = replace_hourly_sample(connection, day, symbols, complete_before)
            sampled.append(DaySampled(day, rows))
    return sampled
