"""The materialised hourly sample: what makes a year of hourly CM series fast.

Reading a year of 1-minute ``expiries`` costs ~1 s even for two columns, and 1,460 small day files
cost ~0.2–0.4 s in file overhead alone (measured while designing this). So the sample (the rows of
each symbol's last snapshot in every UTC hour) of the cold days is kept in one file per
symbol-month:

    <home>/research/expiries_hourly/<SYMBOL>/<YYYY-MM>.<fingerprint>.parquet

The fingerprint hashes the month's cold days with their commit instants (``state/tiers.json``)
and the sampling SQL, so a rebuilt or newly compacted day, or changed code, makes the file stale
without anyone having to delete it: the catalog then samples that month's cold files on the fly
until the month is materialised again (the ``research_daily`` asset does it after each
``expiry_history`` partition). Hot days are always sampled on the fly, from the last hot file of
each hour only (hot file names are the snapshot's computed_at).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final

import duckdb

from backquant.frames import check_symbol
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.atomic import atomic_write_parquet
from storage.catalog import cold_file, visible_files
from storage.layout import Layout, key_stamp, parse_key_stamp
from storage.research.derived_sql import MICROS_PER_HOUR, sample_sql
from storage.state import TierState, load_state
from storage.warehouse import Warehouse

HOURLY_TABLE: Final[str] = "expiries_hourly"
_MONTH_FILE = re.compile(r"^(\d{4})-(\d{2})\.([0-9a-f]{16})\.parquet$")

Month = tuple[int, int]


def hourly_dir(layout: Layout, symbol: str) -> Path:
    return layout.home / "research" / HOURLY_TABLE / check_symbol(symbol)


def _read_sql(paths: list[Path]) -> str:
    listed = ", ".join("'" + str(path).replace("'", "''") + "'" for path in paths)
    return f"read_parquet([{listed}], union_by_name = false, hive_partitioning = false)"


def hourly_sample_sql(paths: list[Path]) -> str:
    """The sampling query over expiries files; its text is part of every fingerprint."""
    return sample_sql(_read_sql(paths), MICROS_PER_HOUR)


_SAMPLE_CODE: Final[str] = sample_sql("{source}", MICROS_PER_HOUR)


def month_fingerprint(state: TierState, symbol: str, month: Month) -> str | None:
    """Hash of the month's cold days and commit instants, or None when no day is cold."""
    cold = sorted(
        (day, committed)
        for day, committed in state.of(symbol).cold_days.items()
        if (day.year, day.month) == month
    )
    if not cold:
        return None
    text = _SAMPLE_CODE + "".join(f"|{day.isoformat()}={key_stamp(at)}" for day, at in cold)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def month_file(layout: Layout, symbol: str, month: Month, fingerprint: str) -> Path:
    year, number = month
    return hourly_dir(layout, symbol) / f"{year:04d}-{number:02d}.{fingerprint}.parquet"


def _day_of(layout: Layout, path: Path) -> tuple[str, date, bool] | None:
    """(symbol, day, is_hot) of a visible expiries file, None for the schema file."""
    parts = path.relative_to(layout.home).parts
    try:
        if parts[0] == "cold":
            return parts[2], date.fromisoformat(parts[3][:10]), False
        if parts[0] == "hot":
            return parts[2], date.fromisoformat(parts[3]), True
    except (IndexError, ValueError):
        return None
    return None


def _last_hot_file_per_hour(paths: list[Path]) -> list[Path]:
    """Of a hot day's tick files, the last of each hour; roll-up files (a whole hour each, one
    file per hour) are kept as they are and sampled by the SQL."""
    rollups: list[Path] = []
    latest: dict[datetime, Path] = {}
    for path in paths:
        try:
            instant = parse_key_stamp(path.stem)
        except ValueError:
            rollups.append(path)
            continue
        hour = instant.replace(minute=0, second=0, microsecond=0)
        if hour not in latest or path.name > latest[hour].name:
            latest[hour] = path
    return [*rollups, *(latest[hour] for hour in sorted(latest))]


@dataclass(frozen=True, slots=True)
class HourlySources:
    """Where the hourly sample comes from at catalog-build time."""

    materialised: list[Path]
    """Valid month files (already sampled)."""
    on_the_fly: list[Path]
    """Expiries files to sample: cold days of stale months, the last hot file of each hour."""


