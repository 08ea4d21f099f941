"""Rebuild symbol-days from the raw archive into the cold tier: compaction, backfill and replay.

For each symbol-day: read the archive (pack + loose records, deduplicated by key), normalise with
today's code, write one sorted zstd file per table under a new generation name, merge the day's
ingest-log rows (they are not in the archive), pack the archive, and only then mark the day cold
in the state file. A crash at any point leaves either the old visibility (hot files, or the
previous generation) or the new one, never both. Rebuilding the same day twice writes identical
files.

A bulk import (storage/bulk.py) shares every step: ``prepare_symbol_day`` turns a day's records
in memory into sorted tables, ``write_symbol_day`` writes the cold summary files and the pack, and
``commit_days`` (run by the lock holder only) writes the ingest-log files and commits the state
once for all days. Symbol-days are independent until that commit, so ``storage.day_jobs`` can spread
them over worker processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import polars as pl

from backquant.frames import empty_frame, sort_by_key
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.archive import Archive
from storage.atomic import atomic_write_parquet, remove_stale_temp_files
from storage.catalog import cold_file, refresh_catalog
from storage.day_jobs import DayWrites, run_day_jobs
from storage.layout import TABLES, Layout, key_stamp
from storage.parsing import PreparedDay, prepare_symbol_day
from storage.reports import NO_ARCHIVE, REBUILT, RebuildReport, SymbolDayRebuild
from storage.rollup import hot_day_files
from storage.state import TierState, load_state, save_state
from storage.tiers import delete_expired_hot, delete_superseded_cold, latest_key, update_latest
from storage.warehouse import Warehouse

COLD_COMPRESSION_LEVEL = 3
"""zstd level of cold files. Level 6 took twice the CPU (67 against 33 ms for a BTC day's three
tables) for 6% fewer bytes (1,630 against 1,739 KB); the bulk import and rebuild write every
cold file, and zstd decompresses both levels at the same speed."""


@dataclass(frozen=True, slots=True)
class DayJob:
    """One symbol-day for a worker: where, which day, and the generation name to write."""

    home: Path
    symbol: str
    day: date
    generation: str
    has_log: bool
    """The day has ingest-log rows, so it is written even without archived responses."""


@dataclass(frozen=True, slots=True)
class DayBuild:
    """What a worker wrote for one symbol-day; nothing is visible before ``commit_days``."""

    symbol: str
    day: date
    generation: str
    written: bool
    """False when the day had neither archived responses nor ingest-log rows."""
    responses: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    rejected: tuple[tuple[str, str], ...] = ()
    newest: pl.DataFrame | None = None
    """The expiries of the day's newest snapshot, for the symbol's latest file."""


def write_symbol_day(
    layout: Layout, job: DayJob, prepared: PreparedDay, *, rewrite_pack: bool
) -> DayBuild:
    """Write the day's cold summary files under the job's generation, then its archive pack
    (rewritten when ``rewrite_pack``, e.g. records were added). Readers see none of it until
    the state names the generation."""
    for table, frame in prepared.tables.items():
        atomic_write_parquet(
            layout.cold_file(table, job.symbol, job.day, job.generation),
            frame,
            compression_level=COLD_COMPRESSION_LEVEL,
        )
    Archive(layout).pack_day(job.symbol, job.day, prepared.records, rewrite=rewrite_pack)
    expiries = prepared.tables["expiries"]
    newest = None
    if expiries.height:
        newest = expiries.filter(pl.col("computed_at") == pl.col("computed_at").max())
    return DayBuild(
        symbol=job.symbol,
        day=job.day,
        generation=job.generation,
        written=True,
        responses=len(prepared.records),
        rows_written={table: frame.height for table, frame in prepared.tables.items()},
        rejected=tuple(prepared.rejected),
        newest=newest,
    )


def rebuild_symbol_day(job: DayJob) -> DayBuild | DayWrites[DayBuild]:
    """Rebuild one symbol-day from its archive (runs in a worker process or in the writer);
    the day's file writes come back as ``DayWrites`` when there are any."""
    layout = Layout(job.home)
    archived = Archive(layout).read_day(job.symbol, job.day)
    if not archived and not job.has_log:
        return DayBuild(job.symbol, job.day, job.generation, written=False)
    prepared = prepare_symbol_day(archived)
    return DayWrites(partial(write_symbol_day, layout, job, prepared, rewrite_pack=False))


