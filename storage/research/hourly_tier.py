# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""The hourly sample: what makes a year of hourly constant-maturity series fast.

Reading a year of 1-minute ``expiries`` for the last snapshot of every hour costs a scan of tens
of millions of rows; the ``hourly_sample`` lake table keeps just those rows (one snapshot per
symbol and hour) for whole hours. ``research_daily`` writes it for its days and a rebuild
rewrites it for the days it replaces, in the same transaction as their rows, so it never
describes rows that are gone. The ``expiries_hourly`` view adds the hours after the newest
sampled one, sampled on the fly (storage/research/views.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import duckdb

from backquant.symbols import SUPPORTED_SYMBOLS
from storage.archive import day_bounds
from storage.research.derived_sql import MICROS_PER_HOUR, sample_sql
from storage.research.views import HOURLY_SAMPLE_TABLE
from storage.warehouse import Warehouse
from storage.writes import transaction

_HOUR: Final = timedelta(hours=1)


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
    snapshot of every hour of ``expiries`` that ended by ``complete_before``. Returns rows."""
    start, end = day_bounds(day)
    through = min(end, complete_before.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
    listed = list(symbols)
    connection.execute(
        f"DELETE FROM {HOURLY_SAMPLE_TABLE} WHERE computed_at >= ? AND computed_at < ? "
        "AND symbol IN (SELECT unnest(?))",
        [start, end, listed],
    )
    if through <= start:
        return 0
    window = (
        "(SELECT * FROM expiries WHERE computed_at >= $start AND computed_at < $through "
        "AND symbol IN (SELECT unnest($symbols)))"
    )
    connection.execute(
        f"INSERT INTO {HOURLY_SAMPLE_TABLE} BY NAME {sample_sql(window, MICROS_PER_HOUR)}",
        {"start": start, "through": through, "symbols": listed},
    )
    row = connection.execute(
        f"SELECT count(*) FROM {HOURLY_SAMPLE_TABLE} WHERE computed_at >= ? "
        "AND computed_at < ? AND symbol IN (SELECT unnest(?))",
        [start, end, listed],
    ).fetchone()
    return int(row[0]) if row else 0


def materialise_days(
    warehouse: Warehouse,
    days: Sequence[date],
    symbols: Sequence[str] = SUPPORTED_SYMBOLS,
    *,
    now: datetime | None = None,
) -> list[DaySampled]:
    """Write the hourly sample of each day (whole hours only), one transaction per day.
    Safe to repeat."""
    complete_before = now or datetime.now(UTC)
    sampled = []
    with warehouse.writer() as connection:
        for day in sorted(set(days)):
            with transaction(connection, warehouse.config, f"the hourly sample of {day}"):
                rows = replace_hourly_sample(connection, day, symbols, complete_before)
            sampled.append(DaySampled(day, rows))
    return sampled
