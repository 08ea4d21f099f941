"""Readers never block the writer: a reader process queries while ticks and a rebuild run."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from storage import Warehouse, dirty_days, ingest_outcomes, rebuild_day, rebuild_dirty
from tests.storage.helpers import BASE_TIME, tick
from tests.support.child_process import start_ready_child

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_reader_process_never_blocks_ticks_or_a_rebuild(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    reader = start_ready_child("tests.storage.reader_child", str(warehouse.home), "4")
    reports = []
    for minute in range(1, 16):
        reports.append(ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute))))
        if minute == 8:
            rebuild_day(warehouse, BASE_TIME.date())
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    summary = orjson.loads(out.strip().splitlines()[-1])
    assert all(len(report.stored) == 4 for report in reports)
    assert summary["errors"] == [] and summary["queries"] > 10
    assert summary["max_seen"] > 4  # the reader saw ticks committed while it ran
    # Ticks after the rebuild landed in a cold day: dirty, shown once the day is rebuilt.
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 9 * 4
    assert len(dirty_days(warehouse)) == 4
    rebuild_dirty(warehouse)
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 16 * 4


def test_views_work_from_any_directory_and_the_catalog_is_read_only(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('SELECT count(*) FROM expiries').fetchone()[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(warehouse.layout.catalog)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert int(result.stdout) == 16
    with pytest.raises(duckdb.Error):
        warehouse.connect().execute("CREATE TABLE x AS SELECT 1")


def test_an_open_reader_keeps_its_catalog_while_a_new_one_replaces_it(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    held = warehouse.connect()
    inode = warehouse.layout.catalog.stat().st_ino
    ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=1)))
    assert warehouse.layout.catalog.stat().st_ino != inode
    assert held.execute("SELECT count(*) FROM snapshots").fetchone() == (4,)
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 8
    held.close()
