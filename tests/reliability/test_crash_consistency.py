"""Crash consistency: SIGKILL a writer at random instants across ingest, rebuild and compaction.

After every kill the catalog must open, every listed file must read completely, no key may show
twice and no snapshot may be partial (its expiry rows all there, no orphan rows). Half the
writers run with worker processes, none of which may outlive its killed writer. At the end,
after one more tick (it completes a tick killed before its commit), a rebuild of every day must
equal a clean run over the same archived responses, and each archived response must have exactly
one ``stored`` ingest-log row.
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from pathlib import Path

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_outcomes, rebuild_range
from tests.reliability.crash_worker import DAYS
from tests.reliability.sizes import sized
from tests.storage.helpers import (
    BASE_TIME,
    KEY_COLUMNS,
    duplicate_keys,
    partial_snapshots,
    table,
    tick,
)
from tests.support.child_process import kill_after, process_exited

SUMMARY = ("snapshots", "expiries", "venue_oi")


def _where(home: Path) -> str:
    """Which tiers hold what, to tell a storage bug from a test bug when the check fails."""
    state = (home / "state" / "tiers.json").read_text()
    hot = sorted(str(p.relative_to(home)) for p in (home / "hot").rglob("*.parquet"))
    return f"state={state[:600]} hot_files={len(hot)}"


def _archive_days(warehouse: Warehouse) -> list[date]:
    return sorted({day for symbol in SUPPORTED_SYMBOLS for day in warehouse.archive.days(symbol)})


def _clean_run(crashed: Warehouse, home: Path) -> Warehouse:
    """A fresh warehouse built from the crashed one's archived responses by a plain rebuild."""
    clean = Warehouse.open(home)
    for symbol in SUPPORTED_SYMBOLS:
        for day in crashed.archive.days(symbol):
            for record in crashed.archive.read_day(symbol, day):
                clean.archive.write(record)
    days = _archive_days(clean)
    rebuild_range(clean, days[0], days[-1])
    return clean


@sized(6, 50)
def test_sigkill_across_ingest_rebuild_and_compaction(tmp_path: Path, size: int) -> None:
    home = tmp_path / "home"
    rng = random.Random(7_000 + size)
    for kill in range(size):
        kill_after("tests.reliability.crash_worker", rng.uniform(0.05, 1.2), str(home), str(kill))

        warehouse = Warehouse.open(home)
        for name in KEY_COLUMNS:
            warehouse.sql(f"SELECT * FROM {name}")  # reads every listed file completely
        assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0), f"kill {kill}"
        assert partial_snapshots(warehouse) == [], f"kill {kill}: {_where(home)}"
        warehouse.close()
    lists = tmp_path.glob("children-*")
    children = [int(pid) for path in lists for pid in path.read_text().split()]
    assert children, "no writer ran with worker processes"
    deadline = time.monotonic() + 30
    while not all(map(process_exited, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in children if not process_exited(pid)] == []

    crashed = Warehouse.open(home)
    # The next tick completes a tick killed between its archive writes and its commit.
    final_tick = BASE_TIME + timedelta(days=DAYS)
    ingest_outcomes(crashed, tick(final_tick, started_at=final_tick + timedelta(seconds=5)))
    days = _archive_days(crashed)
    assert days, "the workers archived nothing; the kill window is too short"
    rebuild_range(crashed, days[0], days[-1])
    clean = _clean_run(crashed, tmp_path / "clean")
    for name in SUMMARY:
        after_crashes = table(crashed, name)
        assert after_crashes.height > 0
        assert after_crashes.equals(table(clean, name)), f"{name} differs from a clean run"
    assert crashed.sql("SELECT count(*) FROM snapshots").item() == sum(
        len(crashed.archive.read_day(s, d)) for s in SUPPORTED_SYMBOLS for d in days
    )
    assert not crashed.sql("SELECT * FROM ingest_log WHERE outcome = 'storage_error'").height
    # Every archived response has exactly one `stored` log row: the attempt that stored it.
    stored = crashed.sql(
        "SELECT symbol, computed_at, count(*) AS rows FROM ingest_log "
        "WHERE outcome = 'stored' GROUP BY symbol, computed_at"
    )
    assert stored["rows"].max() == 1
    assert set(stored.select("symbol", "computed_at").iter_rows()) == {
        (record.symbol, record.computed_at)
        for s in SUPPORTED_SYMBOLS
        for d in days
        for record in crashed.archive.read_day(s, d)
    }
    crashed.close()
    clean.close()
