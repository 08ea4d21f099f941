"""The value checks termstore applies to contract-valid expiry summaries.

The contract says what a body may hold; these rules say what termstore agrees to store: finite
numbers, no negative open interest, IVs of at most 1000 vol points, plain expiry tokens and venue
names, a body for the symbol asked for. ``storage.normalise`` applies them per column (fast);
``first_rejection`` applies the same rules value by value in document order (slow, only once a
column check failed) to name the first refused field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import orjson
import polars as pl

from backquant.expiry_calendar import classify, settlement_instant
from backquant.models import ExpiryRow, VenueOI
from backquant.validation import ParsedSummary
from storage.records import FetchMeta, RejectedValueError, parse_instant, summary_key
from storage.schemas import MAX_IV_POINTS, UNATTRIBUTED_VENUE

_SAFE_TOKEN = re.compile(r"[0-9A-Za-z]{1,16}")
_SAFE_VENUE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


_VOL_POINTS: Final = "vol points"
_DAYS: Final = "days"


def checked(
    value: float | None,
    path: str,
    minimum: float | None = None,
    maximum: float | None = None,
    unit: str = "",
) -> float | None:
    """``value`` when it is null or finite and within bounds; RejectedValueError otherwise."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise RejectedValueError(f"{value} is not a finite number", field_path=path)
    if minimum is not None and value < minimum:
        raise RejectedValueError(f"{value} is below {_bound(minimum, unit)}", field_path=path)
    if maximum is not None and value > maximum:
        raise RejectedValueError(f"{value} is above {_bound(maximum, unit)}", field_path=path)
    return value


def _bound(limit: float, unit: str) -> str:
    """``1,000 vol points``, ``2,147,483,647 days``, ``0``."""
    number = f"{int(limit):,}" if float(limit).is_integer() else f"{limit:g}"
    return f"{number} {unit}".rstrip()


@dataclass(frozen=True, slots=True)
class Rule:
    """Bounds on one numeric column: checked per value (scalar) and per column (vectorised)."""

    column: str
    field: str
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""

    def violated(self) -> pl.Expr:
        """True when any non-null value of the column breaks the rule."""
        column = pl.col(self.column)
        bad = ~column.is_finite()
        if self.minimum is not None:
            bad = bad | (column < self.minimum)
        if self.maximum is not None:
            bad = bad | (column > self.maximum)
        return (column.is_not_null() & bad).any()

    def check(self, value: float | None, prefix: str) -> None:
        checked(value, f"{prefix}.{self.field}", self.minimum, self.maximum, self.unit)


# In the order of expiry_values and of the columns; IVs are vol points, OI coin units.
EXPIRY_RULES: Final = (
    Rule("dte", "dte", _INT32_MIN, _INT32_MAX, _DAYS),
    Rule("atm_iv", "atm_iv", 0.0, MAX_IV_POINTS, _VOL_POINTS),
    Rule("skew_25d", "skew_25d", -MAX_IV_POINTS, None, _VOL_POINTS),
    Rule("put_25d_iv", "put_25d_iv", 0.0, MAX_IV_POINTS, _VOL_POINTS),
    Rule("call_25d_iv", "call_25d_iv", 0.0, MAX_IV_POINTS, _VOL_POINTS),
    Rule("pcr", "pcr", 0.0),
    Rule("call_oi", "call_oi", 0.0),
    Rule("put_oi", "put_oi", 0.0),
    Rule("total_oi", "total_oi", 0.0),
    Rule("net_gex", "net_gex"),
    Rule("notional_oi_usd", "notional_oi_usd", 0.0),
    Rule("max_pain_strike", "max_pain.strike", 0.0),
    Rule("max_pain_value", "max_pain.value", 0.0),
)
VENUE_RULES: Final = (
    Rule("call_oi", "call_oi", 0.0),
    Rule("put_oi", "put_oi", 0.0),
    Rule("total_oi", "total_oi", 0.0),
    Rule("notional_oi_usd", "notional_oi_usd", 0.0),
)
VENUE_FIELDS: Final = tuple(rule.field for rule in VENUE_RULES)


def expiry_values(row: ExpiryRow) -> tuple[float | None, ...]:
    """The row's checked numeric values, in ``EXPIRY_RULES`` order."""
    pain = row.get("max_pain")
    return (
        row.get("dte"),
        row.get("atm_iv"),
        row.get("skew_25d"),
        row.get("put_25d_iv"),
        row.get("call_25d_iv"),
        row.get("pcr"),
        row.get("call_oi"),
        row.get("put_oi"),
        row.get("total_oi"),
        row.get("net_gex"),
        row.get("notional_oi_usd"),
        None if pain is None else pain.get("strike"),
        None if pain is None else pain.get("value"),
    )


def venue_values(oi: VenueOI) -> tuple[float | None, ...]:
    """The venue's checked values, in ``VENUE_RULES`` order."""
    return (oi["call_oi"], oi["put_oi"], oi["total_oi"], oi.get("notional_oi_usd"))


