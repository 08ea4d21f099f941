"""Crash safety: SIGKILL a writer inside ticks, day rebuilds, bulk imports and maintenance.

The writer (tests/reliability/crash_worker.py) is killed at a random point of the operation the
test aims at, in turn each of the four. After every kill the lake must open, show every
archived response exactly once and with its snapshot, no snapshot with missing expiry rows, and
take the next write (a tick). At the end, a rebuild of every day must give exactly the
rows a fresh lake makes of the same archived bodies in one import, and every archived response
must have exactly one ``stored`` ingest-log row.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_outcomes, rebuild_range
from storage.archive import read_day
from storage.bulk import FetchedBody, bulk_ingest
from tests.reliability.crash_worker import OPERATIONS
from tests.reliability.sizes import sized
from tests.storage.helpers import (
    BASE_TIME,
    KEY_COLUMNS,
    duplicate_keys,
    open_local,
    partial_snapshots,
    table,
    tick,
)
from tests.support.child_process import read_until, sigkill, start_ready_child

SUMMARY = ("snapshots", "expiries", "venue_oi")
FIRST_GUESS_S = 0.1
"""How long an operation takes, until a worker has reported one of its kind finished."""
TEST_TICKS = BASE_TIME - timedelta(days=1)
"""The test's own ticks (the write after each kill) go the day before the worker's keys."""


def _kill_during(
    home: Path, seed: int, focus: str, nth: int, fraction: float, took: dict[str, float]
) -> str | None:
    """Start a worker and SIGKILL it ``fraction`` of the way into its ``nth`` ``focus``
    operation (judged by how long the last one took, kept in ``took``); returns the operation
    the kill interrupted (None when it fell between two)."""
    child = start_ready_child("tests.reliability.crash_worker", str(home), str(seed), focus)
    lines: list[str] = []
    for _ in range(nth):
        lines += read_until(child, f"begin {focus}")
    time.sleep(fraction * took.get(focus, FIRST_GUESS_S))
    out, _ = sigkill(child)
    lines += [line.strip() for line in out.splitlines()]
    started = [line.split()[1] for line in lines if line.startswith("begin ")]
    ended = [line.split() for line in lines if line.startswith("end ")]
    took.update({name: float(seconds) for _, name, seconds in ended})
    return started[-1] if len(started) > len(ended) else None


def _keys(warehouse: Warehouse, name: str) -> set[tuple[str, datetime]]:
    return set(warehouse.sql(f"SELECT symbol, computed_at FROM {name}").iter_rows())


def _check_after_kill(home: Path, kill: int) -> None:
    with open_local(home) as warehouse:
        assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0), f"kill {kill}"
        archived = warehouse.sql("SELECT symbol, computed_at FROM responses")
        assert archived.height == archived.unique().height, f"kill {kill}: a response twice"
        assert _keys(warehouse, "snapshots") == _keys(warehouse, "responses"), f"kill {kill}"
        assert partial_snapshots(warehouse) == [], f"kill {kill}"
        at = TEST_TICKS + timedelta(minutes=kill)
        report = ingest_outcomes(warehouse, tick(at, started_at=at + timedelta(seconds=5)))
        assert len(report.stored) == len(SUPPORTED_SYMBOLS), f"kill {kill}: {report.as_dict()}"


def _archived_bodies(warehouse: Warehouse, days: list[date]) -> list[FetchedBody]:
    connection = warehouse.connect()
    try:
        return [
            FetchedBody(record.fetch, record.raw)
            for day in days
            for records in read_day(connection, day, SUPPORTED_SYMBOLS).values()
            for record in records
        ]
    finally:
        connection.close()


@sized(20, 50)
def test_sigkill_during_ticks_rebuilds_imports_and_maintenance(tmp_path: Path, size: int) -> None:
    home = tmp_path / "home"
    rng = random.Random(size)
    interrupted: Counter[str | None] = Counter()
    took: dict[str, float] = {}
    for kill in range(size):
        focus = OPERATIONS[kill % len(OPERATIONS)]
        # Operations before the killed one commit: the lake grows from kill to kill.
        nth = rng.randint(1, 2)
        interrupted[_kill_during(home, kill, focus, nth, rng.uniform(0, 0.9), took)] += 1
        _check_after_kill(home, kill)
    # Every kind of operation was cut off part-way at least once, not only between operations.
    assert set(OPERATIONS) <= set(interrupted), interrupted

    with open_local(home) as crashed:
        days = crashed.sql(
            "SELECT DISTINCT CAST(computed_at AS DATE) AS day FROM responses ORDER BY day"
        )["day"].to_list()
        assert len(days) > 2, "the workers archived too little to cross days"
        rebuild_range(crashed, days[0], days[-1])
        bodies = _archived_bodies(crashed, days)
        with open_local(tmp_path / "clean") as clean:
            report = bulk_ingest(clean, bodies)
            assert report.count("stored") == len(bodies)
            for name in SUMMARY:
                after_crashes = table(crashed, name)
                assert after_crashes.height > 0
                assert after_crashes.equals(table(clean, name)), f"{name} differs from a clean run"
        # Exactly one `stored` log row per archived response: the attempt that stored it.
        stored = crashed.sql(
            "SELECT symbol, computed_at, count(*) AS n FROM ingest_log "
            "WHERE outcome = 'stored' GROUP BY symbol, computed_at"
        )
        assert stored["n"].max() == 1
        assert set(stored.select("symbol", "computed_at").iter_rows()) == _keys(
            crashed, "responses"
        )
    print(f"kills {size}, interrupted operations {dict(interrupted)}, {len(bodies)} responses")
