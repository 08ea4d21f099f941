"""Rebuilds: restore from the archive, idempotence, dirty days, hot clean-up, clear messages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import polars as pl
import pytest

from storage import Warehouse, dirty_days, ingest_outcomes, rebuild_day, rebuild_range
from storage.catalog import cold_file, cold_files
from storage.day_jobs import DayWrites, run_day_jobs
from storage.rebuild import DayBuild, DayJob, rebuild_dirty, rebuild_symbol_day
from tests.storage.helpers import BASE_TIME, duplicate_keys, table, tick

DAY = BASE_TIME.date()
TABLES = ("snapshots", "expiries", "venue_oi", "ingest_log")


def _ingest_minutes(warehouse: Warehouse, count: int) -> None:
    for minute in range(count):
        ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute)))


def _cold_bytes(warehouse: Warehouse) -> dict[tuple[str, str, str], bytes]:
    """The current cold files' bytes by (table, symbol, day); generation names differ per run."""
    state = warehouse.state()
    return {
        (table, path.parent.name, path.name[:10]): path.read_bytes()
        for table in TABLES
        for path in cold_files(warehouse.layout, state, table)
    }


def test_rebuild_reproduces_the_hot_tables_exactly_and_twice_is_identical(
    warehouse: Warehouse,
) -> None:
    _ingest_minutes(warehouse, 3)
    hot = {name: table(warehouse, name) for name in TABLES}
    report = rebuild_day(warehouse, DAY)
    assert len(report.rebuilt) == 4 and all(day.responses == 3 for day in report.days)
    for name in ("snapshots", "expiries", "venue_oi"):
        assert table(warehouse, name).equals(hot[name]), name
    first = _cold_bytes(warehouse)
    rebuild_day(warehouse, DAY)
    assert _cold_bytes(warehouse) == first
    assert warehouse.state().watermark("BTCUSDT") == DAY


def test_rebuild_packs_the_archive_and_can_rebuild_from_the_pack(warehouse: Warehouse) -> None:
    _ingest_minutes(warehouse, 2)
    rebuild_day(warehouse, DAY, ["BTCUSDT"])
    archive = warehouse.home / "archive" / "BTCUSDT"
    assert (archive / f"{DAY}.pack.parquet").exists()
    assert not list(archive.rglob("*.rec.gz"))
    # The pack's fetch metadata is exactly what a loose record holds.
    packed = pl.read_parquet(archive / f"{DAY}.pack.parquet").get_column("fetch").to_list()
    records = warehouse.archive.read_day("BTCUSDT", DAY)
    assert packed == [orjson.dumps(r.fetch.to_json_dict()).decode() for r in records]
    before = table(warehouse, "expiries")
    cold_file(warehouse.layout, warehouse.state(), "expiries", "BTCUSDT", DAY).unlink()
    rebuild_day(warehouse, DAY, ["BTCUSDT"])
    assert table(warehouse, "expiries").equals(before)


def test_the_size_of_an_archived_day_comes_from_the_pack_footer_and_loose_files(
    warehouse: Warehouse,
) -> None:
    _ingest_minutes(warehouse, 3)
    loose = warehouse.archive.loose_files("BTCUSDT", DAY)
    assert warehouse.archive.day_size("BTCUSDT", DAY).records == 3
    assert warehouse.archive.day_size("BTCUSDT", DAY).body_bytes == sum(
        path.stat().st_size for path in loose
    )
    rebuild_day(warehouse, DAY, ["BTCUSDT"])
    packed = warehouse.archive.day_size("BTCUSDT", DAY)
    bodies = warehouse.archive.read_day("BTCUSDT", DAY)
    raw = sum(len(record.raw) for record in bodies)
    assert packed.records == 3
    # Parquet's uncompressed size also counts value lengths and page headers.
    assert raw <= packed.body_bytes <= raw + 1024
    (warehouse.home / "archive" / "BTCUSDT" / f"{DAY}.pack.parquet").write_bytes(b"damaged")
    assert warehouse.archive.day_size("BTCUSDT", DAY).records == 0


def test_a_tick_into_a_cold_day_marks_it_dirty_and_a_rebuild_shows_it(warehouse: Warehouse) -> None:
    _ingest_minutes(warehouse, 1)
    rebuild_day(warehouse, DAY)
    late = BASE_TIME + timedelta(hours=1)
    report = ingest_outcomes(warehouse, tick(late, ("ETHUSDT",)))
    assert report.dirty_marked == (("ETHUSDT", DAY),)
    assert dirty_days(warehouse) == [("ETHUSDT", DAY)]
    # Cold days are read from their cold files only: nothing doubles before the rebuild.
    assert duplicate_keys(warehouse) == dict.fromkeys(TABLES, 0)
    rebuild_dirty(warehouse)
    assert dirty_days(warehouse) == []
    count = warehouse.sql("SELECT count(*) FROM snapshots WHERE symbol = 'ETHUSDT'").item()
    assert count == 2


def test_hot_files_of_cold_days_go_only_after_the_grace(tmp_path: Path) -> None:
    warehouse = Warehouse.open(tmp_path / "home", hot_grace=timedelta(hours=1))
    _ingest_minutes(warehouse, 1)
    rebuild_day(warehouse, DAY)
    hot_day = warehouse.home / "hot" / "snapshots" / "BTCUSDT" / DAY.isoformat()
    assert hot_day.is_dir()
    eager = Warehouse.open(tmp_path / "home", hot_grace=timedelta(0))
    rebuild_day(eager, DAY + timedelta(days=1))
    assert not hot_day.exists()
    assert eager.sql("SELECT count(*) FROM snapshots").item() == 4


def test_a_day_without_archive_says_so(warehouse: Warehouse) -> None:
    _ingest_minutes(warehouse, 1)
    report = rebuild_range(warehouse, DAY + timedelta(days=5), DAY + timedelta(days=6), ["SOLUSDT"])
    assert len(report.missing) == 2 and not report.rebuilt
    message = report.days[0].message
    assert "no archived responses" in message and str(DAY) in message


def _job_with_writes(value: int) -> int | DayWrites[int]:
    """Even values hand back their writes (which fail for 4); odd ones finish at once."""
    if value % 2:
        return value

    def write() -> int:
        if value == 4:
            raise OSError("disk full")
        return value

    return DayWrites(write)


def test_one_process_overlaps_writes_and_keeps_job_order() -> None:
    assert run_day_jobs(_job_with_writes, [0, 1, 2, 3, 6], 1, sizes=[1] * 5) == [0, 1, 2, 3, 6]


def test_a_write_that_fails_on_the_writer_thread_fails_the_run() -> None:
    with pytest.raises(OSError, match="disk full"):
        run_day_jobs(_job_with_writes, [0, 1, 4, 5], 1, sizes=[1] * 4)


def test_a_long_rebuild_commits_in_batches_so_a_failure_keeps_earlier_days(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ingest_minutes(warehouse, 1)
    real = rebuild_symbol_day

    def failing_for_sol(job: DayJob) -> DayBuild:
        if job.symbol == "SOLUSDT":
            raise OSError("disk full")
        return real(job)

    monkeypatch.setattr("storage.rebuild.COMMIT_EVERY", 2)
    monkeypatch.setattr("storage.rebuild.rebuild_symbol_day", failing_for_sol)
    with pytest.raises(OSError, match="disk full"):
        rebuild_day(warehouse, DAY)  # BTC, ETH in the first batch; SOL, HYPE in the second
    state = warehouse.state()
    assert [s for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "HYPEUSDT") if state.is_cold(s, DAY)] == [
        "BTCUSDT",
        "ETHUSDT",
    ]
