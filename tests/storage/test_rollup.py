"""The hourly roll-up of hot tick files: same rows, fewer files, late ticks, failures, clean-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.catalog import hot_files
from storage.layout import utc_hour
from storage.rollup import ROLL_LAG, delete_rolled_ticks
from storage.state import TierState, load_state
from tests.storage.helpers import KEY_COLUMNS, duplicate_keys, table, tick

START = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
TICKS = [START + timedelta(minutes=10 * index) for index in range(14)]  # 12:00:30 … 14:10:30
HOUR_12 = utc_hour(START)
HOUR_13 = HOUR_12 + timedelta(hours=1)


def _ingest(warehouse: Warehouse, instants: list[datetime]) -> None:
    for instant in instants:
        ingest_outcomes(warehouse, tick(instant))


def _tables(warehouse: Warehouse) -> dict[str, pl.DataFrame]:
    return {name: table(warehouse, name) for name in KEY_COLUMNS}


def _snapshot_keys(warehouse: Warehouse, symbol: str = "BTCUSDT") -> list[datetime]:
    frame = warehouse.sql(
        f"SELECT computed_at FROM snapshots WHERE symbol = '{symbol}' ORDER BY computed_at"
    )
    return frame.get_column("computed_at").to_list()


@pytest.fixture
def rolled(tmp_path: Path) -> Iterator[Warehouse]:
    """Fourteen ticks ten minutes apart; tick files go as soon as their hour is rolled."""
    warehouse = Warehouse.open(tmp_path / "home", hot_grace=timedelta(0))
    _ingest(warehouse, TICKS)
    yield warehouse
    warehouse.close()


def test_finished_hours_are_read_from_one_file_per_table_with_the_same_rows(
    rolled: Warehouse,
) -> None:
    state = load_state(rolled.layout)
    # The newest tick is 14:10:30, so hours ending by 14:05:30 are rolled; 14:00 is not.
    assert TICKS[-1] - ROLL_LAG >= HOUR_13 + timedelta(hours=1)
    for symbol in SUPPORTED_SYMBOLS:
        rolled_hours = sorted(state.of(symbol).rolled_hours)
        assert [hour for stream, hour in rolled_hours if stream == "summary"] == [HOUR_12, HOUR_13]
        assert not state.of(symbol).dirty_hours
    for name in KEY_COLUMNS:
        files = hot_files(rolled.layout, state, name)
        # Per symbol: two roll-ups and the two tick files of 14:00, in key order.
        assert len(files) == 4 * len(SUPPORTED_SYMBOLS), name
        assert [path.parent.name for path in files[:2]] == ["hours", "hours"]
    # With no grace the rolled tick files are gone from disk, not just from the catalog.
    day_dir = rolled.layout.hot_day_dir("expiries", "BTCUSDT", START.date())
    assert sorted(path.name[9:13] for path in day_dir.glob("*.parquet")) == ["1400", "1410"]

    assert _snapshot_keys(rolled) == TICKS
    assert duplicate_keys(rolled) == dict.fromkeys(KEY_COLUMNS, 0)
    before = _tables(rolled)
    rebuild_day(rolled, START.date())
    after = _tables(rolled)
    for name in KEY_COLUMNS:
        assert_frame_equal(before[name], after[name], check_exact=True)


def test_the_hourly_research_sample_reads_roll_ups_like_tick_files(rolled: Warehouse) -> None:
    sampled = rolled.sql(
        "SELECT DISTINCT computed_at FROM expiries_hourly WHERE symbol = 'ETHUSDT' ORDER BY 1"
    ).get_column("computed_at")
    assert sampled.to_list() == [TICKS[5], TICKS[11], TICKS[13]]  # 12:50:30, 13:50:30, 14:10:30


def test_a_late_tick_into_a_rolled_hour_rolls_it_again_and_shows_once(rolled: Warehouse) -> None:
    before = load_state(rolled.layout).of("BTCUSDT").rolled_hours[("summary", HOUR_12)]
    late = START + timedelta(minutes=5)
    report = ingest_outcomes(rolled, tick(late, started_at=TICKS[-1] + timedelta(minutes=1)))
    assert set(report.stored) == set(SUPPORTED_SYMBOLS)
    assert report.hours_rolled == len(SUPPORTED_SYMBOLS)  # hour 12's summary, per symbol
    state = load_state(rolled.layout)
    assert state.of("BTCUSDT").rolled_hours[("summary", HOUR_12)] != before
    assert not state.of("BTCUSDT").dirty_hours
    assert _snapshot_keys(rolled) == sorted([*TICKS, late])
    assert duplicate_keys(rolled) == dict.fromkeys(KEY_COLUMNS, 0)


def test_a_repeated_key_of_a_rolled_hour_is_a_duplicate_and_rewrites_nothing(
    rolled: Warehouse,
) -> None:
    before = load_state(rolled.layout).of("BTCUSDT").rolled_hours
    report = ingest_outcomes(rolled, tick(TICKS[2], started_at=TICKS[-1] + timedelta(minutes=1)))
    assert report.duplicates_skipped == len(SUPPORTED_SYMBOLS)
    assert report.hours_rolled == 0
    assert load_state(rolled.layout).of("BTCUSDT").rolled_hours == before
    assert _snapshot_keys(rolled) == TICKS


def test_a_failed_roll_up_keeps_the_tick_and_the_next_tick_finishes_it(
    rolled: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    late = START + timedelta(minutes=15)
    with monkeypatch.context() as patched:
        patched.setattr("storage.ingest.roll_up", disk_full)
        report = ingest_outcomes(rolled, tick(late, started_at=TICKS[-1] + timedelta(minutes=1)))
    assert set(report.stored) == set(SUPPORTED_SYMBOLS)
    assert report.rollup_error is not None
    assert "No space left on device" in report.rollup_error
    assert "next tick retries" in report.rollup_error
    # What a crash at the same point leaves: the hour marked dirty, read from its old roll-up.
    assert ("summary", HOUR_12) in load_state(rolled.layout).of("BTCUSDT").dirty_hours
    assert late not in _snapshot_keys(rolled)
    assert rolled.archive.contains("BTCUSDT", late)

    report = ingest_outcomes(rolled, tick(TICKS[-1] + timedelta(minutes=10)))
    assert report.rollup_error is None
    assert not load_state(rolled.layout).of("BTCUSDT").dirty_hours
    assert late in _snapshot_keys(rolled)
    assert duplicate_keys(rolled) == dict.fromkeys(KEY_COLUMNS, 0)


def test_rolled_tick_files_and_superseded_roll_ups_wait_for_the_grace(tmp_path: Path) -> None:
    grace = timedelta(hours=1)
    warehouse = Warehouse.open(tmp_path / "home", hot_grace=grace)
    _ingest(warehouse, TICKS)
    ingest_outcomes(warehouse, tick(START + timedelta(minutes=5)))  # supersedes hour 12's roll-up
    layout = warehouse.layout
    day_dir = layout.hot_day_dir("snapshots", "BTCUSDT", START.date())
    hours_dir = layout.hot_hours_dir("snapshots", "BTCUSDT", START.date())
    assert len(list(day_dir.glob("*.parquet"))) == len(TICKS) + 1
    assert len(list(hours_dir.glob("12.*.parquet"))) == 2
    expected = _tables(warehouse)

    state = load_state(layout)
    newest_generation = max(state.of("BTCUSDT").rolled_hours.values())
    soon = datetime.strptime(newest_generation, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    assert delete_rolled_ticks(layout, state, soon, grace.total_seconds()) == 0

    later = datetime.now(UTC) + grace + timedelta(seconds=1)
    removed = delete_rolled_ticks(layout, state, later, grace.total_seconds())
    # Per symbol and table: the 13 tick files of hours 12 and 13 (the late one included; the
    # ingest log's are keyed five seconds later, in the same hours), and hour 12's first roll-up.
    assert removed == len(SUPPORTED_SYMBOLS) * len(KEY_COLUMNS) * (13 + 1)
    assert sorted(path.name[9:13] for path in day_dir.glob("*.parquet")) == ["1400", "1410"]
    assert len(list(hours_dir.glob("12.*.parquet"))) == 1
    warehouse.refresh_catalog()
    for name, frame in _tables(warehouse).items():
        assert_frame_equal(frame, expected[name], check_exact=True)
    warehouse.close()


def test_rolled_and_dirty_hours_survive_the_state_file_and_go_when_the_day_is_cold() -> None:
    state = TierState()
    state.mark_rolled("SOLUSDT", ("summary", HOUR_12), "20260302T140531.000000Z")
    state.mark_rolled("SOLUSDT", ("log", HOUR_13), "20260302T150531.000000Z")
    assert state.mark_hour_dirty("SOLUSDT", ("log", HOUR_13))
    assert not state.mark_hour_dirty("SOLUSDT", ("log", HOUR_12))  # never rolled
    again = TierState.from_json(state.to_json())
    assert again.of("SOLUSDT").rolled_hours == state.of("SOLUSDT").rolled_hours
    assert again.of("SOLUSDT").dirty_hours == {("log", HOUR_13)}
    again.mark_cold("SOLUSDT", START.date(), datetime.now(UTC), "gen")
    assert not again.of("SOLUSDT").rolled_hours
    assert not again.of("SOLUSDT").dirty_hours
