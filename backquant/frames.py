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
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import orjson
import polars as pl

from backquant.expiry_calendar import classify, settlement_instant, years_to_expiry
from backquant.headers import ResponseHeaders
from backquant.models import ExpiryRow, ExpirySummaryResponse, VenueOI
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import ParsedSummary

UTC_US: Final = pl.Datetime("us", "UTC")


def _schema(columns: Mapping[str, pl.DataType]) -> pl.Schema:
    return pl.Schema(columns)


UNATTRIBUTED_VENUE: Final[str] = "unattributed"
MAX_IV_POINTS: Final[float] = 1000.0
"""IVs are vol points; anything above 1000 (1000 %) is a unit or data error, not a market."""

_SAFE_TOKEN = re.compile(r"^[0-9A-Za-z]{1,16}$")
_SAFE_VENUE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

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


def _checked(
    value: float | None, path: str, minimum: float | None = None, maximum: float | None = None
) -> float | None:
    """``value`` when it is null or finite and within bounds; RejectedValueError otherwise."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise RejectedValueError(f"{value} is not a finite number", field_path=path)
    if minimum is not None and value < minimum:
        raise RejectedValueError(f"{value} is below {minimum:g}", field_path=path)
    if maximum is not None and value > maximum:
        raise RejectedValueError(f"IV {value} exceeds {maximum:g} vol points", field_path=path)
    return value


def _json_text(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class _Rule:
    """Bounds on one numeric column: checked per value (scalar) and per column (vectorised)."""

    column: str
    field: str
    minimum: float | None = None
    maximum: float | None = None

    def violated(self) -> pl.Expr:
        column = pl.col(self.column)
        bad = ~column.is_finite()
        if self.minimum is not None:
            bad = bad | (column < self.minimum)
        if self.maximum is not None:
            bad = bad | (column > self.maximum)
        return (column.is_not_null() & bad).any()

    def check(self, value: float | None, prefix: str) -> None:
        _checked(value, f"{prefix}.{self.field}", self.minimum, self.maximum)


# In the order of _expiry_values and of the columns; IVs are vol points, OI coin units.
_EXPIRY_RULES: Final = (
    _Rule("atm_iv", "atm_iv", 0.0, MAX_IV_POINTS),
    _Rule("skew_25d", "skew_25d", -MAX_IV_POINTS),
    _Rule("put_25d_iv", "put_25d_iv", 0.0, MAX_IV_POINTS),
    _Rule("call_25d_iv", "call_25d_iv", 0.0, MAX_IV_POINTS),
    _Rule("pcr", "pcr", 0.0),
    _Rule("call_oi", "call_oi", 0.0),
    _Rule("put_oi", "put_oi", 0.0),
    _Rule("total_oi", "total_oi", 0.0),
    _Rule("net_gex", "net_gex"),
    _Rule("notional_oi_usd", "notional_oi_usd", 0.0),
    _Rule("max_pain_strike", "max_pain.strike", 0.0),
    _Rule("max_pain_value", "max_pain.value", 0.0),
)
_VENUE_RULES: Final = (
    _Rule("call_oi", "call_oi", 0.0),
    _Rule("put_oi", "put_oi", 0.0),
    _Rule("total_oi", "total_oi", 0.0),
    _Rule("notional_oi_usd", "notional_oi_usd", 0.0),
)


def _expiry_values(row: ExpiryRow) -> tuple[float | None, ...]:
    """The row's checked numeric values, in ``_EXPIRY_RULES`` order."""
    pain = row.max_pain
    return (
        row.atm_iv,
        row.skew_25d,
        row.put_25d_iv,
        row.call_25d_iv,
        row.pcr,
        row.call_oi,
        row.put_oi,
        row.total_oi,
        row.net_gex,
        row.notional_oi_usd,
        None if pain is None else pain.strike,
        None if pain is None else pain.value,
    )


def _venues(row: ExpiryRow) -> list[tuple[str, VenueOI]]:
    """Named venues sorted by name, then the unattributed remainder."""
    venues = sorted((row.by_venue or {}).items())
    if row.by_venue_unattributed is not None:
        venues.append((UNATTRIBUTED_VENUE, row.by_venue_unattributed))
    return venues


def _check_venue_name(venue: str, path: str) -> None:
    if venue != UNATTRIBUTED_VENUE and not _SAFE_VENUE.match(venue):
        raise RejectedValueError(f"unsafe venue name {venue[:40]!r}", field_path=path)


def _calendar(token: str, listed_date: str | None, path: str) -> tuple[str, date | None, Any]:
    """Calendar type, expiry date (the listed one wins) and settlement instant of a token."""
    if not _SAFE_TOKEN.match(token):
        raise RejectedValueError(
            f"unsafe expiry token {token[:40]!r} (expected letters and digits, e.g. 28MAR25)",
            field_path=f"{path}.expiry",
        )
    calendar = classify(token)
    expiry_date: date | None = calendar.expiry_date
    if listed_date is not None:
        try:
            expiry_date = date.fromisoformat(listed_date)
        except ValueError:
            raise RejectedValueError(
                f"{listed_date[:40]!r} is not an ISO date", field_path=f"{path}.expiry_date"
            ) from None
    expiry_at = None if expiry_date is None else settlement_instant(expiry_date)
    return calendar.type, expiry_date, expiry_at