def venues(row: ExpiryRow) -> list[tuple[str, VenueOI]]:
    """Named venues sorted by name, then the unattributed remainder."""
    by_venue = row.get("by_venue") or {}
    listed = [(name, by_venue[name]) for name in sorted(by_venue)]
    unattributed = row.get("by_venue_unattributed")
    if unattributed is not None:
        listed.append((UNATTRIBUTED_VENUE, unattributed))
    return listed


def check_venue_name(venue: str, path: str) -> None:
    if venue != UNATTRIBUTED_VENUE and not _SAFE_VENUE.fullmatch(venue):
        raise RejectedValueError(f"unsafe venue name {venue[:40]!r}", field_path=path)


def calendar(token: str, listed_date: str | None, path: str) -> tuple[str, date | None, Any]:
    """Calendar type, expiry date (the listed one wins) and settlement instant of a token."""
    if not _SAFE_TOKEN.fullmatch(token):
        raise RejectedValueError(
            f"unsafe expiry token {token[:40]!r} (expected letters and digits, e.g. 28MAR25)",
            field_path=f"{path}.expiry",
        )
    kind = classify(token)
    expiry_date: date | None = kind.expiry_date
    if listed_date is not None:
        try:
            expiry_date = date.fromisoformat(listed_date)
        except ValueError:
            raise RejectedValueError(
                f"{listed_date[:40]!r} is not an ISO date", field_path=f"{path}.expiry_date"
            ) from None
    expiry_at = None if expiry_date is None else settlement_instant(expiry_date)
    return kind.type, expiry_date, expiry_at


def _json_text(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _count(value: int | None, path: str) -> int | None:
    """A count of the body, within its INTEGER column."""
    checked(value, path, _INT32_MIN, _INT32_MAX)
    return value


def snapshot_row(parsed: ParsedSummary, fetch: FetchMeta) -> dict[str, Any]:
    """The snapshot row; also every body-level check (symbol, key, spot, times)."""
    response = parsed.response
    meta = response.meta
    data = response.data
    headers = fetch.headers
    computed_at: datetime = summary_key(response, fetch.symbol)
    spot = checked(meta.spot_price, "meta.spot_price", minimum=0.0)
    if spot == 0.0:
        raise RejectedValueError("spot price 0 is not a price", field_path="meta.spot_price")
    return {
        "symbol": fetch.symbol,
        "computed_at": computed_at,
        "response_timestamp": parse_instant(meta.timestamp, "meta.timestamp"),
        "api_version": meta.version,
        "request_id": meta.request_id or headers.request_id,
        "spot_price": spot,
        "freshness_seconds": checked(meta.freshness_seconds, "meta.freshness_seconds"),
        "source": meta.source,
        "exchanges_filtered": meta.exchanges_filtered,
        "meta_rate_limit": _json_text(meta.rate_limit),
        "meta_extra": _json_text(meta.extra),
        "expiry_count": len(data.expiries),
        "anchor_count": _count(data.anchor_count, "data.anchor_count"),
        "type_count_daily": _count(data.type_counts.daily, "data.type_counts.daily"),
        "type_count_weekly": _count(data.type_counts.weekly, "data.type_counts.weekly"),
        "type_count_monthly": _count(data.type_counts.monthly, "data.type_counts.monthly"),
        "type_count_quarterly": _count(data.type_counts.quarterly, "data.type_counts.quarterly"),
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


def _check_row(row: ExpiryRow, path: str) -> None:
    calendar(row["expiry"], row.get("expiry_date"), path)
    for rule, value in zip(EXPIRY_RULES, expiry_values(row), strict=True):
        rule.check(value, path)
    for venue, oi in venues(row):
        venue_path = (
            f"{path}.by_venue_unattributed"
            if venue == UNATTRIBUTED_VENUE
            else f"{path}.by_venue.{venue}"
        )
        check_venue_name(venue, f"{path}.by_venue")
        for rule, value in zip(VENUE_RULES, venue_values(oi), strict=True):
            rule.check(value, venue_path)


def first_rejection(items: list[tuple[ParsedSummary, FetchMeta]]) -> RejectedValueError:
    """Walk the responses value by value in document order and return the first refusal.

    Only runs once the column checks have seen a problem, so it may be slow; it applies the same
    rules (``snapshot_row``, ``calendar``, ``Rule.check``) one value at a time.
    """
    try:
        for parsed, fetch in items:
            snapshot_row(parsed, fetch)
            seen: set[str] = set()
            for position, row in enumerate(parsed.response.data.expiries):
                path = f"data.expiries[{position}]"
                if row["expiry"] in seen:
                    raise RejectedValueError(
                        f"expiry {row['expiry']!r} is listed twice", field_path=f"{path}.expiry"
                    )
                seen.add(row["expiry"])
                _check_row(row, path)
    except RejectedValueError as error:
        return error
    raise AssertionError("the column checks refused a value that the scalar walk accepts")
