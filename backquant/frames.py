"""From validated expiry summaries to polars frames with explicit schemas.

Three tables come out of a response: ``snapshots`` (one row per symbol × computed_at),
``expiries`` (one row per listed expiry) and ``venue_oi`` (one row per venue per expiry, the
unattributed remainder included). ``ingest_log`` rows describe fetch attempts, not bodies.

Every column is derived from the body and the fetch metadata only (no "now"), so normalising the
same archived response again yields identical rows: the warehouse's rebuilds rely on that.
Values the contract allows but that are absurd or unsafe (negative open interest, IVs above 1000
vol points, expiry tokens that are not plain tokens, a body for another symbol) are rejected with
``RejectedValueError`` so the caller can quarantine the body with the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import orjson
import polars as pl
from polars._typing import PolarsDataType

from backquant.expiry_calendar import classify, settlement_instant, years_to_expiry
from backquant.headers import ResponseHeaders
from backquant.models import ExpiryRow, ExpirySummaryResponse, VenueOI
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import ParsedSummary

UTC_US: Final = pl.Datetime("us", "UTC")


def _schema(columns: Mapping[str, PolarsDataType]) -> pl.Schema:
    return pl.Schema(columns)


UNATTRIBUTED_VENUE: Final[str] = "unattributed"
MAX_IV_POINTS: Final[float] = 1000.0
"""IVs are vol points; anything above 1000 (1000 %) is a unit or data error, not a market."""

_SAFE_TOKEN = re.compile(r"^[0-9A-Za-z]{1,16}$")
_SAFE_VENUE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

SNAPSHOTS_SCHEMA: Final = _schema(
    {
        "symbol": pl.String,
        "computed_at": UTC_US,
        "response_timestamp": UTC_US,
        "api_version": pl.String,
        "request_id": pl.String,
        "spot_price": pl.Float64,
        "freshness_seconds": pl.Float64,
        "source": pl.List(pl.String),
        "exchanges_filtered": pl.List(pl.String),
        "meta_rate_limit": pl.String,
        "meta_extra": pl.String,
        "expiry_count": pl.Int32,
        "anchor_count": pl.Int32,
        "type_count_daily": pl.Int32,
        "type_count_weekly": pl.Int32,
        "type_count_monthly": pl.Int32,
        "type_count_quarterly": pl.Int32,
        "fetch_started_at": UTC_US,
        "fetch_finished_at": UTC_US,
        "latency_s": pl.Float64,
        "attempts": pl.Int32,
        "http_status": pl.Int32,
        "ratelimit_limit": pl.Int64,
        "ratelimit_remaining": pl.Int64,
        "ratelimit_reset": pl.Int64,
        "ratelimit_fallback": pl.Boolean,
        "quota_limit": pl.Int64,
        "quota_used": pl.Int64,
        "quota_remaining": pl.Int64,
        "quota_period": pl.String,
        "drift": pl.List(pl.String),
        "warnings": pl.List(pl.String),
    }
)

EXPIRIES_SCHEMA: Final = _schema(
    {
        "symbol": pl.String,
        "computed_at": UTC_US,
        "expiry": pl.String,
        "position": pl.Int16,
        "type": pl.String,
        "calendar_type": pl.String,
        "is_anchor": pl.Boolean,
        "expiry_date": pl.Date,
        "expiry_at": UTC_US,
        "years_to_expiry": pl.Float64,
        "dte": pl.Int32,
        "atm_iv": pl.Float64,
        "skew_25d": pl.Float64,
        "put_25d_iv": pl.Float64,
        "call_25d_iv": pl.Float64,
        "pcr": pl.Float64,
        "call_oi": pl.Float64,
        "put_oi": pl.Float64,
        "total_oi": pl.Float64,
        "net_gex": pl.Float64,
        "notional_oi_usd": pl.Float64,
        "max_pain_strike": pl.Float64,
        "max_pain_value": pl.Float64,
        "spot_price": pl.Float64,
    }
)

VENUE_OI_SCHEMA: Final = _schema(
    {
        "symbol": pl.String,
        "computed_at": UTC_US,
        "expiry": pl.String,
        "venue": pl.String,
        "is_unattributed": pl.Boolean,
        "call_oi": pl.Float64,
        "put_oi": pl.Float64,
        "total_oi": pl.Float64,
        "notional_oi_usd": pl.Float64,
    }
)

INGEST_LOG_SCHEMA: Final = _schema(
    {
        "symbol": pl.String,
        "started_at": UTC_US,
        "finished_at": UTC_US,
        "latency_s": pl.Float64,
        "outcome": pl.String,
        "reason": pl.String,
        "http_status": pl.Int32,
        "request_id": pl.String,
        "attempts": pl.Int32,
        "retries": pl.Int32,
        "computed_at": UTC_US,
        "quarantine_file": pl.String,
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


def _finite(value: float | None, path: str, *, minimum: float | None = None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value):
        raise RejectedValueError(f"{value} is not a finite number", field_path=path)
    if minimum is not None and value < minimum:
        raise RejectedValueError(f"{value} is below {minimum:g}", field_path=path)
    return value


def _iv(value: float | None, path: str) -> float | None:
    checked = _finite(value, path, minimum=0.0)
    if checked is not None and checked > MAX_IV_POINTS:
        raise RejectedValueError(
            f"IV {checked} exceeds {MAX_IV_POINTS:g} vol points", field_path=path
        )
    return checked


def _json_text(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class _Columns:
    """Column-wise accumulators: building one frame per table from lists beats concatenating."""

    def __init__(self, schema: pl.Schema) -> None:
        self.schema = schema
        self.data: dict[str, list[Any]] = {name: [] for name in schema.names()}

    def append(self, row: Mapping[str, Any]) -> None:
        for name, column in self.data.items():
            column.append(row[name])

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.data, schema=self.schema)


def _venue_row(
    symbol: str, computed_at: datetime, token: str, venue: str, oi: VenueOI, path: str
) -> dict[str, Any]:
    if venue != UNATTRIBUTED_VENUE and not _SAFE_VENUE.match(venue):
        raise RejectedValueError(f"unsafe venue name {venue[:40]!r}", field_path=path)
    return {
        "symbol": symbol,
        "computed_at": computed_at,
        "expiry": token,
        "venue": venue,
        "is_unattributed": venue == UNATTRIBUTED_VENUE,
        "call_oi": _finite(oi.call_oi, f"{path}.call_oi", minimum=0.0),
        "put_oi": _finite(oi.put_oi, f"{path}.put_oi", minimum=0.0),
        "total_oi": _finite(oi.total_oi, f"{path}.total_oi", minimum=0.0),
        "notional_oi_usd": _finite(oi.notional_oi_usd, f"{path}.notional_oi_usd", minimum=0.0),
    }


def _expiry_row(
    row: ExpiryRow, position: int, symbol: str, computed_at: datetime, spot: float | None
) -> dict[str, Any]:
    path = f"data.expiries[{position}]"
    token = row.expiry
    if not _SAFE_TOKEN.match(token):
        raise RejectedValueError(
            f"unsafe expiry token {token[:40]!r} (expected letters and digits, e.g. 28MAR25)",
            field_path=f"{path}.expiry",
        )
    calendar = classify(token)
    expiry_date: date | None = calendar.expiry_date
    if row.expiry_date is not None:
        try:
            expiry_date = date.fromisoformat(row.expiry_date)
        except ValueError:
            raise RejectedValueError(
                f"{row.expiry_date[:40]!r} is not an ISO date", field_path=f"{path}.expiry_date"
            ) from None
    expiry_at = None if expiry_date is None else settlement_instant(expiry_date)
    max_pain = row.max_pain
    return {
        "symbol": symbol,
        "computed_at": computed_at,
        "expiry": token,
        "position": position,
        "type": row.type,
        "calendar_type": calendar.type,
        "is_anchor": row.is_anchor,
        "expiry_date": expiry_date,
        "expiry_at": expiry_at,
        "years_to_expiry": None if expiry_at is None else years_to_expiry(expiry_at, computed_at),
        "dte": row.dte,
        "atm_iv": _iv(row.atm_iv, f"{path}.atm_iv"),
        "skew_25d": _finite(row.skew_25d, f"{path}.skew_25d", minimum=-MAX_IV_POINTS),
        "put_25d_iv": _iv(row.put_25d_iv, f"{path}.put_25d_iv"),
        "call_25d_iv": _iv(row.call_25d_iv, f"{path}.call_25d_iv"),
        "pcr": _finite(row.pcr, f"{path}.pcr", minimum=0.0),
        "call_oi": _finite(row.call_oi, f"{path}.call_oi", minimum=0.0),
        "put_oi": _finite(row.put_oi, f"{path}.put_oi", minimum=0.0),
        "total_oi": _finite(row.total_oi, f"{path}.total_oi", minimum=0.0),
        "net_gex": _finite(row.net_gex, f"{path}.net_gex"),
        "notional_oi_usd": _finite(row.notional_oi_usd, f"{path}.notional_oi_usd", minimum=0.0),
        "max_pain_strike": _finite(
            max_pain.strike if max_pain else None, f"{path}.max_pain.strike", minimum=0.0
        ),
        "max_pain_value": _finite(
            max_pain.value if max_pain else None, f"{path}.max_pain.value", minimum=0.0
        ),
        "spot_price": spot,
    }


def _snapshot_row(
    parsed: ParsedSummary, fetch: FetchMeta, computed_at: datetime, spot: float | None
) -> dict[str, Any]:
    response = parsed.response
    meta = response.meta
    data = response.data
    headers = fetch.headers
    return {
        "symbol": fetch.symbol,
        "computed_at": computed_at,
        "response_timestamp": parse_instant(meta.timestamp, "meta.timestamp"),
        "api_version": meta.version,
        "request_id": meta.request_id or headers.request_id,
        "spot_price": spot,
        "freshness_seconds": _finite(meta.freshness_seconds, "meta.freshness_seconds"),
        "source": meta.source,
        "exchanges_filtered": meta.exchanges_filtered,
        "meta_rate_limit": _json_text(meta.rate_limit),
        "meta_extra": _json_text(meta.extra),
        "expiry_count": len(data.expiries),
        "anchor_count": data.anchor_count,
        "type_count_daily": data.type_counts.daily,
        "type_count_weekly": data.type_counts.weekly,
        "type_count_monthly": data.type_counts.monthly,
        "type_count_quarterly": data.type_counts.quarterly,
        "fetch_started_at": fetch.started_at,
        "fetch_finished_at": fetch.finished_at,
        "latency_s": fetch.latency_s,
        "attempts": fetch.attempts,
        "http_status": fetch.status,
        "ratelimit_limit": headers.ratelimit_limit,
        "ratelimit_remaining": headers.ratelimit_remaining,
        "ratelimit_reset": headers.ratelimit_reset,
        "ratelimit_fallback": headers.ratelimit_fallback,
        "quota_limit": headers.quota_limit,
        "quota_used": headers.quota_used,
        "quota_remaining": headers.quota_remaining,
        "quota_period": headers.quota_period,
        "drift": list(parsed.drift),
        "warnings": list(parsed.warnings),
    }


def normalise_many(items: Iterable[tuple[ParsedSummary, FetchMeta]]) -> SummaryFrames:
    """Normalise responses into the three tables, in input order.

    Raises RejectedValueError on the first unsafe or absurd value, naming its field.
    """
    snapshots = _Columns(SNAPSHOTS_SCHEMA)
    expiries = _Columns(EXPIRIES_SCHEMA)
    venues = _Columns(VENUE_OI_SCHEMA)
    for parsed, fetch in items:
        symbol = fetch.symbol
        computed_at = summary_key(parsed.response, symbol)
        spot = _finite(parsed.response.meta.spot_price, "meta.spot_price", minimum=0.0)
        if spot == 0.0:
            raise RejectedValueError("spot price 0 is not a price", field_path="meta.spot_price")
        snapshots.append(_snapshot_row(parsed, fetch, computed_at, spot))
        seen: set[str] = set()
        for position, row in enumerate(parsed.response.data.expiries):
            if row.expiry in seen:
                raise RejectedValueError(
                    f"expiry {row.expiry!r} is listed twice",
                    field_path=f"data.expiries[{position}].expiry",
                )
            seen.add(row.expiry)
            expiries.append(_expiry_row(row, position, symbol, computed_at, spot))
            path = f"data.expiries[{position}]"
            for venue, oi in sorted((row.by_venue or {}).items()):
                venues.append(
                    _venue_row(symbol, computed_at, row.expiry, venue, oi, f"{path}.by_venue")
                )
            if row.by_venue_unattributed is not None:
                venues.append(
                    _venue_row(
                        symbol,
                        computed_at,
                        row.expiry,
                        UNATTRIBUTED_VENUE,
                        row.by_venue_unattributed,
                        f"{path}.by_venue_unattributed",
                    )
                )
    return SummaryFrames(snapshots.frame(), expiries.frame(), venues.frame())


def normalise(parsed: ParsedSummary, fetch: FetchMeta) -> SummaryFrames:
    """Normalise one response."""
    return normalise_many([(parsed, fetch)])


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
        return {
            "symbol": self.symbol,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "latency_s": (self.finished_at - self.started_at).total_seconds(),
            "outcome": self.outcome,
            "reason": self.reason,
            "http_status": self.http_status,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "retries": max(self.attempts - 1, 0),
            "computed_at": self.computed_at,
            "quarantine_file": self.quarantine_file,
        }


def ingest_log_frame(entries: Iterable[IngestLogEntry]) -> pl.DataFrame:
    columns = _Columns(INGEST_LOG_SCHEMA)
    for entry in entries:
        columns.append(entry.row())
    return columns.frame()


def empty_frame(table: str) -> pl.DataFrame:
    """A zero-row frame with a table's schema."""
    return pl.DataFrame(schema=TABLE_SCHEMAS[table])
