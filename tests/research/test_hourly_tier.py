"""The hourly sample: ``expiries_hourly`` equals the on-the-fly sample of every stored row,
whichever days were materialised; sampled days are served from the stored sample; materialising is
idempotent and skips days that are not over; a rebuild, a late import and a late tick re-sample
their day.

The reference sample is polars over the ``expiries`` rows (the last snapshot of each symbol and
UTC hour), not the SQL under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from backquant.headers import ResponseHeaders
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.bulk import FetchedBody, bulk_ingest
from storage.records import FetchMeta
from storage.reports import REBUILT
from storage.research.hourly_tier import DaySampled, materialise_days
from storage.writes import transaction
from tests.storage.helpers import outcome
from tests.support.bodies import summary_body

D1, D2, D3, D4 = (date(2026, 3, day) for day in (1, 2, 3, 4))
MINUTES = (0, 17, 59, 60, 61, 130, 299, 1439)
"""Ticks per day (minutes after 00:00:30 UTC): several per hour, the last one at 23:59:30."""
PRESENT = {
    "BTCUSDT": (D1, D2, D3, D4),
    "ETHUSDT": (D1, D3, D4),  # no ETH on D2: a run of unsampled days that holds no rows
    "SOLUSDT": (D4,),  # only on a day never materialised
}
ORDER = ["symbol", "computed_at", "expiry"]


def at(day: date, minute: float) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
        seconds=30, minutes=minute
    )


def fetched(symbol: str, computed_at: datetime) -> FetchedBody:
    started = computed_at + timedelta(seconds=5)
    request_id = f"req_{symbol}_{computed_at:%d%H%M%S}"
    fetch = FetchMeta(
        symbol,
        200,
        started,
        started + timedelta(milliseconds=120),
        1,
        ResponseHeaders(request_id=request_id),
    )
    raw = summary_body(symbol, computed_at=computed_at, request_id=request_id)
    return FetchedBody(fetch, raw)


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse.open(tmp_path / "home") as warehouse:
        bodies = [
            fetched(symbol, at(day, minute))
            for symbol, days in PRESENT.items()
            for day in days
            for minute in MINUTES
        ]
        report = bulk_ingest(warehouse, bodies)
        assert report.count("stored") == len(bodies)
        yield warehouse


def reference(warehouse: Warehouse) -> pl.DataFrame:
    """The last snapshot of each symbol and UTC hour, from every stored expiries row."""
    rows = warehouse.sql("SELECT * FROM expiries")
    hour = pl.col("computed_at").dt.truncate("1h")
    newest = pl.col("computed_at").max().over("symbol", hour)
    return rows.filter(pl.col("computed_at") == newest).sort(ORDER)


def on_days(frame: pl.DataFrame, days: set[date]) -> pl.DataFrame:
    return frame.filter(pl.col("computed_at").dt.date().is_in(sorted(days)))


def view(warehouse: Warehouse) -> pl.DataFrame:
    frame = warehouse.sql("SELECT * FROM expiries_hourly")
    return frame.sort(ORDER)


def sample(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.sql("SELECT * FROM hourly_sample").sort(ORDER)


def assert_same(actual: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert actual.height == expected.height
    assert actual.select(expected.columns).equals(expected)


def test_the_view_equals_the_on_the_fly_sample_whatever_was_materialised(
    lake: Warehouse,
) -> None:
    expected = reference(lake)
    assert expected.select("symbol", "computed_at").n_unique() == sum(
        len(days) * 5 for days in PRESENT.values()
    )  # per day: hours 0, 1, 2, 4 and 23
    assert_same(view(lake), expected)
    materialised: set[date] = set()
    # D3 alone leaves days before the first sampled one; D1 then leaves D2 between two
    # sampled days; D4 and SOLUSDT (a symbol never sampled) stay on the fly throughout.
    for day in (D3, D1, D2):
        [written] = materialise_days(lake, [day])
        materialised.add(day)
        assert written == DaySampled(day, on_days(expected, {day}).height)
        assert_same(sample(lake), on_days(expected, materialised))
        assert_same(view(lake), expected)
    assert lake.sql("SELECT count(*) FROM hourly_sample WHERE symbol = 'SOLUSDT'").item() == 0


def test_sampled_days_are_read_from_the_stored_sample(lake: Warehouse) -> None:
    expected = reference(lake)
    materialise_days(lake, [D1])
    with lake.writer() as connection, transaction(connection, lake.config, "a test delete"):
        connection.execute(
            "DELETE FROM expiry_rows WHERE computed_at < ?", [at(D2, 0) - timedelta(seconds=30)]
        )
    # D1's rows are gone from expiries but the view still has D1's sample, and the rest on
    # the fly: the sampled day's files are not what it reads.
    assert (
        lake.sql("SELECT count(*) FROM expiries WHERE computed_at < DATE '2026-03-02'").item() == 0
    )
    assert_same(view(lake), expected)


def test_materialising_is_idempotent_and_skips_days_not_over(lake: Warehouse) -> None:
    expected = reference(lake)
    written = [DaySampled(day, on_days(expected, {day}).height) for day in (D1, D2)]
    assert materialise_days(lake, [D1, D2]) == written
    once = sample(lake)
    assert materialise_days(lake, [D2, D1, D1]) == written
    assert sample(lake).equals(once)
    # A day is sampled whole or not at all: D3 at 15:00 is not over, so it gets no sample.
    assert materialise_days(lake, [D3], now=at(D3, 15 * 60)) == [DaySampled(D3, 0)]
    assert sample(lake).equals(once)
    assert_same(view(lake), expected)


def test_a_rebuild_rewrites_the_days_sample(lake: Warehouse) -> None:
    materialise_days(lake, [D1, D2, D3])
    # Ticks that land in D2 after it was sampled: 00:59:45 is now the last of hour 0, and
    # 12:00:30 opens an hour that had no snapshot.
    late = [at(D2, 59.25), at(D2, 12 * 60)]
    for instant in late:
        assert ingest_outcomes(lake, {"BTCUSDT": outcome("BTCUSDT", instant)}).stored == (
            "BTCUSDT",
        )

    report = rebuild_day(lake, D2, ["BTCUSDT"])

    assert [item.status for item in report.days] == [REBUILT]
    expected = reference(lake)
    assert set(late) <= set(sample(lake)["computed_at"].to_list())
    assert_same(sample(lake), on_days(expected, {D1, D2, D3}))
    assert_same(view(lake), expected)


def test_an_import_into_a_sampled_day_re_samples_it(lake: Warehouse) -> None:
    materialise_days(lake, [D1, D2])
    before = sample(lake)
    late = [fetched("BTCUSDT", at(D1, 59.25)), fetched("ETHUSDT", at(D1, 8 * 60))]
    assert bulk_ingest(lake, late).count("stored") == 2
    expected = reference(lake)
    assert not sample(lake).equals(before)
    assert_same(sample(lake), on_days(expected, {D1, D2}))
    assert_same(view(lake), expected)


def test_a_late_tick_into_a_sampled_day_re_samples_it(lake: Warehouse) -> None:
    # BackQuant served a body computed at 00:59:45 of a day already sampled (a stale summary
    # fetched after midnight): the tick stores it and the day's sample takes it in.
    materialise_days(lake, [D1])
    late = at(D1, 59.25)
    fetched_at = at(D2, 31)
    report = ingest_outcomes(lake, {"BTCUSDT": outcome("BTCUSDT", late, started_at=fetched_at)})
    assert [symbol.status for symbol in report.symbols] == ["stored"]
    expected = reference(lake)
    assert late in set(on_days(expected, {D1})["computed_at"])
    assert_same(sample(lake), on_days(expected, {D1}))
    assert_same(view(lake), expected)