def _snapshot_row(parsed: ParsedSummary, fetch: FetchMeta) -> dict[str, Any]:
    """The snapshot row; also every body-level check (symbol, key, spot, times)."""
    response = parsed.response
    meta = response.meta
    data = response.data
    headers = fetch.headers
    computed_at = summary_key(response, fetch.symbol)
    spot = _checked(meta.spot_price, "meta.spot_price", minimum=0.0)
    if spot == 0.0:
        raise RejectedValueError("spot price 0 is not a price", field_path="meta.spot_price")
    return {
        "symbol": fetch.symbol,
        "computed_at": computed_at,
        "response_timestamp": parse_instant(meta.timestamp, "meta.timestamp"),
        "api_version": meta.version,
        "request_id": meta.request_id or headers.request_id,
        "spot_price": spot,
        "freshness_seconds": _checked(meta.freshness_seconds, "meta.freshness_seconds"),
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


def _first_rejection(items: list[tuple[ParsedSummary, FetchMeta]]) -> RejectedValueError:
    """Walk the responses value by value in document order and return the first refusal.

    Only runs once the fast path has seen a problem, so it may be slow; it applies the same
    rules (``_snapshot_row``, ``_calendar``, ``_Rule.check``) one value at a time.
    """
    try:
        for parsed, fetch in items:
            _snapshot_row(parsed, fetch)
            seen: set[str] = set()
            for position, row in enumerate(parsed.response.data.expiries):
                path = f"data.expiries[{position}]"
                if row.expiry in seen:
                    raise RejectedValueError(
                        f"expiry {row.expiry!r} is listed twice", field_path=f"{path}.expiry"
                    )
                seen.add(row.expiry)
                _calendar(row.expiry, row.expiry_date, path)
                for rule, value in zip(_EXPIRY_RULES, _expiry_values(row), strict=True):
                    rule.check(value, path)
                for venue, oi in _venues(row):
                    venue_path = (
                        f"{path}.by_venue_unattributed"
                        if venue == UNATTRIBUTED_VENUE
                        else f"{path}.by_venue.{venue}"
                    )
                    _check_venue_name(venue, f"{path}.by_venue")
                    values = (oi.call_oi, oi.put_oi, oi.total_oi, oi.notional_oi_usd)
                    for rule, value in zip(_VENUE_RULES, values, strict=True):
                        rule.check(value, venue_path)
    except RejectedValueError as error:
        return error
    raise AssertionError("the vectorised checks refused a value that the scalar walk accepts")


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _micros(instant: datetime) -> int:
    return (instant - _EPOCH) // _MICROSECOND


_EXPIRY_LISTS: Final = _schema(
    {
        "symbol": pl.String(),
        "computed_at": pl.Int64(),
        "expiry": pl.String(),
        "position": pl.Int16(),
        "type": pl.String(),
        "calendar_type": pl.String(),
        "is_anchor": pl.Boolean(),
        "expiry_date": pl.Int32(),
        "expiry_at": pl.Int64(),
        "years_to_expiry": pl.Float64(),
        "dte": pl.Int32(),
        "spot_price": pl.Float64(),
    }
)
"""The expiry columns collected as lists; times as epoch integers, cast by EXPIRIES_SCHEMA."""

_Calendar = tuple[str, int | None, datetime | None]
_Body = tuple[str, datetime, int, float | None]


class _Batch:
    """Column lists for a batch of responses, filled in one pass.

    Times are collected as integers (epoch microseconds, epoch days) and cast once per column:
    polars converts a list of ints far faster than a list of datetimes. Numeric values are
    appended row-major and split into columns in one step; their bounds are checked per column
    afterwards (``_any_violation``).
    """

    def __init__(self) -> None:
        self.snapshots: list[dict[str, Any]] = []
        self.expiry: dict[str, list[Any]] = {name: [] for name in _EXPIRY_LISTS.names()}
        self.values: list[float | None] = []
        self.venue_expiry: list[int] = []
        self.venue_names: list[str] = []
        self.venue_values: list[float | None] = []
        self.calendars: dict[tuple[str, str | None], _Calendar] = {}
        self.safe_venues: set[str] = set()

    def add(self, parsed: ParsedSummary, fetch: FetchMeta) -> None:
        snapshot = _snapshot_row(parsed, fetch)
        self.snapshots.append(snapshot)
        rows = parsed.response.data.expiries
        if len({row.expiry for row in rows}) != len(rows):
            raise RejectedValueError("an expiry is listed twice", field_path="data.expiries")
        computed_at: datetime = snapshot["computed_at"]
        body = (fetch.symbol, computed_at, _micros(computed_at), snapshot["spot_price"])
        for position, row in enumerate(rows):
            self._add_row(body, position, row)

    def _calendar(self, row: ExpiryRow, position: int) -> _Calendar:
        key = (row.expiry, row.expiry_date)
        cached = self.calendars.get(key)
        if cached is None:
            kind, expiry_date, expiry_at = _calendar(
                row.expiry, row.expiry_date, f"data.expiries[{position}]"
            )
            days = None if expiry_date is None else (expiry_date - _EPOCH.date()).days
            cached = self.calendars[key] = (kind, days, expiry_at)
        return cached

    def _add_row(self, body: _Body, position: int, row: ExpiryRow) -> None:
        symbol, computed_at, computed_micros, spot = body
        kind, days, expiry_at = self._calendar(row, position)
        columns = self.expiry
        expiry_index = len(columns["expiry"])
        columns["symbol"].append(symbol)
        columns["computed_at"].append(computed_micros)
        columns["expiry"].append(row.expiry)
        columns["position"].append(position)
        columns["type"].append(row.type)
        columns["calendar_type"].append(kind)
        columns["is_anchor"].append(row.is_anchor)
        columns["expiry_date"].append(days)
        columns["expiry_at"].append(None if expiry_at is None else _micros(expiry_at))
        columns["years_to_expiry"].append(
            None if expiry_at is None else years_to_expiry(expiry_at, computed_at)
        )
        columns["dte"].append(row.dte)
        columns["spot_price"].append(spot)
        self.values.extend(_expiry_values(row))
        for venue, oi in _venues(row):
            if venue not in self.safe_venues:
                _check_venue_name(venue, f"data.expiries[{position}].by_venue")
                self.safe_venues.add(venue)
            self.venue_expiry.append(expiry_index)
            self.venue_names.append(venue)
            self.venue_values.extend((oi.call_oi, oi.put_oi, oi.total_oi, oi.notional_oi_usd))

    def frames(self) -> SummaryFrames:
        snapshots = pl.DataFrame(
            {name: [row[name] for row in self.snapshots] for name in SNAPSHOTS_SCHEMA.names()},
            schema=SNAPSHOTS_SCHEMA,
        )
        lists = pl.DataFrame(self.expiry, schema=_EXPIRY_LISTS)
        expiries = pl.concat([lists, _split(self.values, _EXPIRY_RULES)], how="horizontal").select(
            pl.col(name).cast(dtype) for name, dtype in EXPIRIES_SCHEMA.items()
        )
        keys = expiries.select("symbol", "computed_at", "expiry")
        venues = pl.Series("venue", self.venue_names, dtype=pl.String())
        venue_oi = pl.concat(
            [
                keys[pl.Series(self.venue_expiry, dtype=pl.UInt32())],
                venues.to_frame(),
                (venues == UNATTRIBUTED_VENUE).alias("is_unattributed").to_frame(),
                _split(self.venue_values, _VENUE_RULES),
            ],
            how="horizontal",
        )
        return SummaryFrames(snapshots, expiries, venue_oi)


def _split(row_major: list[float | None], rules: tuple[_Rule, ...]) -> pl.DataFrame:
    """Values appended row by row (one per rule) as one Float64 column per rule."""
    width = len(rules)
    rows = pl.Series("values", row_major, dtype=pl.Float64()).reshape((-1, width))
    return rows.to_frame().select(
        pl.col("values").arr.get(index).alias(rule.column) for index, rule in enumerate(rules)
    )


_EXPIRY_CHECKS: Final = tuple(rule.violated() for rule in _EXPIRY_RULES)
_VENUE_CHECKS: Final = tuple(rule.violated() for rule in _VENUE_RULES)


def _any_violation(frames: SummaryFrames) -> bool:
    checks = [frames.expiries.select(_EXPIRY_CHECKS), frames.venue_oi.select(_VENUE_CHECKS)]
    return any(any(check.row(0)) for check in checks)


def normalise_many(items: Iterable[tuple[ParsedSummary, FetchMeta]]) -> SummaryFrames:
    """Normalise responses into the three tables, in input order.

    Builds each table column-wise and checks the numeric bounds per column (a day of responses
    at once is what makes rebuilds fast). Raises RejectedValueError for the first unsafe or
    absurd value in document order, naming its field.
    """
    batch_items = list(items)
    batch = _Batch()
    try:
        for parsed, fetch in batch_items:
            batch.add(parsed, fetch)
    except RejectedValueError:
        raise _first_rejection(batch_items) from None
    frames = batch.frames()
    if _any_violation(frames):
        raise _first_rejection(batch_items)
    return frames


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
    rows = [entry.row() for entry in entries]
    return pl.DataFrame(
        {name: [row[name] for row in rows] for name in INGEST_LOG_SCHEMA.names()},
        schema=INGEST_LOG_SCHEMA,
    )


def empty_frame(table: str) -> pl.DataFrame:
    """A zero-row frame with a table's schema."""
    return pl.DataFrame(schema=TABLE_SCHEMAS[table])
