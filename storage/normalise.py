"""From validated expiry summaries to the polars frames of backquant.frames, column-wise.

Three tables come out of a response: ``snapshots`` (one row per symbol × computed_at),
``expiries`` (one row per listed expiry) and ``venue_oi`` (one row per venue per expiry, the
unattributed remainder included). Every column is derived from the body and the fetch metadata
only (no "now"), so normalising the same archived response again yields identical rows: rebuilds
rely on that. Values the contract allows but that are absurd or unsafe (negative open interest,
IVs above 1000 vol points, expiry tokens that are not plain tokens, a body for another symbol)
raise ``RejectedValueError`` so the caller can quarantine the body with the reason.

Why column-wise: a rebuild normalises a day (1,440 responses, ~150,000 venue rows) at once.
Values are appended to plain lists in one pass, converted to polars once per column, and their
bounds are checked per column (``_Rule.violated``). Only when a check fails does a slow scalar
walk (``_first_rejection``) apply the same rules value by value to name the first refused field
in document order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import orjson
import polars as pl

from backquant.expiry_calendar import SECONDS_PER_YEAR, classify, settlement_instant
from backquant.frames import (
    EXPIRIES_SCHEMA,
    MAX_IV_POINTS,
    SNAPSHOTS_SCHEMA,
    UNATTRIBUTED_VENUE,
    FetchMeta,
    RejectedValueError,
    SummaryFrames,
    parse_instant,
    summary_key,
)
from backquant.models import ExpiryRow, VenueOI
from backquant.validation import ParsedSummary

_SAFE_TOKEN = re.compile(r"^[0-9A-Za-z]{1,16}$")
_SAFE_VENUE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


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


_EXPIRY_LISTS: Final = pl.Schema(
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

_Calendar = tuple[str, int | None, int | None]
"""Calendar type, expiry date in epoch days, settlement instant in epoch microseconds."""


def _years(expiry_micros: int | None, computed_micros: int) -> float | None:
    """``years_to_expiry`` from epoch microseconds, bit for bit (``total_seconds`` is the
    microseconds divided by 10**6), without building datetimes per row."""
    if expiry_micros is None:
        return None
    return (expiry_micros - computed_micros) / 1_000_000 / SECONDS_PER_YEAR


_Body = tuple[str, int, float | None]
"""Symbol, computed_at in epoch microseconds, spot price: what each expiry row repeats."""


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
        body = (fetch.symbol, _micros(snapshot["computed_at"]), snapshot["spot_price"])
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
            micros = None if expiry_at is None else _micros(expiry_at)
            cached = self.calendars[key] = (kind, days, micros)
        return cached

    def _add_row(self, body: _Body, position: int, row: ExpiryRow) -> None:
        symbol, computed_micros, spot = body
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
        columns["expiry_at"].append(expiry_at)
        columns["years_to_expiry"].append(_years(expiry_at, computed_micros))
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
            [
                _snapshot_column(name, dtype, self.snapshots)
                for name, dtype in SNAPSHOTS_SCHEMA.items()
            ]
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


def _snapshot_column(name: str, dtype: pl.DataType, rows: list[dict[str, Any]]) -> pl.Series:
    """One snapshot column. A list column is built from its distinct values and gathered: a
    day repeats the same few lists, and polars converts each Python list on its own (slow)."""
    values = [row[name] for row in rows]
    if not isinstance(dtype, pl.List):
        return pl.Series(name, values, dtype=dtype)
    distinct: dict[tuple[str, ...] | None, int] = {}
    positions = [
        distinct.setdefault(None if v is None else tuple(v), len(distinct)) for v in values
    ]
    lists = [None if value is None else list(value) for value in distinct]
    return pl.Series(name, lists, dtype=dtype).gather(positions)


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


def _venue_count(parsed: ParsedSummary) -> int:
    return sum(
        len(row.by_venue or {}) + (row.by_venue_unattributed is not None)
        for row in parsed.response.data.expiries
    )


def normalise_each(
    items: list[tuple[ParsedSummary, FetchMeta]],
) -> list[SummaryFrames | RejectedValueError]:
    """Each response's frames (or its refusal), normalised in one batch when all are accepted.

    A tick's four responses cost one batch instead of four (the polars overhead is per call);
    each result is a zero-copy slice of the batch. If any response is refused, every one is
    normalised on its own so each gets its own frames or reason.
    """
    try:
        batch = normalise_many(items)
    except RejectedValueError:
        return [_normalise_or_refusal(parsed, fetch) for parsed, fetch in items]
    results: list[SummaryFrames | RejectedValueError] = []
    expiry_offset = venue_offset = 0
    for index, (parsed, _) in enumerate(items):
        expiries = len(parsed.response.data.expiries)
        venues = _venue_count(parsed)
        results.append(
            SummaryFrames(
                batch.snapshots.slice(index, 1),
                batch.expiries.slice(expiry_offset, expiries),
                batch.venue_oi.slice(venue_offset, venues),
            )
        )
        expiry_offset += expiries
        venue_offset += venues
    return results


def _normalise_or_refusal(
    parsed: ParsedSummary, fetch: FetchMeta
) -> SummaryFrames | RejectedValueError:
    try:
        return normalise(parsed, fetch)
    except RejectedValueError as error:
        return error
