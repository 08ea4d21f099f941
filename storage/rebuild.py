# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""Rebuild days from the raw archive with today's code: backfill, replay and repair.

One transaction per UTC day: the day's ``snapshots``, ``expiries`` and ``venue_oi`` rows of the
chosen symbols are deleted and replaced by what today's code makes of the archived bodies, and
the day's hourly sample is rewritten from the new rows. Readers see the old day or the new one,
never a mix, and every tick stored before or after stays visible: the archive is the source of
the rows, read in the transaction that replaces them. The writer lock keeps a tick of this
machine from landing in between; a tick another machine commits meanwhile makes DuckLake refuse
the commit, and the day is read and replaced again.
Rebuilding a day twice gives the same rows. The ingest log and the quarantine are not derived
from the archive and are left as they are. A key archived more than once keeps its earliest
fetch: the rebuild deletes the other copies from the archive, so each key is stored once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial

import duckdb
import polars as pl

from backquant.symbols import SUPPORTED_SYMBOLS
from storage.archive import (
    RESPONSES,
    ArchiveRecord,
    archived_days,
    day_bounds,
    read_day,
    records_frame,
)
from storage.derived import stored_table
from storage.normalise import normalise_batch
from storage.parsing import parse_summaries
from storage.records import SummaryFrames
from storage.reports import NO_ARCHIVE, REBUILT, RebuildReport, SymbolDayRebuild
from storage.research.hourly_tier import replace_hourly_sample
from storage.schemas import SUMMARY_TABLES, key_stamp, sort_by_key
from storage.warehouse import Warehouse
from storage.writes import insert, retry_on_conflict, transaction


def _symbols(symbols: Iterable[str] | None) -> tuple[str, ...]:
    chosen = tuple(symbols) if symbols is not None else SUPPORTED_SYMBOLS
    unknown = [symbol for symbol in chosen if symbol not in SUPPORTED_SYMBOLS]
    if unknown:
        raise ValueError(
            f"unsupported symbol(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(SUPPORTED_SYMBOLS)}"
        )
    return chosen


def replace_day(
    connection: duckdb.DuckDBPyConnection,
    day: date,
    symbols: Sequence[str],
    tables: dict[str, pl.DataFrame],
    now: datetime,
) -> None:
    """Inside the caller's transaction: the day's summary rows of ``symbols`` become
    ``tables``, and its hourly sample follows them."""
    start, end = day_bounds(day)
    for table in SUMMARY_TABLES:
        connection.execute(
            f"DELETE FROM {stored_table(table)} WHERE computed_at >= ? AND computed_at < ? "
            "AND symbol IN (SELECT unnest(?))",
            [start, end, list(symbols)],
        )
        insert(connection, table, tables[table])
    replace_hourly_sample(connection, day, symbols, now)


def _archived_once(
    connection: duckdb.DuckDBPyConnection, records: list[ArchiveRecord]
) -> tuple[list[ArchiveRecord], int]:
    """A symbol-day's records, one per key (the earliest fetch), and how many copies were
    deleted from the archive, inside the caller's transaction."""
    first: dict[datetime, ArchiveRecord] = {}
    for record in sorted(records, key=lambda r: (r.computed_at, r.fetch.started_at)):
        first.setdefault(record.computed_at, record)
    copies = len(records) - len(first)
    if copies:
        counts = Counter(record.computed_at for record in records)
        twice = [at for at, n in counts.items() if n > 1]
        connection.execute(
            f"DELETE FROM {RESPONSES} WHERE symbol = ? AND computed_at IN (SELECT unnest(?))",
            [records[0].symbol, twice],
        )
        insert(connection, RESPONSES, records_frame([first[at] for at in twice]))
    return list(first.values()), copies


def _rebuilt(day: date, records: list[ArchiveRecord]) -> tuple[SummaryFrames, SymbolDayRebuild]:
    """A symbol-day's rows from its archived records, each table sorted by its key, and its
    report: a body today's code refuses stays archived and is reported."""
    parsed = parse_summaries([record.raw for record in records])
    frames, errors = normalise_batch([(p, r.fetch) for p, r in zip(parsed, records, strict=True)])
    frames = SummaryFrames(*(sort_by_key(f, table) for table, f in frames.as_tables().items()))
    rows = {table: frame.height for table, frame in frames.as_tables().items()}
    rejected = tuple(
        (key_stamp(records[index].computed_at), f"{error.kind}: {error}")
        for index, error in errors.items()
    )
    return frames, SymbolDayRebuild(records[0].symbol, day, REBUILT, len(records), rows, rejected)


def _missing(connection: duckdb.DuckDBPyConnection, symbol: str, day: date) -> SymbolDayRebuild:
    archived = archived_days(connection, symbol)
    span = f"{archived[0]} to {archived[-1]}" if archived else "no days at all"
    message = (
        f"no archived responses for {symbol} on {day}; nothing to rebuild (the archive of "
        f"{symbol} spans {span})"
    )
    return SymbolDayRebuild(symbol, day, NO_ARCHIVE, message=message)


def _rebuild_day(
    warehouse: Warehouse, connection: duckdb.DuckDBPyConnection, day: date, symbols: Sequence[str]
) -> list[SymbolDayRebuild]:
    # The archive is read in the transaction that replaces the day: a tick another machine
    # commits meanwhile makes the commit conflict (and the day is rebuilt again), never vanish.
    with transaction(connection, warehouse.config, f"the rebuild of {day}"):
        archived = read_day(connection, day, symbols)
        copies: dict[str, int] = {}
        for symbol, records in archived.items():
            archived[symbol], copies[symbol] = _archived_once(connection, records)
        rebuilt = {
            symbol: _rebuilt(day, records) for symbol, records in archived.items() if records
        }
        frames = SummaryFrames.concat(frames for frames, _ in rebuilt.values())
        replace_day(connection, day, symbols, frames.as_tables(), datetime.now(UTC))
    return [
        _with_copies(rebuilt[symbol][1], copies[symbol])
        if symbol in rebuilt
        else _missing(connection, symbol, day)
        for symbol in symbols
    ]


def _with_copies(report: SymbolDayRebuild, copies: int) -> SymbolDayRebuild:
    if not copies:
        return report
    message = f"{copies} second copies of archived responses deleted (each key is kept once)"
    return replace(report, message=message)


def _rebuild(warehouse: Warehouse, days: list[date], symbols: Sequence[str]) -> RebuildReport:
    started = time.perf_counter()
    reports: list[SymbolDayRebuild] = []
    with warehouse.writer() as connection:
        for day in days:
            reports += retry_on_conflict(partial(_rebuild_day, warehouse, connection, day, symbols))
    return RebuildReport(days=tuple(reports), seconds=time.perf_counter() - started)


def rebuild_day(
    warehouse: Warehouse, day: date, symbols: Iterable[str] | None = None
) -> RebuildReport:
    """Rebuild one UTC day for the given symbols (default: all four). Idempotent."""
    return _rebuild(warehouse, [day], _symbols(symbols))


def rebuild_range(
    warehouse: Warehouse, start: date, end: date, symbols: Iterable[str] | None = None
) -> RebuildReport:
    """Rebuild every day from ``start`` to ``end`` inclusive, one transaction per day."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start}); swap the dates")
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    return _rebuild(warehouse, days, _symbols(symbols))
