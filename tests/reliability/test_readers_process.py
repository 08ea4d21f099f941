"""Readers: a process attached once keeps reading, whole ticks only, through every kind of write.

A reader process (tests/reliability/reader_child.py) attaches before the first tick and never
again, and queries about every 100 ms while this process stores ticks, rebuilds their day, runs
``maintain()`` and flushes inlined data. It must meet no error and never see part of a tick: a
snapshot without all its expiry rows, a tick without all four symbols, or summary rows without
their ingest-log rows; its counts only grow, by whole ticks.

Upstream DuckLake breaks a reader that stays attached when another process flushes inlined
data (duckdb/ducklake #1305, #1413). termstore inlines nothing (storage/lake_schema.py), so the
flush here must find nothing to move and the reader must not notice it. Run on the default
local lake and on a PostgreSQL catalog with data on S3.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import LakeConfig, Warehouse, ingest_outcomes, rebuild_day
from storage.lake import LAKE
from storage.maintenance import maintain
from tests.reliability.sizes import sized
from tests.reliability.team_lake import TeamLake
from tests.storage.helpers import BASE_TIME, tick
from tests.support.child_process import start_ready_child

WIDTH = len(SUPPORTED_SYMBOLS)


def _lake_env(deployment: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if deployment == "local":
        return {}
    team_lake: TeamLake = request.getfixturevalue("team_lake")
    return team_lake.env()


def _timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock start and end of ``action``, to match with the reader's query times."""
    started = time.time()
    action()
    return started, time.time()


def _flush(warehouse: Warehouse) -> None:
    """What a CHECKPOINT from any DuckDB client would do: it must find nothing to flush, since a
    flush of inlined rows is what breaks attached readers upstream."""
    with warehouse.writer() as connection:
        flushed = connection.execute(f"CALL ducklake_flush_inlined_data('{LAKE}')").fetchall()
    assert flushed == [], f"rows were inlined: {flushed}"


def _writes(warehouse: Warehouse, ticks: int) -> dict[str, tuple[float, float]]:
    """The ticks, with a rebuild of their day after a third of them and maintenance and a
    flush after two thirds; returns when each of those ran."""
    windows = {}
    for index in range(ticks):
        report = ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=index)))
        assert len(report.stored) == WIDTH, report.as_dict()
        if index == ticks // 3:
            windows["rebuild"] = _timed(lambda: rebuild_day(warehouse, BASE_TIME.date()))
        if index == 2 * ticks // 3:
            windows["maintain"] = _timed(lambda: maintain(warehouse))
            windows["flush"] = _timed(lambda: _flush(warehouse))
    return windows


@sized(30, 300)
@pytest.mark.parametrize("deployment", ["local", "postgres-s3"])
def test_a_reader_attached_once_sees_whole_ticks_through_rebuild_and_maintenance(
    tmp_path: Path, request: pytest.FixtureRequest, deployment: str, size: int
) -> None:
    lake_env = _lake_env(deployment, request)
    home = tmp_path / "home"
    warehouse = Warehouse.open(config=LakeConfig.from_env(home, env=lake_env))
    warehouse.initialise()  # the reader only reads: the lake exists before it attaches
    stop = tmp_path / "stop"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TERMSTORE_")}
    reader = start_ready_child(
        "tests.reliability.reader_child",
        str(home),
        str(stop),
        str(WIDTH),
        env={**child_env, **lake_env},
    )
    try:
        windows = _writes(warehouse, size)
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err[-2000:]
    summary: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
    seen: list[dict[str, Any]] = summary["seen"]
    warehouse.close()

    assert summary["errors"] == [], summary["errors"][:5]
    assert len({row["snapshots"] for row in seen}) > size // 4, "the reader saw few of the ticks"
    for row in seen:
        assert row["partial_snapshots"] == 0 and row["partial_ticks"] == 0, row
        assert row["snapshots"] % WIDTH == 0, row
        assert row["stored_log_rows"] == row["snapshots"], row
    counts = [row["snapshots"] for row in seen]
    assert counts == sorted(counts), "a count went down"
    assert counts[-1] == size * WIDTH, "the last query (after every write) saw every tick"
    # A query's snapshot is fixed somewhere between its start and its end (under load it can wait
    # on the catalog for seconds), so "before" means it ended before, "after" that it started after.
    after_maintenance = [row for row in seen if row["at"] > windows["flush"][1]]
    before_maintenance = [row["snapshots"] for row in seen if row["ended"] < windows["maintain"][0]]
    assert after_maintenance and after_maintenance[-1]["snapshots"] > max(
        before_maintenance, default=0
    ), "the reader saw no tick stored after maintenance"
    during = {
        name: sum(1 for row in seen if row["at"] <= end and row["ended"] >= start)
        for name, (start, end) in windows.items()
    }
    assert sum(during.values()) > 0, f"no query overlapped a rebuild or maintenance: {windows}"
    print(f"{deployment}: {len(seen)} queries, overlapping {during}")
