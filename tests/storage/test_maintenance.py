"""Maintenance: merging leaves fewer files and the same rows, snapshots expire after the
retention and not before, merged-away files wait for the grace, and readers keep working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from pipelines.cli import app
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.errors import SnapshotNotFoundError
from storage.maintenance import MaintenanceReport, maintain
from tests.storage.helpers import BASE_TIME, ORDER, count, open_local, tables, tick

TICKS = 5


def _ticks(warehouse: Warehouse, count_: int = TICKS) -> None:
    for minute in range(count_):
        ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute)))


def _files_on_disk(warehouse: Warehouse) -> int:
    return sum(1 for _ in (warehouse.home / "data").rglob("*.parquet"))


def _affected(report: MaintenanceReport) -> dict[str, int]:
    return {step.name: step.affected for step in report.steps}


def _snapshot_count(warehouse: Warehouse) -> int:
    return count(warehouse, "SELECT count(*) FROM ducklake_snapshots('lake')")


def test_merging_leaves_fewer_files_the_same_rows_and_working_readers(
    warehouse: Warehouse,
) -> None:
    _ticks(warehouse)
    rebuild_day(warehouse, BASE_TIME.date(), ["BTCUSDT"])  # deleted rows to rewrite, too
    before = tables(warehouse)  # the warehouse's reader is attached from here on
    held = warehouse.connect()
    held_rows = held.execute("SELECT count(*) FROM expiries").fetchall()

    report = maintain(warehouse)

    assert report.files_after < report.files_before
    assert _affected(report)["merge_adjacent_files"] > 0
    # One file per table and month, and no delete file left by the rebuild.
    with warehouse.writer() as connection:
        per_table = connection.execute(
            "SELECT table_name, file_count, delete_file_count FROM ducklake_table_info('lake') "
            "WHERE file_count > 0"
        ).fetchall()
    assert per_table and {(files, deletes) for _, files, deletes in per_table} == {(1, 0)}
    assert report.seconds > 0 and set(report.as_dict()["steps"]) == set(_affected(report))
    for name, frame in tables(warehouse).items():
        assert_frame_equal(frame, before[name], check_exact=True)
    assert held.execute("SELECT count(*) FROM expiries").fetchall() == held_rows
    # Merged-away files stay until the grace is over: a query may still be reading them.
    on_disk = _files_on_disk(warehouse)
    assert on_disk > report.files_after

    later = maintain(warehouse, now=datetime.now(UTC) + timedelta(days=2))
    assert later.files_after == report.files_after
    assert _affected(later)["cleanup_old_files"] > 0
    assert _files_on_disk(warehouse) == on_disk - _affected(later)["cleanup_old_files"]
    for name, frame in tables(warehouse).items():
        assert_frame_equal(frame, before[name], check_exact=True)
    assert held.execute("SELECT count(*) FROM expiries").fetchall() == held_rows
    held.close()
    # Ticks after maintenance land and show as usual.
    ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(hours=1)))
    assert count(warehouse, "SELECT count(*) FROM snapshots") == (TICKS + 1) * 4


def _files_per_table(warehouse: Warehouse) -> dict[str, int]:
    with warehouse.writer() as connection:
        rows = connection.execute(
            "SELECT table_name, file_count FROM ducklake_table_info('lake') WHERE file_count > 0"
        ).fetchall()
    return dict(rows)


def test_days_of_a_month_merge_into_one_file_and_months_stay_apart(
    warehouse: Warehouse,
) -> None:
    # Three days of February and the first of March: two months, four days.
    for at in (datetime(2026, 2, day, 9, 0, 30, tzinfo=UTC) for day in (26, 27, 28)):
        ingest_outcomes(warehouse, tick(at))
    ingest_outcomes(warehouse, tick(BASE_TIME - timedelta(days=1)))
    before = tables(warehouse)

    report = maintain(warehouse)

    assert _affected(report)["merge_adjacent_files"] > 0
    per_table = _files_per_table(warehouse)
    assert set(per_table) == {"snapshots", "expiry_rows", "venue_oi", "ingest_log", "responses"}
    assert set(per_table.values()) == {2}, per_table  # February's days in one file
    for name, frame in tables(warehouse).items():
        assert_frame_equal(frame, before[name], check_exact=True)


def test_a_run_that_reached_its_size_is_merged_into_the_month_file(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ticks(warehouse, 2)
    maintain(warehouse)  # one run per table
    for at in (BASE_TIME + timedelta(hours=hour) for hour in (1, 2)):
        ingest_outcomes(warehouse, tick(at))
        # Every file has reached the run size: the small-file merge leaves them alone, and
        # the month merge takes them into one file.
        monkeypatch.setattr("storage.maintenance.RUN_BYTES", 1)
        report = maintain(warehouse)
        assert _affected(report)["merge_adjacent_files"] == 0
        assert _affected(report)["merge_into_month_files"] > 0
        assert set(_files_per_table(warehouse).values()) == {1}
    # Files over the run size are never merged by the hourly small-file merge.
    monkeypatch.setattr("storage.maintenance.RUN_BYTES", 10**12)
    ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(hours=3)))
    report = maintain(warehouse)
    assert _affected(report)["merge_into_month_files"] == 0
    assert set(_files_per_table(warehouse).values()) == {1}
    assert count(warehouse, "SELECT count(*) FROM snapshots") == (2 + 3) * 4


def test_snapshots_older_than_the_retention_are_expired(tmp_path: Path) -> None:
    warehouse = open_local(tmp_path / "home", TERMSTORE_SNAPSHOT_RETENTION_DAYS="1")
    _ticks(warehouse, 2)
    after_first = datetime.now(UTC) - timedelta(microseconds=1)
    ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=2)))
    before = tables(warehouse)
    snapshots = _snapshot_count(warehouse)

    report = maintain(warehouse, now=datetime.now(UTC) + timedelta(days=2))

    # Every snapshot but the merge's, the newest, is past the retention.
    assert report.snapshots_kept == 1
    assert _affected(report)["expire_snapshots"] == snapshots
    with pytest.raises(SnapshotNotFoundError):
        warehouse.sql("SELECT count(*) FROM snapshots", as_of=after_first)
    for name, frame in tables(warehouse).items():
        assert_frame_equal(frame, before[name], check_exact=True)
    assert set(before) == set(ORDER)
    warehouse.close()


def test_snapshots_within_the_retention_are_kept(tmp_path: Path) -> None:
    created = datetime.now(UTC)
    warehouse = open_local(tmp_path / "home", TERMSTORE_SNAPSHOT_RETENTION_DAYS="1")
    _ticks(warehouse, 2)
    after_first_tick = datetime.now(UTC)
    snapshots = _snapshot_count(warehouse)

    # A day after the lake was made: every snapshot is younger than the retention.
    report = maintain(warehouse, now=created + timedelta(days=1))

    assert _affected(report)["expire_snapshots"] == 0
    assert report.snapshots_kept == _snapshot_count(warehouse) == snapshots + 1  # the merge
    then = warehouse.sql("SELECT count(*) FROM snapshots", as_of=after_first_tick)
    assert then.item() == 8
    warehouse.close()


def test_maintaining_a_new_lake_does_nothing_harmful(warehouse: Warehouse) -> None:
    report = maintain(warehouse)
    assert report.files_before == report.files_after
    assert _affected(report)["expire_snapshots"] == 0
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 0


def test_termstore_maintain(warehouse: Warehouse) -> None:
    _ticks(warehouse, 2)
    result = CliRunner().invoke(app, ["maintain", "--home", str(warehouse.home)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "merge_adjacent_files" in output and "data files" in output
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 8