def hourly_sources(layout: Layout, state: TierState) -> HourlySources:
    by_day: dict[tuple[str, date], list[Path]] = defaultdict(list)
    hot_days: set[tuple[str, date]] = set()
    for path in visible_files(layout, state, "expiries"):
        where = _day_of(layout, path)
        if where is None:
            continue
        symbol, day, is_hot = where
        by_day[(symbol, day)].append(path)
        if is_hot:
            hot_days.add((symbol, day))
    materialised: list[Path] = []
    covered: set[tuple[str, Month]] = set()
    for symbol in SUPPORTED_SYMBOLS:
        months = {(day.year, day.month) for day in state.of(symbol).cold_days}
        for month in sorted(months):
            fingerprint = month_fingerprint(state, symbol, month)
            if fingerprint is None:
                continue
            path = month_file(layout, symbol, month, fingerprint)
            if path.is_file():
                materialised.append(path)
                covered.add((symbol, month))
    on_the_fly: list[Path] = []
    for (symbol, day), paths in sorted(by_day.items()):
        if (symbol, day) in hot_days:
            on_the_fly.extend(_last_hot_file_per_hour(paths))
        elif (symbol, (day.year, day.month)) not in covered:
            on_the_fly.extend(paths)
    return HourlySources(materialised, on_the_fly)


def hourly_view_sql(layout: Layout, state: TierState) -> str:
    sources = hourly_sources(layout, state)
    # The schema file comes first so the view binds (and exists) with no data at all.
    live = hourly_sample_sql([layout.schema_file("expiries"), *sources.on_the_fly])
    if not sources.materialised:
        return f"CREATE VIEW {HOURLY_TABLE} AS {live}"
    stored = f"SELECT * FROM {_read_sql(sources.materialised)}"  # noqa: S608 - built paths
    return f"CREATE VIEW {HOURLY_TABLE} AS ({live}) UNION ALL BY NAME ({stored})"


@dataclass(frozen=True, slots=True)
class MonthWritten:
    symbol: str
    month: Month
    days: int
    rows: int
    path: Path


def materialise_months(
    warehouse: Warehouse, months: list[Month], symbols: tuple[str, ...] = SUPPORTED_SYMBOLS
) -> list[MonthWritten]:
    """Write the hourly-sample file of each symbol-month that has cold days, drop superseded
    ones older than the warehouse's grace, and refresh the catalog. Safe to repeat."""
    layout = warehouse.layout
    state = load_state(layout)
    written: list[MonthWritten] = []
    connection = duckdb.connect(":memory:")
    try:
        for symbol in symbols:
            for month in sorted(set(months)):
                fingerprint = month_fingerprint(state, symbol, month)
                if fingerprint is None:
                    continue
                days = sorted(
                    day for day in state.of(symbol).cold_days if (day.year, day.month) == month
                )
                files = [layout.schema_file("expiries")]
                files.extend(cold_file(layout, state, "expiries", symbol, day) for day in days)
                frame = connection.sql(
                    f"{hourly_sample_sql(files)} ORDER BY computed_at, position"
                ).pl()
                path = month_file(layout, symbol, month, fingerprint)
                atomic_write_parquet(path, frame)
                _drop_superseded(path, warehouse.hot_grace)
                written.append(MonthWritten(symbol, month, len(days), frame.height, path))
    finally:
        connection.close()
    warehouse.refresh_catalog()
    return written


def _drop_superseded(current: Path, grace: timedelta) -> None:
    """Older files of the same month go once readers of older catalogs have had ``grace``."""
    prefix = current.name.split(".")[0]
    cutoff = time.time() - grace.total_seconds()
    for path in current.parent.glob(f"{prefix}.*.parquet"):
        if path != current and _MONTH_FILE.match(path.name) and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


def months_of(first: date, last: date) -> list[Month]:
    """The calendar months a day range touches."""
    months: list[Month] = []
    day = first.replace(day=1)
    while day <= last:
        months.append((day.year, day.month))
        day = (day + timedelta(days=32)).replace(day=1)
    return months
