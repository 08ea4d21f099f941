"""Research series at their edges, each on a small lake of its own: a window that ends inside
an hour, a day whose wings never meet in one snapshot, a symbol with nothing before ``at``.
Expected values come from the hand-built snapshots, not from the SQL under test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from storage import Warehouse
from storage.research import api
from tests.research.helpers import Listed, Snapshot, reference_cm_row, store

EXPIRIES = (date(2026, 3, 6), date(2026, 3, 27), date(2026, 6, 26))
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def smile(atm: float, *, put: bool = True, call: bool = True) -> tuple[Listed, ...]:
    return tuple(
        Listed(expiry, atm + k, atm + 5 + k if put else None, atm - 2 + k if call else None)
        for k, expiry in enumerate(EXPIRIES)
    )


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse.open(tmp_path / "home") as warehouse:
        yield warehouse


@pytest.mark.parametrize("every", ["30m", "1h", "2h", "1d", "90m"])
def test_a_window_ending_inside_an_hour_samples_its_last_snapshots(
    lake: Warehouse, every: str
) -> None:
    # 13:40 is past the end: the last snapshot of the final (partial) bucket is 13:25.
    snapshots = [
        Snapshot("BTCUSDT", NOON + timedelta(minutes=m), smile(40.0 + m))
        for m in (10, 50, 70, 85, 100)
    ]
    store(lake, snapshots)
    end = NOON + timedelta(minutes=90)
    bucket_us = api.every_us(every)
    assert bucket_us is not None
    last: dict[int, Snapshot] = {}
    for snapshot in snapshots:
        if NOON <= snapshot.computed_at < end:
            key = int(snapshot.computed_at.timestamp() * 1_000_000) // bucket_us
            last[key] = max(last.get(key, snapshot), snapshot, key=lambda s: s.computed_at)
    expected = [
        (s.computed_at, reference_cm_row(s, 30).atm)
        for s in sorted(last.values(), key=lambda s: s.computed_at)
    ]

    frame = api.constant_maturity(lake, "BTCUSDT", NOON, end, (30,), every=every)

    got = [(row["computed_at"], row["atm_iv"]) for row in frame.iter_rows(named=True)]
    assert [at for at, _ in got] == [at for at, _ in expected]
    assert [iv for _, iv in got] == pytest.approx([iv for _, iv in expected])


def test_a_day_whose_wings_never_meet_in_one_snapshot_says_why_its_closes_are_null(
    lake: Warehouse,
) -> None:
    store(
        lake,
        [
            Snapshot("BTCUSDT", NOON, smile(50.0, call=False)),
            Snapshot("BTCUSDT", NOON + timedelta(hours=1), smile(51.0, put=False)),
        ],
    )
    row = lake.sql("SELECT * FROM daily_constant_maturity WHERE tenor_days = 30").row(0, named=True)
    assert row["close_put_25d_iv"] is not None and row["close_call_25d_iv"] is not None
    assert (row["close_rr_25d"], row["close_bf_25d"], row["close_skew_25d"]) == (None,) * 3
    assert row["null_reason"] is not None and "put_25d_iv" in row["null_reason"]


def test_a_term_structure_with_nothing_before_the_instant_has_the_usual_columns(
    lake: Warehouse,
) -> None:
    store(lake, [Snapshot("BTCUSDT", NOON, smile(50.0))])
    found = api.term_structure(lake, "BTCUSDT", NOON)
    empty = api.term_structure(lake, "HYPEUSDT", NOON)
    assert found.height == len(EXPIRIES)
    assert empty.height == 0 and empty.columns == found.columns
