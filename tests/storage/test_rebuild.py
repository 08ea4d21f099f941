"""Rebuilds: restore from the archive, idempotence, dirty days, hot clean-up, clear messages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
from tests.support.child_process import ROOT

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


MARKS_ENV = "TERMSTORE_TEST_JOB_MARKS"


def _job(value: int) -> tuple[int, int]:
    """A job for worker processes; which process ran it. A worker's job leaves a mark file;
    the caller's first job waits for one, so a worker surely takes jobs however slowly it
    starts. A negative value fails."""
    marks = Path(os.environ[MARKS_ENV])
    if os.getpid() == int(os.environ[MARKS_ENV + "_CALLER"]):
        deadline = time.monotonic() + 60
        while not any(marks.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
    else:
        (marks / f"{os.getpid()}-{value}").touch()
    if value < 0:
        raise ValueError(f"job {value} failed")
    return value, os.getpid()


@pytest.fixture
def job_marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv(MARKS_ENV, str(marks))
    monkeypatch.setenv(MARKS_ENV + "_CALLER", str(os.getpid()))
    return marks


def test_worker_processes_share_the_jobs_and_results_keep_job_order(job_marks: Path) -> None:
    results = run_day_jobs(_job, list(range(6)), 2, sizes=[1] * 6)
    assert [value for value, _ in results] == list(range(6))
    processes = {pid for _, pid in results}
    assert os.getpid() in processes and len(processes) == 2


def test_a_failed_job_in_a_worker_fails_the_whole_run(job_marks: Path) -> None:
    # The smallest job is the worker's first: it takes them from the back.
    with pytest.raises(ValueError, match="job -1 failed"):
        run_day_jobs(_job, [0, 1, 2, -1], 2, sizes=[4, 3, 2, 1])
    assert [mark.name.split("-", 1)[1] for mark in job_marks.iterdir()] == ["-1"]


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


UNGUARDED_SCRIPT = """
import sys
from pathlib import Path

with Path(sys.argv[1]).open("a") as runs:
    runs.write("ran\\n")
import os
from storage.day_jobs import DayWrites, run_day_jobs
from tests.storage.test_rebuild import MARKS_ENV, _job

os.environ[MARKS_ENV + "_CALLER"] = str(os.getpid())

print(len({pid for _, pid in run_day_jobs(_job, list(range(4)), 2, sizes=[1] * 4)}))
"""


def test_worker_processes_never_run_the_callers_script_again(
    tmp_path: Path, job_marks: Path
) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    runs = tmp_path / "runs.txt"
    done = subprocess.run(
        [sys.executable, str(script), str(runs)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"  # the worker process took jobs
    assert runs.read_text() == "ran\n"
