"""Bulk ingest under SIGKILL: a child imports overlapping batches (with rebuilds in between)
and is killed at random instants. After each kill the catalog shows each key once
and every visible snapshot whole; importing everything once more leaves every body stored
exactly once, with exactly one ``stored`` ingest-log row per fetch.

The child is this module: ``python -m tests.storage.test_bulk_crash HOME SEED``.
"""

from __future__ import annotations

import random
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from storage.schemas import FetchMeta
from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, rebuild_day
from storage.bulk import FetchedBody, bulk_ingest
from tests.storage.helpers import (
    BASE_TIME,
    KEY_COLUMNS,
    duplicate_keys,
    outcome,
    partial_snapshots,
)
from tests.support.child_process import kill_after

KILLS = 10
MINUTES = range(0, 2 * 1440, 29)
"""Two days of keys (BASE_TIME is noon, so the second day is split between two UTC days)."""


def pool_body(symbol: str, minute: int) -> FetchedBody:
    """The one body (and fetch) of a key: every import and live tick of it is the same fetch."""
    result = outcome(symbol, BASE_TIME + timedelta(minutes=minute)).result
    assert result is not None
    fetch = FetchMeta(symbol, 200, result.started_at, result.finished_at, 1, result.headers)
    return FetchedBody(fetch, result.raw)


def child(home: str, seed: int) -> None:
    rng = random.Random(seed)
    warehouse = Warehouse.open(home, hot_grace=timedelta(0))
    print("ready", flush=True)
    while True:
        minutes = rng.sample(list(MINUTES), 25)
        bulk_ingest(warehouse, [pool_body(s, m) for m in minutes for s in SUPPORTED_SYMBOLS])
        if rng.random() < 0.3:
            rebuild_day(warehouse, BASE_TIME.date() + timedelta(days=rng.randrange(3)))


@pytest.mark.slow
def test_sigkill_during_bulk_imports_loses_and_doubles_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rng = random.Random(7)
    for kill in range(KILLS):
        kill_after("tests.storage.test_bulk_crash", rng.uniform(0.05, 1.5), str(home), str(kill))
        warehouse = Warehouse.open(home)
        assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0), f"after kill {kill}"
        assert partial_snapshots(warehouse) == [], f"after kill {kill}"
        warehouse.close()

    warehouse = Warehouse.open(home)
    bodies = [pool_body(symbol, minute) for minute in MINUTES for symbol in SUPPORTED_SYMBOLS]
    report = bulk_ingest(warehouse, bodies)
    assert report.count("quarantined") == 0
    stored = warehouse.sql("SELECT symbol, computed_at FROM snapshots")
    assert stored.height == len(bodies)
    expected = {(b.fetch.symbol, b.fetch.started_at - timedelta(seconds=5)) for b in bodies}
    assert set(stored.iter_rows()) == expected
    log = warehouse.sql("SELECT symbol, started_at, outcome FROM ingest_log")
    stored_rows = log.filter(outcome="stored").select("symbol", "started_at")
    assert set(stored_rows.iter_rows()) == {(b.fetch.symbol, b.fetch.started_at) for b in bodies}
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    assert partial_snapshots(warehouse) == []
    warehouse.close()


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]))
