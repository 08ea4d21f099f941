"""A module-scoped lake holding the hand-built cases (four symbols over several days), with the
hourly sample of its first day materialised so the hourly series read both sources."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from storage import Warehouse
from storage.research.hourly_tier import materialise_days
from tests.research.helpers import Listed, Snapshot, store

BTC_EXPIRIES = (
    date(2026, 3, 2),
    date(2026, 3, 6),
    date(2026, 3, 13),
    date(2026, 3, 27),
    date(2026, 4, 24),
    date(2026, 6, 26),
)


def _smile(rng: random.Random, expiries: tuple[date, ...]) -> tuple[Listed, ...]:
    rows = []
    for index, expiry in enumerate(expiries):
        atm = rng.uniform(40, 60) + index
        rows.append(
            Listed(
                expiry,
                atm,
                atm + rng.uniform(-2, 8),
                atm + rng.uniform(-4, 3),
                call_oi=rng.uniform(50, 500),
                put_oi=rng.uniform(50, 500),
                max_pain=rng.choice([90_000.0, 95_000.0, 100_000.0, None]),
            )
        )
    return tuple(rows)


def _btc_day(rng: random.Random) -> list[Snapshot]:
    start = datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC)
    # Several snapshots per hour, so hourly sampling has something to choose from.
    offsets = (0, 17, 41, 59, 60, 95, 119, 121, 200, 1439)
    return [
        Snapshot("BTCUSDT", start + timedelta(minutes=m), _smile(rng, BTC_EXPIRIES))
        for m in offsets
    ]


def _later_cases(rng: random.Random) -> list[Snapshot]:
    at = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
    cases = [
        Snapshot("BTCUSDT", at, _smile(rng, BTC_EXPIRIES[1:])),
        # Calendar arbitrage: the 6MAR26 total variance exceeds 13MAR26's.
        Snapshot(
            "BTCUSDT",
            at + timedelta(minutes=31),
            (
                Listed(date(2026, 3, 6), 140.0, 150.0, 135.0),
                Listed(date(2026, 3, 13), 40.0, 45.0, 38.0),
                Listed(date(2026, 3, 27), 50.0, None, 49.0),
                Listed(date(2026, 6, 26), 55.0, 60.0, 52.0),
            ),
        ),
        # 13MAR26 disappears; the put IV of 27MAR26 is missing (not measured).
        Snapshot(
            "BTCUSDT",
            at + timedelta(minutes=65),
            (
                Listed(date(2026, 3, 6), 48.0, 52.0, 46.0),
                Listed(date(2026, 3, 27), 50.0, None, 49.0),
                Listed(date(2026, 6, 26), 55.0, 60.0, 52.0),
            ),
        ),
        # A minute before the 3MAR26 settlement, then 30 s after it (T ≤ 0: left out).
        Snapshot(
            "ETHUSDT",
            datetime(2026, 3, 3, 7, 59, tzinfo=UTC),
            _smile(rng, (date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 6), date(2026, 3, 27))),
        ),
        Snapshot(
            "ETHUSDT",
            datetime(2026, 3, 3, 8, 0, 30, tzinfo=UTC),
            _smile(rng, (date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 6), date(2026, 3, 27))),
        ),
        # First expiry after 1d: the 1d point is flat-extrapolated; 180d is beyond the last.
        Snapshot(
            "SOLUSDT",
            datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC),
            _smile(rng, (date(2026, 3, 6), date(2026, 3, 27), date(2026, 4, 24))),
        ),
        # An expiry exactly 7 days out: the 7d point is that expiry's own IV.
        Snapshot(
            "SOLUSDT",
            datetime(2026, 3, 6, 8, 0, 0, tzinfo=UTC),
            _smile(rng, (date(2026, 3, 7), date(2026, 3, 13), date(2026, 3, 27))),
        ),
        # A thin chain with a null ATM IV on one expiry.
        Snapshot(
            "HYPEUSDT",
            datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC),
            (
                Listed(date(2026, 3, 6), None, 70.0, 65.0),
                Listed(date(2026, 3, 27), 68.0, 75.0, 66.0),
            ),
        ),
    ]
    return cases


CASE_SEED = 20260302


SAMPLED_DAY = date(2026, 3, 1)
"""The day whose hourly sample the fixture materialises (only BTCUSDT has rows on it)."""


def all_cases() -> list[Snapshot]:
    rng = random.Random(CASE_SEED)
    return _btc_day(rng) + _later_cases(rng)


@pytest.fixture(scope="module")
def cases() -> list[Snapshot]:
    return all_cases()


@pytest.fixture(scope="module")
def research_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    home: Path = tmp_path_factory.mktemp("research") / "home"
    with Warehouse.open(home) as warehouse:
        store(warehouse, all_cases())
        materialise_days(warehouse, [SAMPLED_DAY])
        yield warehouse
