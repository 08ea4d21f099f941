"""Rebuild symbol-days from the raw archive into the cold tier: compaction, backfill and replay.

For each symbol-day: read the archive (pack + loose records, deduplicated by key), normalise with
today's code, write one sorted zstd file per table, merge the day's ingest-log rows (they are not
in the archive), pack the archive, and only then mark the day cold in the state file. A crash at
any point leaves either the old visibility (hot files) or the new one (cold files), never both.
Rebuilding the same day twice writes identical files.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import polars as pl

from backquant.errors import InvalidResponseError
from backquant.frames import (
    TABLE_SORT_KEYS,
    FetchMeta,
    RejectedValueError,
    SummaryFrames,
    empty_frame,
)
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import ParsedSummary
from storage.archive import ArchiveRecord
from storage.atomic import atomic_write_parquet, remove_stale_temp_files
from storage.catalog import cold_file, refresh_catalog
from storage.layout import SUMMARY_TABLES, Layout, key_stamp
from storage.normalise import normalise_many
from storage.parsing import parse_summaries
from storage.reports import NO_ARCHIVE, REBUILT, RebuildReport, SymbolDayRebuild
from storage.rollup import hot_day_files
from storage.state import TierState, load_state, save_state
from storage.tiers import delete_expired_hot, delete_superseded_cold, latest_key, update_latest
from storage.warehouse import Warehouse

COLD_COMPRESSION_LEVEL = 6


def _parse_all(
    records: list[ArchiveRecord],
) -> tuple[list[tuple[ParsedSummary, FetchMeta]], list[tuple[str, str]]]:
    parsed: list[tuple[ParsedSummary, FetchMeta]] = []
    rejected: list[tuple[str, str]] = []
    outcomes = parse_summaries([record.raw for record in records])
    for record, outcome in zip(records, outcomes, strict=True):
        if isinstance(outcome, InvalidResponseError):
            rejected.append((key_stamp(record.computed_at), f"{outcome.kind}: {outcome}"))
        else:
            parsed.append((outcome, record.fetch))
    return parsed, rejected


def _normalise_day(
    items: list[tuple[ParsedSummary, FetchMeta]], rejected: list[tuple[str, str]]
) -> SummaryFrames:
    try:
        return normalise_many(items)
    except RejectedValueError:
        pass
    # Rare path: find the bodies today's code refuses, keep the rest.
    kept = []
    for parsed, fetch in items:
        try:
            normalise_many([(parsed, fetch)])
            kept.append((parsed, fetch))
        except RejectedValueError as error:
            stamp = parsed.response.meta.computed_at or "?"
            rejected.append((stamp, f"{error.kind}: {error}"))
    return normalise_many(kept)


def _day_log(layout: Layout, state: TierState, symbol: str, day: date) -> pl.DataFrame:
    """The day's ingest-log rows: the cold file (if the day was cold) plus every hot file
    (tick files and hourly roll-ups), each row once."""
    frames = [empty_frame("ingest_log")]
    cold = cold_file(layout, state, "ingest_log", symbol, day)
    if state.is_cold(symbol, day) and cold.exists():
        frames.append(pl.read_parquet(cold))
    hot = hot_day_files(layout, "ingest_log", symbol, day)
    if hot:
        frames.append(pl.read_parquet(hot))
    merged = pl.concat(frames, how="vertical")
    return merged.unique(subset=["symbol", "started_at"], keep="first").sort(
        list(TABLE_SORT_KEYS["ingest_log"])
    )


def _rebuild_symbol_day(
    warehouse: Warehouse, state: TierState, symbol: str, day: date
) -> SymbolDayRebuild:
    layout = warehouse.layout
    for table in (*SUMMARY_TABLES, "ingest_log"):
        remove_stale_temp_files(layout.hot_day_dir(table, symbol, day))
        remove_stale_temp_files(layout.hot_hours_dir(table, symbol, day))
        remove_stale_temp_files(layout.cold_file(table, symbol, day).parent)
    records = warehouse.archive.read_day(symbol, day)
    log = _day_log(layout, state, symbol, day)
    if not records and log.height == 0:
        archived = warehouse.archive.days(symbol)
        span = f"{archived[0]} to {archived[-1]}" if archived else "no days at all"
        return SymbolDayRebuild(
            symbol=symbol,
            day=day,
            status=NO_ARCHIVE,
            message=f"no archived responses and no ingest log for {symbol} on {day}; nothing "
            f"to rebuild (the archive of {symbol} spans {span})",
        )
    items, rejected = _parse_all(records)
    frames = _normalise_day(items, rejected)
    tables = {
        table: frame.sort(list(TABLE_SORT_KEYS[table]))
        for table, frame in {**frames.as_tables(), "ingest_log": log}.items()
    }
    # A new generation of files: until the state names it, readers keep the previous one whole.
    committed_at = datetime.now(UTC)
    generation = key_stamp(committed_at)
    for table, frame in tables.items():
        atomic_write_parquet(
            layout.cold_file(table, symbol, day, generation),
            frame,
            compression_level=COLD_COMPRESSION_LEVEL,
        )
    warehouse.archive.pack_day(symbol, day, records)
    state.mark_cold(symbol, day, committed_at, generation)
    save_state(layout, state)
    _refresh_latest(layout, symbol, tables["expiries"])
    message = "" if records else "no archived responses; only the ingest log was compacted"
    return SymbolDayRebuild(
        symbol=symbol,
        day=day,
        status=REBUILT,
        responses=len(records),
        rows_written={table: frame.height for table, frame in tables.items()},
        rejected=tuple(rejected),
        message=message,
    )


def _refresh_latest(layout: Layout, symbol: str, expiries: pl.DataFrame) -> None:
    """Rewrite the latest file from rebuilt rows when this day holds the newest snapshot."""
    if expiries.height == 0:
        return
    newest = expiries.get_column("computed_at").max()
    assert isinstance(newest, datetime)
    current = latest_key(layout, symbol)
    if current is None or newest >= current:
        update_latest(layout, symbol, newest, expiries.filter(pl.col("computed_at") == newest))


def _rebuild(warehouse: Warehouse, pairs: list[tuple[str, date]]) -> RebuildReport:
    started = time.perf_counter()
    with warehouse.lock():
        state = load_state(warehouse.layout)
        days = tuple(_rebuild_symbol_day(warehouse, state, symbol, day) for symbol, day in pairs)
        refresh_catalog(warehouse.layout, state)
        now, grace_s = datetime.now(UTC), warehouse.hot_grace.total_seconds()
        delete_expired_hot(warehouse.layout, state, now, grace_s)
        delete_superseded_cold(warehouse.layout, state, now, grace_s)
    return RebuildReport(days=days, seconds=time.perf_counter() - started)


def _symbols(symbols: Iterable[str] | None) -> tuple[str, ...]:
    chosen = tuple(symbols) if symbols is not None else SUPPORTED_SYMBOLS
    unknown = [symbol for symbol in chosen if symbol not in SUPPORTED_SYMBOLS]
    if unknown:
        raise ValueError(
            f"unsupported symbol(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(SUPPORTED_SYMBOLS)}"
        )
    return chosen


def rebuild_day(
    warehouse: Warehouse, day: date, symbols: Iterable[str] | None = None
) -> RebuildReport:
    """Rebuild one UTC day for the given symbols (default: all four). Idempotent."""
    return _rebuild(warehouse, [(symbol, day) for symbol in _symbols(symbols)])


def rebuild_range(
    warehouse: Warehouse, start: date, end: date, symbols: Iterable[str] | None = None
) -> RebuildReport:
    """Rebuild every day from ``start`` to ``end`` inclusive."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start}); swap the dates")
    chosen = _symbols(symbols)
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    return _rebuild(warehouse, [(symbol, day) for day in days for symbol in chosen])


def rebuild_dirty(warehouse: Warehouse) -> RebuildReport:
    """Rebuild every dirty symbol-day (what the Dagster sensor calls)."""
    return _rebuild(warehouse, dirty_days(warehouse))


def dirty_days(warehouse: Warehouse) -> list[tuple[str, date]]:
    """Cold symbol-days that received ticks after they were rebuilt."""
    return load_state(warehouse.layout).dirty()
