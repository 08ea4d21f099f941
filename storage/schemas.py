"""The lake tables' explicit schemas, as polars schemas and as the SQL that creates them.

Three tables come out of a response: ``snapshots`` (one row per symbol × computed_at),
``expiries`` (one row per listed expiry) and ``venue_oi`` (one row per venue per expiry, the
unattributed remainder included). ``ingest_log`` rows describe fetch attempts, not bodies.
``responses`` is the raw archive (every stored body, verbatim, with its fetch metadata) and
``quarantine`` keeps refused bodies with their reason. The normalisation (response → frames)
lives in storage/normalise.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import polars as pl

UTC_US: Final = pl.Datetime("us", "UTC")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def utc_micros(instant: datetime) -> int:
    """An aware instant as microseconds since the epoch: how a ``UTC_US`` column stores it."""
    return (instant - _EPOCH) // _MICROSECOND


def utc_series(name: str, instants: Iterable[datetime | None]) -> pl.Series:
    """Aware instants as a ``UTC_US`` column. polars converts aware datetimes one by one in
    Python: 13.9 ms for 5,760 of them, against 1.7 ms as integers (measured)."""
    micros = [None if instant is None else utc_micros(instant) for instant in instants]
    return pl.Series(name, micros, dtype=pl.Int64()).cast(UTC_US)


def _schema(columns: Mapping[str, pl.DataType]) -> pl.Schema:
    return pl.Schema(columns)


UNATTRIBUTED_VENUE: Final[str] = "unattributed"
MAX_IV_POINTS: Final[float] = 1000.0
"""IVs are vol points; anything above 1000 (1000 %) is a unit or data error, not a market."""


SNAPSHOTS_SCHEMA: Final = _schema(
    {
        "symbol": pl.String(),
        "computed_at": UTC_US,
        "response_timestamp": UTC_US,
        "api_version": pl.String(),
        "request_id": pl.String(),
        "spot_price": pl.Float64(),
        "freshness_seconds": pl.Float64(),
        "source": pl.List(pl.String()),
        "exchanges_filtered": pl.List(pl.String()),
        "meta_rate_limit": pl.String(),
        "meta_extra": pl.String(),
        "expiry_count": pl.Int32(),
        "anchor_count": pl.Int32(),
        "type_count_daily": pl.Int32(),
        "type_count_weekly": pl.Int32(),
        "type_count_monthly": pl.Int32(),
        "type_count_quarterly": pl.Int32(),
        "fetch_started_at": UTC_US,
        "fetch_finished_at": UTC_US,
        "latency_s": pl.Float64(),
        "attempts": pl.Int32(),
        "http_status": pl.Int32(),
        "ratelimit_limit": pl.Int64(),
        "ratelimit_remaining": pl.Int64(),
        "ratelimit_reset": pl.Int64(),
        "ratelimit_fallback": pl.Boolean(),
        "quota_limit": pl.Int64(),
        "quota_used": pl.Int64(),
        "quota_remaining": pl.Int64(),
        "quota_period": pl.String(),
        "drift": pl.List(pl.String()),
        "warnings": pl.List(pl.String()),
    }
)

EXPIRIES_SCHEMA: Final = _schema(
    {
        "symbol": pl.String(),
        "computed_at": UTC_US,
        "expiry": pl.String(),
        "position": pl.Int16(),
        "type": pl.String(),
        "calendar_type": pl.String(),
        "is_anchor": pl.Boolean(),
        "expiry_date": pl.Date(),
        "expiry_at": UTC_US,
        "years_to_expiry": pl.Float64(),
        "dte": pl.Int32(),
        "atm_iv": pl.Float64(),
        "skew_25d": pl.Float64(),
        "put_25d_iv": pl.Float64(),
        "call_25d_iv": pl.Float64(),
        "pcr": pl.Float64(),
        "call_oi": pl.Float64(),
        "put_oi": pl.Float64(),
        "total_oi": pl.Float64(),
        "net_gex": pl.Float64(),
        "notional_oi_usd": pl.Float64(),
        "max_pain_strike": pl.Float64(),
        "max_pain_value": pl.Float64(),
        "spot_price": pl.Float64(),
    }
)

VENUE_OI_SCHEMA: Final = _schema(
    {
        "symbol": pl.String(),
        "computed_at": UTC_US,
        "expiry": pl.String(),
        "venue": pl.String(),
        "is_unattributed": pl.Boolean(),
        "call_oi": pl.Float64(),
        "put_oi": pl.Float64(),
        "total_oi": pl.Float64(),
        "notional_oi_usd": pl.Float64(),
    }
)

INGEST_LOG_SCHEMA: Final = _schema(
    {
        "symbol": pl.String(),
        "started_at": UTC_US,
        "finished_at": UTC_US,
        "latency_s": pl.Float64(),
        "outcome": pl.String(),
        "reason": pl.String(),
        "http_status": pl.Int32(),
        "request_id": pl.String(),
        "attempts": pl.Int32(),
        "retries": pl.Int32(),
        "computed_at": UTC_US,
        "quarantine_id": pl.String(),
    }
)

RESPONSES_SCHEMA: Final = _schema(
    {
        "symbol": pl.String(),
        "computed_at": UTC_US,
        "fetch_meta": pl.String(),
        "body": pl.Binary(),
    }
)

QUARANTINE_SCHEMA: Final = _schema(
    {
        "quarantine_id": pl.String(),
        "symbol": pl.String(),
        "received_at": UTC_US,
        "kind": pl.String(),
        "reason": pl.String(),
        "field_path": pl.String(),
        "http_status": pl.Int32(),
        "request_id": pl.String(),
        "body": pl.Binary(),
    }
)

TABLE_SCHEMAS: Final[dict[str, pl.Schema]] = {
    "snapshots": SNAPSHOTS_SCHEMA,
    "expiries": EXPIRIES_SCHEMA,
    "venue_oi": VENUE_OI_SCHEMA,
    "ingest_log": INGEST_LOG_SCHEMA,
    "responses": RESPONSES_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
}
SUMMARY_TABLES: Final[tuple[str, ...]] = ("snapshots", "expiries", "venue_oi")
"""The tables normalised from a body: a rebuild replaces them from ``responses``."""
TIME_COLUMNS: Final[dict[str, str]] = {
    "snapshots": "computed_at",
    "expiries": "computed_at",
    "venue_oi": "computed_at",
    "ingest_log": "started_at",
    "responses": "computed_at",
    "quarantine": "received_at",
}
"""The instant each table is partitioned by (its UTC month) and a rebuild selects a day by."""
TABLE_SORT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "snapshots": ("symbol", "computed_at"),
    "expiries": ("symbol", "computed_at", "position"),
    "venue_oi": ("symbol", "computed_at", "expiry", "venue"),
    "ingest_log": ("symbol", "started_at"),
    "responses": ("symbol", "computed_at"),
    "quarantine": ("quarantine_id",),
}
"""The key columns of each table, in the order a rebuilt day is sorted by."""


def sort_by_key(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """``frame`` sorted by its table's key columns. Keys are unique and never null, so sorting
    by one struct of them gives the same order as by the columns in turn, with a third of the
    CPU: 14 against 35 ms for a BTC day's 138,240 venue rows (measured)."""
    return frame.sort(pl.struct(TABLE_SORT_KEYS[table]))


