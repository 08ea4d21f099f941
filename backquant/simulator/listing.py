"""Which expiries are listed at an instant, per symbol (Deribit's introduction policy).

An expiry is live until its settlement, 08:00 UTC on its date; at that instant it disappears.
Types come from ``backquant.expiry_calendar``, the same rules the client uses.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from backquant.expiry_calendar import (
    Expiry,
    classify,
    format_token,
    last_friday,
    settlement_instant,
)
from backquant.simulator.profiles import PROFILES, Listing

_FRIDAY = 4


def _first_live_date(at: datetime) -> date:
    """The earliest date whose 08:00 UTC settlement is still ahead of ``at``."""
    today = at.date()
    return today if settlement_instant(today) > at else today + timedelta(days=1)


def _month_ends(start: date, count: int, *, quarterly: bool) -> list[date]:
    found: list[date] = []
    year, month = start.year, start.month
    while len(found) < count:
        if not quarterly or month % 3 == 0:
            friday = last_friday(year, month)
            if friday >= start:
                found.append(friday)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


@lru_cache(maxsize=4096)
def _listed_dates(first_live: date, listing: Listing) -> tuple[date, ...]:
    chosen: set[date] = set()
    day = first_live
    dailies = 0
    while dailies < listing.dailies:
        if day.weekday() != _FRIDAY:
            chosen.add(day)
            dailies += 1
        day += timedelta(days=1)
    friday = first_live + timedelta(days=(_FRIDAY - first_live.weekday()) % 7)
    chosen.update(friday + timedelta(weeks=n) for n in range(listing.fridays))
    chosen.update(_month_ends(first_live, listing.monthlies, quarterly=False))
    chosen.update(_month_ends(first_live, listing.quarterlies, quarterly=True))
    return tuple(sorted(chosen))


def live_expiries(symbol: str, at: datetime) -> tuple[Expiry, ...]:
    """The symbol's listed expiries at ``at``, nearest first, with zero-padded tokens."""
    dates = _listed_dates(_first_live_date(at), PROFILES[symbol].listing)
    return tuple(classify(format_token(expiry_date)) for expiry_date in dates)
