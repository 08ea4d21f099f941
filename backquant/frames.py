"""The warehouse tables' explicit polars schemas and the types that describe a fetched response.

Three tables come out of a response: ``snapshots`` (one row per symbol × computed_at),
``expiries`` (one row per listed expiry) and ``venue_oi`` (one row per venue per expiry, the
unattributed remainder included). ``ingest_log`` rows describe fetch attempts, not bodies.
The normalisation itself (response → frames, with the refusal of absurd or unsafe values as
``RejectedValueError``) lives in storage/normalise.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import polars as pl

from backquant.headers import ResponseHeaders
from backquant.models import ExpirySummaryResponse
from backquant.symbols import SUPPORTED_SYMBOLS

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
        "quarantine_file": pl.String(),
    }
)

TABLE_SCHEMAS: Final[dict[str, pl.Schema]] = {
    "snapshots": SNAPSHOTS_SCHEMA,
    "expiries": EXPIRIES_SCHEMA,
    "venue_oi": VENUE_OI_SCHEMA,
    "ingest_log": INGEST_LOG_SCHEMA,
}
TABLE_SORT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "snapshots": ("symbol", "computed_at"),
    "expiries": ("symbol", "computed_at", "position"),
    "venue_oi": ("symbol", "computed_at", "expiry", "venue"),
    "ingest_log": ("symbol", "started_at"),
}
"""The key columns of each table, in the order cold files are sorted by."""


def sort_by_key(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """``frame`` sorted by its table's key columns. Keys are unique and never null, so sorting
    by one struct of them gives the same order as by the columns in turn, with a third of the
    CPU: 14 against 35 ms for a BTC day's 138,240 venue rows (measured)."""
    return frame.sort(pl.struct(TABLE_SORT_KEYS[table]))


class RejectedValueError(ValueError):
    """A contract-valid body whose values termstore refuses to store; quarantine it."""

    kind: Final[str] = "rejected_value"

    def __init__(self, message: str, *, field_path: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field_path = field_path


@dataclass(frozen=True, slots=True)
class FetchMeta:
    """How a body was fetched: what a rebuild needs, besides the body, to reproduce its rows."""

    symbol: str
    status: int
    started_at: datetime
    finished_at: datetime
    attempts: int
    headers: ResponseHeaders

    @property
    def latency_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "attempts": self.attempts,
            "headers": asdict(self.headers),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> FetchMeta:
        return cls(
            symbol=str(data["symbol"]),
            status=int(data["status"]),
            started_at=parse_instant(str(data["started_at"]), "fetch.started_at"),
            finished_at=parse_instant(str(data["finished_at"]), "fetch.finished_at"),
            attempts=int(data["attempts"]),
            headers=ResponseHeaders(**data["headers"]),
        )


@dataclass(frozen=True, slots=True)
class SummaryFrames:
    """The three tables normalised from one or more responses."""

    snapshots: pl.DataFrame
    expiries: pl.DataFrame
    venue_oi: pl.DataFrame

    def as_tables(self) -> dict[str, pl.DataFrame]:
        return {"snapshots": self.snapshots, "expiries": self.expiries, "venue_oi": self.venue_oi}


def parse_instant(text: str, field_path: str) -> datetime:
    """An ISO-8601 instant as an aware UTC datetime; a naive one is read as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RejectedValueError(
            f"{text[:40]!r} is not an ISO-8601 time", field_path=field_path
        ) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def check_symbol(symbol: str) -> str:
    """``symbol`` if BackQuant serves it; anything else never reaches a path or a table."""
    if symbol not in SUPPORTED_SYMBOLS:
        raise RejectedValueError(
            f"{symbol[:40]!r} is not one of {', '.join(SUPPORTED_SYMBOLS)}", field_path="symbol"
        )
    return symbol


def summary_key(response: ExpirySummaryResponse, symbol: str) -> datetime:
    """The archive key's time, ``meta.computed_at``, after checking the body is for ``symbol``."""
    check_symbol(symbol)
    meta = response.meta
    if meta.symbol is not None and meta.symbol != symbol:
        raise RejectedValueError(
            f"the response is for {meta.symbol[:40]!r}, but {symbol} was requested",
            field_path="meta.symbol",
        )
    if meta.computed_at is None:
        raise RejectedValueError(
            "missing; without it the snapshot cannot be keyed or deduplicated",
            field_path="meta.computed_at",
        )
    return parse_instant(meta.computed_at, "meta.computed_at")


@dataclass(frozen=True, slots=True)
class IngestLogEntry:
    """One fetch attempt of one symbol, whatever its outcome."""

    symbol: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    """``stored``, ``duplicate``, ``quarantined`` or the fetch error's kind."""
    reason: str | None
    http_status: int | None
    request_id: str | None
    attempts: int
    computed_at: datetime | None
    quarantine_file: str | None = None

    def row(self) -> dict[str, Any]:
        """The ingest-log row, its instants as epoch microseconds (``ingest_log_frame``)."""
        return {
            "symbol": self.symbol,
            "started_at": utc_micros(self.started_at),
            "finished_at": utc_micros(self.finished_at),
            "latency_s": (self.finished_at - self.started_at).total_seconds(),
            "outcome": self.outcome,
            "reason": self.reason,
            "http_status": self.http_status,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "retries": max(self.attempts - 1, 0),
            "computed_at": None if self.computed_at is None else utc_micros(self.computed_at),
            "quarantine_file": self.quarantine_file,
        }


def ingest_log_frame(entries: Iterable[IngestLogEntry]) -> pl.DataFrame:
    # from_dicts: a tick builds four one-row frames, and it is ~20x cheaper per call than
    # building column lists (0.05 vs 0.95 ms measured). Instants go in as epoch microseconds,
    # which polars stores as they are in a UTC_US column: a bulk import's 5,760 rows took 30 ms
    # as datetimes (see utc_series), 11 ms so.
    return pl.from_dicts([entry.row() for entry in entries], schema=INGEST_LOG_SCHEMA)


def empty_frame(table: str) -> pl.DataFrame:
    """A zero-row frame with a table's schema."""
    return pl.DataFrame(schema=TABLE_SCHEMAS[table])