def empty_frame(table: str) -> pl.DataFrame:
    """A zero-row frame with a table's schema."""
    return pl.DataFrame(schema=TABLE_SCHEMAS[table])


def _sql_type(dtype: pl.DataType | type[pl.DataType]) -> str:
    if isinstance(dtype, pl.List):
        inner: pl.DataType = dtype.inner  # type: ignore[assignment]
        return f"{_sql_type(inner)}[]"
    if dtype == UTC_US:
        return "TIMESTAMPTZ"
    return _SQL_TYPES[dtype if isinstance(dtype, type) else type(dtype)]


_SQL_TYPES: Final[dict[type[pl.DataType], str]] = {
    pl.String: "VARCHAR",
    pl.Binary: "BLOB",
    pl.Boolean: "BOOLEAN",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Date: "DATE",
}


def create_table_sql(table: str, schema: pl.Schema | None = None) -> str:
    """``CREATE TABLE`` with the columns of ``schema`` (by default the table's) in order; names
    and types are ours."""
    chosen = TABLE_SCHEMAS[table] if schema is None else schema
    columns = ", ".join(f"{name} {_sql_type(dtype)}" for name, dtype in chosen.items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns})"


_KEY_FORMAT: Final[str] = "%Y%m%dT%H%M%S.%fZ"


def key_stamp(instant: datetime) -> str:
    """``2026-03-02T12:00:30Z`` → ``20260302T120030.000000Z``: sortable and path-safe."""
    return instant.astimezone(UTC).strftime(_KEY_FORMAT)
