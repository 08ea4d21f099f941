"""The response headers that matter to termstore: rate limit, quota and request id."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _int_or_none(value: str | None) -> int | None:
    """The header as an integer; None when it is not one, or not one a 64-bit column holds."""
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _seconds_or_none(value: str | None) -> float | None:
    """Retry-After as seconds; the HTTP-date form is converted against the current time."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0) if seconds == seconds else None


@dataclass(frozen=True, slots=True)
class ResponseHeaders:
    """Parsed X-RateLimit-*, X-Quota-*, Retry-After and X-Request-ID values (None when absent)."""

    ratelimit_limit: int | None = None
    ratelimit_remaining: int | None = None
    ratelimit_reset: int | None = None
    ratelimit_fallback: bool = False
    quota_limit: int | None = None
    quota_used: int | None = None
    quota_remaining: int | None = None
    quota_period: str | None = None
    retry_after: float | None = None
    request_id: str | None = None

    @classmethod
    def from_mapping(cls, headers: Mapping[str, str]) -> ResponseHeaders:
        lowered = {key.lower(): value for key, value in headers.items()}
        return cls(
            ratelimit_limit=_int_or_none(lowered.get("x-ratelimit-limit")),
            ratelimit_remaining=_int_or_none(lowered.get("x-ratelimit-remaining")),
            ratelimit_reset=_int_or_none(lowered.get("x-ratelimit-reset")),
            ratelimit_fallback=lowered.get("x-ratelimit-fallback", "").strip().lower() == "true",
            quota_limit=_int_or_none(lowered.get("x-quota-limit")),
            quota_used=_int_or_none(lowered.get("x-quota-used")),
            quota_remaining=_int_or_none(lowered.get("x-quota-remaining")),
            quota_period=lowered.get("x-quota-period"),
            retry_after=_seconds_or_none(lowered.get("retry-after")),
            request_id=lowered.get("x-request-id"),
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def quota_spent(self) -> bool:
        return self.quota_remaining is not None and self.quota_remaining <= 0

    def quota_resets_at(self) -> datetime | None:
        """00:00 UTC on the first day of the month after ``X-Quota-Period`` (``YYYYMM``)."""
        period = self.quota_period
        if period is None or len(period) != 6 or not period.isdigit():
            return None
        year, month = int(period[:4]), int(period[4:])
        if not 1 <= month <= 12:
            return None
        return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
