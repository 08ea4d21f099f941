"""Python API of the research series: polars frames, computed by the lake's SQL.

Each function filters one lake view (or runs the same SQL template over a sampled source), so
there is one implementation of every formula. Times: ``start`` inclusive, ``end`` exclusive; a
``date`` means its 00:00 UTC and a naive ``datetime`` is taken as UTC. ``symbols`` is one symbol,
several, or None for all four. Empty frames mean no stored data in the range.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Final

import polars as pl

from backquant.symbols import SUPPORTED_SYMBOLS
from storage.records import check_symbol
from storage.research.cm_sql import STANDARD_TENORS, constant_maturity_sql
from storage.research.derived_sql import (
    MICROS_PER_HOUR,
    daily_constant_maturity_sql,
    daily_term_structure_sql,
    sample_sql,
)
from storage.research.views import HOURLY_TABLE
from storage.warehouse import Warehouse

Symbols = str | Sequence[str] | None
Instant = date | datetime

_EVERY = re.compile(r"^\s*(\d+)\s*(m|min|h|d)\s*$")
_UNIT_US: Final[dict[str, int]] = {
    "m": 60_000_000,
    "min": 60_000_000,
    "h": MICROS_PER_HOUR,
    "d": 24 * MICROS_PER_HOUR,
}
EVERY_SNAPSHOT: Final[str] = "snapshot"


def every_us(every: str) -> int | None:
    """``"1h"`` → microseconds; ``"snapshot"`` → None (no sampling)."""
    if every == EVERY_SNAPSHOT:
        return None
    match = _EVERY.match(every)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"every={every!r} is not a sampling interval: use e.g. '15m', '1h', '4h', '1d', "
            f"or '{EVERY_SNAPSHOT}' for every stored snapshot"
        )
    return int(match.group(1)) * _UNIT_US[match.group(2)]


def as_utc(value: Instant) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def _instant_sql(value: Instant) -> str:
    return f"TIMESTAMPTZ '{as_utc(value).isoformat()}'"


def _symbols_sql(symbols: Symbols) -> str:
    chosen = (
        SUPPORTED_SYMBOLS
        if symbols is None
        else (symbols,)
        if isinstance(symbols, str)
        else tuple(symbols)
    )
    if not chosen:
        raise ValueError("give at least one symbol, or None for all four")
    return "(" + ", ".join(f"'{check_symbol(symbol)}'" for symbol in chosen) + ")"


def _window_sql(symbols: Symbols, start: Instant, end: Instant, column: str = "computed_at") -> str:
    if as_utc(end) <= as_utc(start):
        raise ValueError(f"end ({end}) must be after start ({start})")
    return (
        f"symbol IN {_symbols_sql(symbols)} AND {column} >= {_instant_sql(start)} "
        f"AND {column} < {_instant_sql(end)}"
    )


def _windowed(table: str, symbols: Symbols, start: Instant, end: Instant) -> str:
    """A parenthesised query of a base table's rows in the window, for SQL templates."""
    return f"(SELECT * FROM {table} WHERE {_window_sql(symbols, start, end)})"  # noqa: S608


def _view(
    warehouse: Warehouse, view: str, symbols: Symbols, start: Instant, end: Instant, order: str
) -> pl.DataFrame:
    return warehouse.sql(
        f"SELECT * FROM {view} WHERE {_window_sql(symbols, start, end)} ORDER BY {order}"  # noqa: S608
    )


def term_structure(warehouse: Warehouse, symbol: str, at: Instant | None = None) -> pl.DataFrame:
    """The listed expiries of the symbol's last snapshot at or before ``at`` (None: the newest),
    ordered by expiry, with ``days_to_expiry`` (years_to_expiry × 365)."""
    where = f"symbol = '{check_symbol(symbol)}'"
    if at is None:
        rows = warehouse.sql(f"SELECT * FROM latest_term_structure WHERE {where}")  # noqa: S608
    else:
        bound = _instant_sql(at)
        # Look back two days first (DuckLake skips the other days' files), then everything.
        for lower in (f"AND computed_at > {bound} - INTERVAL 2 DAY", ""):
            latest = warehouse.sql(
                f"SELECT max(computed_at) AS at FROM snapshots "  # noqa: S608
                f"WHERE {where} AND computed_at <= {bound} {lower}"
            )["at"][0]
            if latest is not None:
                break
        if latest is None:
            rows = warehouse.sql("SELECT * FROM expiries LIMIT 0")
        else:
            rows = warehouse.sql(
                f"SELECT * FROM expiries WHERE {where} "  # noqa: S608
                f"AND computed_at = {_instant_sql(latest)}"
            )
    return rows.with_columns((pl.col("years_to_expiry") * 365).alias("days_to_expiry")).sort(
        "expiry_at", "expiry", nulls_last=True
    )


