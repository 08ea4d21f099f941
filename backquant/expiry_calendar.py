"""The Deribit-style expiry calendar BackQuant uses for every symbol.

Tokens look like ``28MAR25`` (BackQuant zero-pads) or ``7MAR25`` (Deribit does not). Every
expiry settles at 08:00 UTC. Classification follows BackQuant's rules: the last Friday of
Mar/Jun/Sep/Dec is quarterly, the last Friday of any other month is monthly, any other Friday is
weekly, any other day is daily. A token that does not parse is kept with type ``unknown``, never
dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal

ExpiryType = Literal["daily", "weekly", "monthly", "quarterly", "unknown"]
EXPIRY_TYPES: Final[tuple[ExpiryType, ...]] = ("daily", "weekly", "monthly", "quarterly", "unknown")
ANCHOR_TYPES: Final[frozenset[ExpiryType]] = frozenset({"monthly", "quarterly"})

SETTLEMENT_TIME: Final[time] = time(8, 0, tzinfo=UTC)
SECONDS_PER_YEAR: Final[float] = 365.0 * 86_400.0
"""ACT/365, as Deribit uses for time to expiry."""

_TOKEN = re.compile(r"([0-9]{1,2})([A-Z]{3})([0-9]{2})")
_MONTHS: Final[dict[str, int]] = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_MONTH_NAMES: Final[dict[int, str]] = {number: name for name, number in _MONTHS.items()}
_QUARTER_MONTHS: Final[frozenset[int]] = frozenset({3, 6, 9, 12})
_FRIDAY: Final[int] = 4


@dataclass(frozen=True, slots=True)
class Expiry:
    """One expiry token, parsed and classified."""

    token: str
    expiry_date: date | None
    type: ExpiryType

    @property
    def is_anchor(self) -> bool:
        return self.type in ANCHOR_TYPES

    @property
    def expiry_at(self) -> datetime | None:
        """The settlement instant, 08:00 UTC on the expiry date."""
        return None if self.expiry_date is None else settlement_instant(self.expiry_date)


def parse_token(token: str) -> date | None:
    """The date of a ``DMMMYY`` / ``DDMMMYY`` token, or None when it does not parse."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    day, month_name, year = match.groups()
    month = _MONTHS.get(month_name)
    if month is None:
        return None
    try:
        return date(2000 + int(year), month, int(day))
    except ValueError:
        return None


def format_token(expiry_date: date, *, zero_pad: bool = True) -> str:
    """The token for a date: ``07MAR25`` zero-padded (BackQuant), ``7MAR25`` not (Deribit)."""
    day = f"{expiry_date.day:02d}" if zero_pad else str(expiry_date.day)
    return f"{day}{_MONTH_NAMES[expiry_date.month]}{expiry_date.year % 100:02d}"


def last_friday(year: int, month: int) -> date:
    """The last Friday of a month."""
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    last_day = first_of_next - timedelta(days=1)
    return last_day - timedelta(days=(last_day.weekday() - _FRIDAY) % 7)


def classify_date(expiry_date: date) -> ExpiryType:
    """BackQuant's calendar type for an expiry date."""
    if expiry_date.weekday() != _FRIDAY:
        return "daily"
    if expiry_date != last_friday(expiry_date.year, expiry_date.month):
        return "weekly"
    return "quarterly" if expiry_date.month in _QUARTER_MONTHS else "monthly"


def classify(token: str) -> Expiry:
    """Parse and classify a token; an unparseable token is kept with type ``unknown``."""
    expiry_date = parse_token(token)
    if expiry_date is None:
        return Expiry(token=token, expiry_date=None, type="unknown")
    return Expiry(token=token, expiry_date=expiry_date, type=classify_date(expiry_date))


def settlement_instant(expiry_date: date) -> datetime:
    """08:00 UTC on the expiry date."""
    return datetime.combine(expiry_date, SETTLEMENT_TIME)


def years_to_expiry(expiry_at: datetime, as_of: datetime) -> float:
    """Exact time from ``as_of`` to ``expiry_at`` in years, ACT/365 (negative once expired)."""
    return (expiry_at - as_of).total_seconds() / SECONDS_PER_YEAR
