"""Hourly roll-up of hot tick files: what keeps a tick's cost flat through the day.

A tick writes one small file per table × symbol; by the evening a day holds 1,440 of them per
table × symbol, and every tick would rebind views listing all of them. So once a stream's hour is
over (its newest tick is ``ROLL_LAG`` past the hour's end), its tick files are merged into one
sorted file per table, ``hours/<HH>.<generation>.parquet``, and the state file names that
generation (the commit point, exactly like a cold day's generation). From then on the catalog
reads the hour from the roll-up alone, so a day lists at most 24 roll-ups and an hour of ticks.

Late ticks: a tick that writes into a rolled hour marks it dirty in the state *before* its files
are committed, and the hour is rolled again (old roll-up ∪ tick files, tick files winning for
their keys) in the same tick. A crash between the two leaves the hour dirty, so the next tick
finishes the job; meanwhile readers see the old roll-up, never a key twice.

Tick files of a rolled hour, and superseded roll-up files, are deleted once older than the hot
grace (a reader of an older catalog may still list them). Summary tables roll up together and
only complete ticks (those whose snapshots file exists); ingest_log rolls up on its own, keyed
by started_at. Days that are cold are left alone: the cold tier already holds them.
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from storage.schemas import empty_frame, sort_by_key
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.atomic import WriteBatch, unlink_durably
from storage.catalog import hot_days, tick_names
from storage.layout import (
    STREAM_TABLES,
    Layout,
    hour_prefix,
    key_stamp,
    name_hour_prefix,
    parse_key_stamp,
    rollup_name,
    stream_of,
    utc_hour,
)
from storage.state import HourKey, TierState

ROLL_LAG: Final[timedelta] = timedelta(minutes=5)
"""An hour is rolled once the stream's newest tick is this far past the hour's end: a response
computed just before the hour's end can still arrive a little later."""
HOUR: Final[timedelta] = timedelta(hours=1)
_KEY_COLUMN: Final[dict[str, str]] = {"summary": "computed_at", "log": "started_at"}


@dataclass(frozen=True, slots=True)
class RolledHour:
    symbol: str
    stream: str
    hour: datetime
    tick_files: int
    """Tick files merged into this roll-up (per table)."""
    rows: int
    """Rows of the stream's first table in the roll-up (snapshots or ingest_log)."""


def _anchor_table(stream: str) -> str:
    """The table whose tick files define the stream's ticks (summary: snapshots, whose file
    marks a complete tick)."""
    return STREAM_TABLES[stream][0]


def _ticks_by_hour(
    layout: Layout, state: TierState, symbol: str, stream: str
) -> dict[datetime, list[str]]:
    """Tick file names of the stream's hot days that are not cold, by UTC hour."""
    table = _anchor_table(stream)
    cold_days = state.of(symbol).cold_days
    by_prefix: dict[str, list[str]] = defaultdict(list)
    for day in hot_days(layout, table, symbol):
        if day not in cold_days:
            for name in tick_names(layout, table, symbol, day):
                by_prefix[name_hour_prefix(name)].append(name)
    # Names share their hour's prefix, so one parse per hour (not per file) finds the hour.
    by_hour: dict[datetime, list[str]] = {}
    for names in by_prefix.values():
        try:
            by_hour[utc_hour(_key_of(names[0]))] = names
        except ValueError:
            continue  # not a name ingest writes; never rolled up
    return by_hour


def _key_of(name: str) -> datetime:
    return parse_key_stamp(name.removesuffix(".parquet"))


def due_hours(
    state: TierState, symbol: str, stream: str, ticks: dict[datetime, list[str]]
) -> list[datetime]:
    """Dirty hours, and unrolled hours that ended ``ROLL_LAG`` before the newest tick."""
    if not ticks:
        return []
    entry = state.of(symbol)
    newest = _key_of(max(max(names) for names in ticks.values()))
    horizon = newest - ROLL_LAG
    due = {
        hour
        for hour in ticks
        if (stream, hour) not in entry.rolled_hours and hour + HOUR <= horizon
    }
    due.update(
        hour
        for of_stream, hour in entry.dirty_hours
        if of_stream == stream and hour.date() not in entry.cold_days
    )
    return sorted(due)


def _merged(
    layout: Layout,
    state: TierState,
    symbol: str,
    stream: str,
    table: str,
    hour: datetime,
    names: list[str],
) -> pl.DataFrame:
    """The previous roll-up (if any) with the hour's tick files, which win for their keys."""
    frames = [empty_frame(table)]
    day_dir = layout.hot_day_dir(table, symbol, hour.date())
    ticks = pl.read_parquet([day_dir / name for name in names]) if names else None
    previous = state.of(symbol).rolled_hours.get((stream, hour))
    if previous is not None:
        old = pl.read_parquet(layout.rollup_file(table, symbol, hour, previous))
        if ticks is not None:
            key = _KEY_COLUMN[stream]
            old = old.filter(~pl.col(key).is_in(ticks.get_column(key).unique().implode()))
        frames.append(old)
    if ticks is not None:
        frames.append(ticks)
    return sort_by_key(pl.concat(frames, how="vertical"), table)


