"""Hot-tier, latest-file and clean-up writes. Callers hold the writer lock."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import polars as pl

from storage.schemas import SummaryFrames
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.atomic import WriteBatch, atomic_write_parquet, fsync_dir, unlink_durably
from storage.catalog import cold_file, hot_days, latest_file
from storage.layout import TABLES, Layout, parse_key_stamp, utc_day
from storage.rollup import rolled_contains
from storage.state import TierState

# snapshots last: its presence marks the tick complete (see catalog.visible_files).
HOT_WRITE_ORDER = ("expiries", "venue_oi", "snapshots")


def write_hot_tick(
    layout: Layout,
    symbol: str,
    computed_at: datetime,
    frames: SummaryFrames,
    batch: WriteBatch | None = None,
) -> None:
    """The tick's hot files, snapshots last; staged in ``batch`` if given, else written now."""
    staged = batch if batch is not None else WriteBatch()
    tables = frames.as_tables()
    for table in HOT_WRITE_ORDER:
        staged.add_parquet(layout.hot_file(table, symbol, computed_at), tables[table])
    if batch is None:
        staged.commit()


def hot_tick_complete(layout: Layout, state: TierState, symbol: str, computed_at: datetime) -> bool:
    """True when the tick's snapshot is in the hot tier: its own file or its hour's roll-up."""
    if layout.hot_file("snapshots", symbol, computed_at).exists():
        return True
    return rolled_contains(layout, state, symbol, "snapshots", computed_at)


def attempt_logged(layout: Layout, state: TierState, symbol: str, started_at: datetime) -> bool:
    """True when the fetch attempt's ingest-log row is stored: its hot file, its hour's
    roll-up, or its day's cold file."""
    if layout.hot_file("ingest_log", symbol, started_at).exists():
        return True
    if rolled_contains(layout, state, symbol, "ingest_log", started_at):
        return True
    day = utc_day(started_at)
    cold = cold_file(layout, state, "ingest_log", symbol, day)
    if not state.is_cold(symbol, day) or not cold.exists():
        return False
    started = pl.read_parquet(cold, columns=["started_at"]).get_column("started_at")
    return bool((started == started_at).any())


def write_hot_log(
    layout: Layout,
    symbol: str,
    started_at: datetime,
    frame: pl.DataFrame,
    batch: WriteBatch | None = None,
) -> None:
    path = layout.hot_file("ingest_log", symbol, started_at)
    if batch is None:
        atomic_write_parquet(path, frame)
    else:
        batch.add_parquet(path, frame)


def latest_key(layout: Layout, symbol: str) -> datetime | None:
    path = latest_file(layout, symbol)
    return None if path is None else parse_key_stamp(path.stem)


def update_latest(
    layout: Layout,
    symbol: str,
    computed_at: datetime,
    expiries: pl.DataFrame,
    batch: WriteBatch | None = None,
) -> bool:
    """Make ``expiries`` the symbol's latest term structure unless a newer one is there."""
    current = latest_key(layout, symbol)
    if current is not None and current > computed_at:
        return False
    path = layout.latest_file(symbol, computed_at)
    if batch is None:
        atomic_write_parquet(path, expiries)
    else:
        batch.add_parquet(path, expiries)
    return True


def _delete_stale_latest(layout: Layout, symbol: str, now: datetime, grace_s: float) -> int:
    """Older latest files stay for the grace period: an older catalog may still list them."""
    newest = latest_file(layout, symbol)
    stale = [
        path
        for path in layout.latest_dir(symbol).glob("*.parquet")
        if path != newest and now.timestamp() - path.stat().st_mtime >= grace_s
    ]
    unlink_durably(stale)
    return len(stale)


def delete_expired_hot(layout: Layout, state: TierState, now: datetime, grace_s: float) -> int:
    """Drop hot day directories of clean cold days committed more than ``grace_s`` ago, and
    superseded latest files older than that.

    Dirty days keep theirs: late ingest-log rows live only there until the day is rebuilt.
    Only call after the catalog that stops reading them is in place.
    """
    removed = sum(
        _delete_stale_latest(layout, symbol, now, grace_s)
        for symbol in SUPPORTED_SYMBOLS
        if layout.latest_dir(symbol).is_dir()
    )
    for symbol, entry in state.symbols.items():
        for table in TABLES:
            for day in hot_days(layout, table, symbol):
                committed_at = entry.cold_days.get(day)
                if committed_at is None or day in entry.dirty_days:
                    continue
                if (now - committed_at).total_seconds() < grace_s:
                    continue
                directory = layout.hot_day_dir(table, symbol, day)
                shutil.rmtree(directory)
                fsync_dir(directory.parent)
                removed += 1
    return removed


def delete_superseded_cold(layout: Layout, state: TierState, now: datetime, grace_s: float) -> int:
    """Drop cold files that are not the generation the state names, once older than ``grace_s``:
    earlier generations of rebuilt days, and files of a rebuild that died before committing.

    Readers of an older catalog may still be reading them, hence the grace.
    """
    removed: list[Path] = []
    for table in TABLES:
        for symbol in SUPPORTED_SYMBOLS:
            directory = layout.cold_dir(table, symbol)
            if not directory.is_dir():
                continue
            for path in directory.glob("*.parquet"):
                try:
                    day = date.fromisoformat(path.name[:10])
                except ValueError:
                    continue
                current = state.is_cold(symbol, day) and path == cold_file(
                    layout, state, table, symbol, day
                )
                if not current and now.timestamp() - path.stat().st_mtime >= grace_s:
                    removed.append(path)
    unlink_durably(removed)
    return len(removed)
