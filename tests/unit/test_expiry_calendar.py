"""The expiry calendar on real cases: padding, year ends, five-Friday months, invalid dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from backquant.expiry_calendar import (
    classify,
    format_token,
    last_friday,
    parse_token,
    settlement_instant,
    years_to_expiry,
)

CALENDAR_CASES = [
    # token, date, type — checked against a printed calendar
    ("28MAR25", date(2025, 3, 28), "quarterly"),  # BackQuant's own examples
    ("25APR25", date(2025, 4, 25), "monthly"),
    ("07MAR25", date(2025, 3, 7), "weekly"),
    ("7MAR25", date(2025, 3, 7), "weekly"),  # Deribit does not zero-pad
    ("26MAR25", date(2025, 3, 26), "daily"),
    ("27DEC24", date(2024, 12, 27), "quarterly"),  # year end, last Friday of December
    ("20DEC24", date(2024, 12, 20), "weekly"),
    ("31DEC25", date(2025, 12, 31), "daily"),  # New Year's Eve is a Wednesday
    ("26DEC25", date(2025, 12, 26), "quarterly"),
    ("2JAN26", date(2026, 1, 2), "weekly"),  # first Friday of the year
    ("30JAN26", date(2026, 1, 30), "monthly"),  # January 2026 has five Fridays
    ("23JAN26", date(2026, 1, 23), "weekly"),  # ... so the fourth is only a weekly
    ("29MAY26", date(2026, 5, 29), "monthly"),
    ("01MAY26", date(2026, 5, 1), "weekly"),
    ("31OCT25", date(2025, 10, 31), "monthly"),
    ("31MAR28", date(2028, 3, 31), "quarterly"),  # five-Friday quarter-end month
    ("24MAR28", date(2028, 3, 24), "weekly"),
    ("31DEC27", date(2027, 12, 31), "quarterly"),  # last Friday is the last day of the year
    ("27FEB26", date(2026, 2, 27), "monthly"),
    ("26JUN26", date(2026, 6, 26), "quarterly"),
    ("29FEB28", date(2028, 2, 29), "daily"),  # leap day, a Tuesday
    ("1MAR25", date(2025, 3, 1), "daily"),  # a Saturday: any non-Friday is daily
]

UNPARSEABLE = [
    "29FEB27",  # not a leap year
    "32JAN25",
    "00MAR25",
    "123MAR25",
    "28Mar25",
    "28MAR2025",
    "28XYZ25",
    "PERPETUAL",
    "",
    " 28MAR25",
    "../28MAR25",
    "28MAR25\n",  # a regex's $ would let the newline through
    "\u0662\u0668MAR25",  # Arabic-Indic digits, which a regex's \\d reads as 28
]


@pytest.mark.parametrize(("token", "expected_date", "expected_type"), CALENDAR_CASES)
def test_classifies_real_calendar_cases(
    token: str, expected_date: date, expected_type: str
) -> None:
    expiry = classify(token)
    assert expiry.expiry_date == expected_date
    assert expiry.type == expected_type
    assert expiry.is_anchor is (expected_type in {"monthly", "quarterly"})
    assert expiry.expiry_at == datetime(
        expected_date.year, expected_date.month, expected_date.day, 8, tzinfo=UTC
    )


@pytest.mark.parametrize("token", UNPARSEABLE)
def test_unparseable_tokens_are_kept_as_unknown(token: str) -> None:
    expiry = classify(token)
    assert expiry.token == token
    assert expiry.type == "unknown"
    assert expiry.expiry_date is None
    assert expiry.expiry_at is None
    assert not expiry.is_anchor


def test_padded_and_unpadded_tokens_name_the_same_day() -> None:
    for day in range(1, 10):
        assert parse_token(f"{day}JUN26") == parse_token(f"0{day}JUN26") == date(2026, 6, day)


def test_format_round_trips_every_day_of_a_leap_year() -> None:
    day = date(2028, 1, 1)
    while day.year == 2028:
        for zero_pad in (True, False):
            assert parse_token(format_token(day, zero_pad=zero_pad)) == day
        day = date.fromordinal(day.toordinal() + 1)


def test_last_friday_is_a_friday_in_the_last_week_of_every_month() -> None:
    for year in (2024, 2025, 2026, 2027, 2028):
        for month in range(1, 13):
            friday = last_friday(year, month)
            assert friday.weekday() == 4
            assert friday.month == month
            assert date.fromordinal(friday.toordinal() + 7).month != month


def test_years_to_expiry_is_act_365_from_the_08_utc_settlement() -> None:
    expiry_at = settlement_instant(date(2026, 3, 27))
    one_day_before = datetime(2026, 3, 26, 8, tzinfo=UTC)
    assert years_to_expiry(expiry_at, one_day_before) == pytest.approx(1 / 365, rel=1e-12)
    a_minute_after = datetime(2026, 3, 27, 8, 1, tzinfo=UTC)
    assert years_to_expiry(expiry_at, a_minute_after) < 0