def stored_log_rows(layout: Layout, state: TierState, symbol: str, day: date) -> pl.DataFrame:
    """The day's ingest-log rows: the cold file (if the day was cold) plus every hot file
    (tick files and hourly roll-ups), each row once."""
    frames = [empty_frame("ingest_log")]
    cold = cold_file(layout, state, "ingest_log", symbol, day)
    if state.is_cold(symbol, day) and cold.exists():
        frames.append(pl.read_parquet(cold))
    hot = hot_day_files(layout, "ingest_log", symbol, day)
    if hot:
        frames.append(pl.read_parquet(hot))
    return merge_log_rows(frames)


def merge_log_rows(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Ingest-log rows of one symbol-day, one per attempt (``symbol, started_at``; the first
    frame that has an attempt wins), sorted as cold files are."""
    merged = pl.concat(frames, how="vertical")
    return sort_by_key(merged.unique(subset=["symbol", "started_at"], keep="first"), "ingest_log")


def remove_stale_temps(layout: Layout, pairs: Iterable[tuple[str, date]]) -> None:
    """Temp files a killed writer left where these symbol-days write. Run by the lock holder
    before any job starts: the cold and archive directories are shared by a symbol's days, so a
    worker cleaning them could delete another worker's file in progress."""
    directories: set[Path] = set()
    for symbol, day in pairs:
        directories.add(layout.archive_symbol_dir(symbol))
        for table in TABLES:
            directories.add(layout.hot_day_dir(table, symbol, day))
            directories.add(layout.hot_hours_dir(table, symbol, day))
            directories.add(layout.cold_dir(table, symbol))
    for directory in sorted(directories):
        remove_stale_temp_files(directory)


def new_generation(state: TierState, symbol: str, day: date, committed_at: datetime) -> str:
    """The generation name for files committed at ``committed_at``; never the current one
    (after a clock step it could be), which readers may have open."""
    generation = key_stamp(committed_at)
    return generation if generation != state.generation(symbol, day) else f"{generation}r"


def commit_days(
    warehouse: Warehouse,
    state: TierState,
    builds: Sequence[DayBuild],
    logs: Mapping[tuple[str, date], pl.DataFrame],
    committed_at: datetime,
) -> None:
    """Make written days visible: their ingest-log files, then one state save (the commit
    point) naming every new generation, then the latest files. Caller holds the writer lock;
    the archive packs are already written, so the archive is committed before the state."""
    layout = warehouse.layout
    written = [build for build in builds if build.written]
    for build in written:
        atomic_write_parquet(
            layout.cold_file("ingest_log", build.symbol, build.day, build.generation),
            logs[(build.symbol, build.day)],
            compression_level=COLD_COMPRESSION_LEVEL,
        )
    for build in written:
        state.mark_cold(build.symbol, build.day, committed_at, build.generation)
    if written:
        save_state(layout, state)
    for build in written:
        _refresh_latest(layout, build.symbol, build.newest)


def _refresh_latest(layout: Layout, symbol: str, newest: pl.DataFrame | None) -> None:
    """Rewrite the latest file from rebuilt rows when this day holds the newest snapshot."""
    if newest is None:
        return
    computed_at = newest.item(0, "computed_at")
    assert isinstance(computed_at, datetime)
    current = latest_key(layout, symbol)
    if current is None or computed_at >= current:
        update_latest(layout, symbol, computed_at, newest)


def finish_writes(warehouse: Warehouse, state: TierState) -> None:
    """After a commit: the new catalog, then the clean-up of files it no longer lists."""
    refresh_catalog(warehouse.layout, state)
    now, grace_s = datetime.now(UTC), warehouse.hot_grace.total_seconds()
    delete_expired_hot(warehouse.layout, state, now, grace_s)
    delete_superseded_cold(warehouse.layout, state, now, grace_s)


def _report(warehouse: Warehouse, build: DayBuild, log: pl.DataFrame) -> SymbolDayRebuild:
    if not build.written:
        archived = warehouse.archive.days(build.symbol)
        span = f"{archived[0]} to {archived[-1]}" if archived else "no days at all"
        return SymbolDayRebuild(
            symbol=build.symbol,
            day=build.day,
            status=NO_ARCHIVE,
            message=f"no archived responses and no ingest log for {build.symbol} on "
            f"{build.day}; nothing to rebuild (the archive of {build.symbol} spans {span})",
        )
    return SymbolDayRebuild(
        symbol=build.symbol,
        day=build.day,
        status=REBUILT,
        responses=build.responses,
        rows_written={**build.rows_written, "ingest_log": log.height},
        rejected=build.rejected,
        message=""
        if build.responses
        else "no archived responses; only the ingest log was compacted",
    )


COMMIT_EVERY = 64
"""Symbol-days committed together by a long rebuild: one state save per batch instead of per
day, and a crash loses at most one batch of work (~15 s)."""


def _rebuild_batch(
    warehouse: Warehouse, state: TierState, pairs: list[tuple[str, date]], workers: int | None
) -> list[SymbolDayRebuild]:
    layout = warehouse.layout
    committed_at = datetime.now(UTC)
    logs = {(symbol, day): stored_log_rows(layout, state, symbol, day) for symbol, day in pairs}
    jobs = [
        DayJob(
            home=layout.home,
            symbol=symbol,
            day=day,
            generation=new_generation(state, symbol, day, committed_at),
            has_log=logs[(symbol, day)].height > 0,
        )
        for symbol, day in pairs
    ]
    remove_stale_temps(layout, pairs)
    archived = [warehouse.archive.day_size(symbol, day) for symbol, day in pairs]
    builds = run_day_jobs(
        rebuild_symbol_day,
        jobs,
        workers,
        sizes=[day.records for day in archived],
        weights=[day.body_bytes for day in archived],
    )
    commit_days(warehouse, state, builds, logs, committed_at)
    return [_report(warehouse, build, logs[(build.symbol, build.day)]) for build in builds]


def _rebuild(
    warehouse: Warehouse, pairs: list[tuple[str, date]], workers: int | None
) -> RebuildReport:
    started = time.perf_counter()
    days: list[SymbolDayRebuild] = []
    with warehouse.lock():
        state = load_state(warehouse.layout)
        for first in range(0, len(pairs), COMMIT_EVERY):
            batch = pairs[first : first + COMMIT_EVERY]
            days += _rebuild_batch(warehouse, state, batch, workers)
        finish_writes(warehouse, state)
    return RebuildReport(days=tuple(days), seconds=time.perf_counter() - started)


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
    warehouse: Warehouse,
    day: date,
    symbols: Iterable[str] | None = None,
    *,
    workers: int | None = None,
) -> RebuildReport:
    """Rebuild one UTC day for the given symbols (default: all four). Idempotent.

    ``workers``: processes to use, this one included; None (default): one per CPU when the
    days hold enough responses to repay starting the others (``day_jobs.run_day_jobs``), else
    just this one."""
    return _rebuild(warehouse, [(symbol, day) for symbol in _symbols(symbols)], workers)


def rebuild_range(
    warehouse: Warehouse,
    start: date,
    end: date,
    symbols: Iterable[str] | None = None,
    *,
    workers: int | None = None,
) -> RebuildReport:
    """Rebuild every day from ``start`` to ``end`` inclusive (``workers`` as ``rebuild_day``)."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start}); swap the dates")
    chosen = _symbols(symbols)
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    return _rebuild(warehouse, [(symbol, day) for day in days for symbol in chosen], workers)


def rebuild_dirty(warehouse: Warehouse, *, workers: int | None = None) -> RebuildReport:
    """Rebuild every dirty symbol-day (what the Dagster sensor calls; ``workers`` as
    ``rebuild_day``)."""
    return _rebuild(warehouse, dirty_days(warehouse), workers)


def dirty_days(warehouse: Warehouse) -> list[tuple[str, date]]:
    """Cold symbol-days that received ticks after they were rebuilt."""
    return load_state(warehouse.layout).dirty()