def constant_maturity(
    warehouse: Warehouse,
    symbols: Symbols,
    start: Instant,
    end: Instant,
    tenors: Sequence[float] = STANDARD_TENORS,
    every: str = "1h",
) -> pl.DataFrame:
    """Constant-maturity IVs (vol points) at ``tenors`` days, sampled before interpolating:
    the last snapshot of each ``every`` bucket (epoch-aligned, so ``1d`` is the UTC day), or
    every snapshot with ``every="snapshot"``. A sampled series carries
    ``period_start`` (the bucket it summarises; ``computed_at`` is the snapshot taken). Whole-hour
    intervals read ``expiries_hourly`` (the stored hourly sample; days not sampled yet, today
    included, on the fly) when ``end`` is a whole hour: its last hour is then whole too."""
    bucket = every_us(every)
    whole_hours = as_utc(end).timestamp() % 3600 == 0
    use_hourly = bucket is not None and bucket % MICROS_PER_HOUR == 0 and whole_hours
    table = HOURLY_TABLE if use_hourly else "expiries"
    # S608: the table is a constant and the window is built from validated values.
    window = _windowed(table, symbols, start, end)
    if bucket is None or (use_hourly and bucket == MICROS_PER_HOUR):
        source = window
    else:
        source = f"({sample_sql(window, bucket)})"
    query = constant_maturity_sql(source, tenors, period_us=bucket)
    return warehouse.sql(f"{query} ORDER BY symbol, computed_at, tenor_days")


def forward_vols(
    warehouse: Warehouse, symbols: Symbols, start: Instant, end: Instant
) -> pl.DataFrame:
    """ATM forward vol between consecutive listed expiries of every snapshot."""
    return _view(
        warehouse, "forward_vol_listed", symbols, start, end, "symbol, computed_at, from_years"
    )


def tenor_forward_vols(
    warehouse: Warehouse, symbols: Symbols, start: Instant, end: Instant
) -> pl.DataFrame:
    """ATM forward vol between consecutive standard CM tenors of every snapshot."""
    return _view(
        warehouse, "forward_vol_tenor", symbols, start, end, "symbol, computed_at, from_tenor_days"
    )


def term_structure_shape(
    warehouse: Warehouse, symbols: Symbols, start: Instant, end: Instant
) -> pl.DataFrame:
    """Per snapshot: 7d/30d/90d CM ATM IV, slope 90d − 7d, contango/backwardation."""
    return _view(warehouse, "term_structure_shape", symbols, start, end, "symbol, computed_at")


def daily_term_structure(
    warehouse: Warehouse, symbols: Symbols, start: Instant, end: Instant
) -> pl.DataFrame:
    """Per UTC day and expiry, the expiry's row from the day's last snapshot listing it.
    The ``daily_term_structure`` view's SQL, run over the window's rows only."""
    query = daily_term_structure_sql(_windowed("expiries", symbols, start, end))
    return warehouse.sql(f"{query} ORDER BY symbol, day, expiry_at, expiry")


def daily_constant_maturity(
    warehouse: Warehouse, symbols: Symbols, start: Instant, end: Instant
) -> pl.DataFrame:
    """Per UTC day and standard tenor: OHLC of the CM ATM IV and closing wings/RR/BF/skew.
    The ``daily_constant_maturity`` view's SQL over the window's snapshots: pass whole days
    (dates) to get whole days."""
    query = daily_constant_maturity_sql(_windowed("expiries", symbols, start, end))
    return warehouse.sql(f"{query} ORDER BY symbol, day, tenor_days")


def opex_anchors(
    warehouse: Warehouse, symbols: Symbols, start: Instant, end: Instant
) -> pl.DataFrame:
    """Anchor expiries over time: OI, notional, PCR, max pain and its distance from spot, GEX."""
    return _view(warehouse, "opex_anchors", symbols, start, end, "symbol, computed_at, expiry_at")


def next_anchor(
    warehouse: Warehouse, symbols: Symbols, start: Instant, end: Instant
) -> pl.DataFrame:
    """Per snapshot, the anchor expiry that settles next."""
    return _view(warehouse, "next_anchor", symbols, start, end, "symbol, computed_at")