def _roll_hour(
    layout: Layout,
    state: TierState,
    symbol: str,
    stream: str,
    hour: datetime,
    names: list[str],
    generation: str,
    batch: WriteBatch,
) -> RolledHour:
    rows = 0
    for index, table in enumerate(STREAM_TABLES[stream]):
        frame = _merged(layout, state, symbol, stream, table, hour, names)
        batch.add_parquet(layout.rollup_file(table, symbol, hour, generation), frame)
        if index == 0:
            rows = frame.height
    return RolledHour(symbol, stream, hour, len(names), rows)


def roll_up(layout: Layout, state: TierState, now: datetime | None = None) -> list[RolledHour]:
    """Roll every due hour of every symbol and stream, then commit the new generations in
    ``state`` (the caller saves it: that save is the commit point). Caller holds the lock."""
    generation = key_stamp(now or datetime.now(UTC))
    batch = WriteBatch()
    rolled: list[RolledHour] = []
    try:
        for symbol in SUPPORTED_SYMBOLS:
            for stream in STREAM_TABLES:
                ticks = _ticks_by_hour(layout, state, symbol, stream)
                for hour in due_hours(state, symbol, stream, ticks):
                    names = sorted(ticks.get(hour, []))
                    rolled.append(
                        _roll_hour(layout, state, symbol, stream, hour, names, generation, batch)
                    )
        batch.commit()
    except BaseException:
        batch.discard()
        raise
    for item in rolled:
        state.mark_rolled(item.symbol, (item.stream, item.hour), generation)
    return rolled


_ROLLED_KEY: Final = {"snapshots": "computed_at", "ingest_log": "started_at"}
"""The column each stream's key instant is in: a snapshot's computed_at, an attempt's start."""


def rolled_contains(
    layout: Layout, state: TierState, symbol: str, table: str, instant: datetime
) -> bool:
    """True when the roll-up of ``instant``'s hour holds it: a snapshot (``snapshots``, by
    computed_at) or a fetch attempt (``ingest_log``, by started_at)."""
    key: HourKey = (stream_of(table), utc_hour(instant))
    generation = state.of(symbol).rolled_hours.get(key)
    if generation is None:
        return False
    path = layout.rollup_file(table, symbol, key[1], generation)
    column = _ROLLED_KEY[table]
    keys = pl.read_parquet(path, columns=[column]).get_column(column)
    return bool((keys == instant).any())


@functools.lru_cache(maxsize=4096)
def _generation_time(generation: str) -> datetime:
    # Cached: every tick checks the age of every rolled hour's generation.
    return parse_key_stamp(generation)


def _generation_age_s(generation: str, now: datetime) -> float:
    return (now - _generation_time(generation)).total_seconds()


def delete_rolled_ticks(layout: Layout, state: TierState, now: datetime, grace_s: float) -> int:
    """Delete tick files of clean rolled hours, and roll-up files the state no longer names,
    once older than ``grace_s``. Cold days are left to ``tiers.delete_expired_hot``."""
    doomed: list[Path] = []
    for symbol in SUPPORTED_SYMBOLS:
        entry = state.of(symbol)
        for stream, tables in STREAM_TABLES.items():
            settled: dict[date, set[str]] = defaultdict(set)
            for (of_stream, hour), generation in entry.rolled_hours.items():
                if of_stream != stream or (stream, hour) in entry.dirty_hours:
                    continue
                if _generation_age_s(generation, now) >= grace_s:
                    settled[hour.date()].add(hour_prefix(hour))
            for table in tables:
                for day in hot_days(layout, table, symbol):
                    if day in entry.cold_days:
                        continue
                    day_dir = layout.hot_day_dir(table, symbol, day)
                    doomed.extend(
                        day_dir / name
                        for name in _parquet_names(day_dir)
                        if name_hour_prefix(name) in settled.get(day, ())
                    )
                    doomed.extend(
                        _superseded_rollups(
                            layout, entry.rolled_on(stream, day), table, symbol, day, now, grace_s
                        )
                    )
    unlink_durably(doomed)
    return len(doomed)


def hot_day_files(layout: Layout, table: str, symbol: str, day: date) -> list[Path]:
    """Every hot file of a symbol-day of ``table``: tick files and roll-ups of any generation.
    Their rows overlap (a roll-up repeats its ticks), so readers deduplicate by key."""
    day_dir = layout.hot_day_dir(table, symbol, day)
    hours_dir = layout.hot_hours_dir(table, symbol, day)
    return sorted(
        [
            *(hours_dir / name for name in _parquet_names(hours_dir)),
            *(day_dir / name for name in _parquet_names(day_dir)),
        ]
    )


def _parquet_names(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            names = [entry.name for entry in entries]
    except FileNotFoundError:
        return []
    return [name for name in names if name.endswith(".parquet") and not name.startswith(".")]


def _superseded_rollups(
    layout: Layout,
    current: dict[datetime, str],
    table: str,
    symbol: str,
    day: date,
    now: datetime,
    grace_s: float,
) -> list[Path]:
    directory = layout.hot_hours_dir(table, symbol, day)
    stale = set(_parquet_names(directory)) - {
        rollup_name(hour, name) for hour, name in current.items()
    }
    cutoff = now.timestamp() - grace_s
    return [directory / name for name in stale if (directory / name).stat().st_mtime <= cutoff]
