"""Concurrency: readers hold the catalog open while ingest runs every second; overlapping ticks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import orjson

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_once, ingest_outcomes, rebuild_day, rebuild_dirty
from tests.reliability.sizes import sized
from tests.storage.helpers import BASE_TIME, KEY_COLUMNS, duplicate_keys, tick
from tests.support.child_process import start_ready_child
from tests.support.simulator import SIM_START, running_simulator

ROOT = Path(__file__).resolve().parents[2]
READERS = 2


@sized(4, 60)
def test_readers_keep_reading_while_ingest_runs_every_second(tmp_path: Path, size: int) -> None:
    home = tmp_path / "home"
    warehouse = Warehouse.open(home)  # default grace: files an older catalog lists stay a while
    held = warehouse.connect()  # opened before any tick: it must keep working on its snapshot
    readers = [
        start_ready_child("tests.storage.reader_child", str(home), str(size + 2.0))
        for _ in range(READERS)
    ]
    seen: list[int] = []
    with running_simulator(frozen_at=SIM_START, burst_limit_per_minute=10**6) as sim:
        config = sim.client_config()
        for second in range(size):
            began = time.monotonic()
            sim.clock.set(SIM_START + timedelta(minutes=second))
            report = ingest_once(warehouse, config)
            assert len(report.stored) == len(SUPPORTED_SYMBOLS), report.as_dict()
            if second == size // 2:
                # Swap the day to the cold tier under the readers' feet.
                rebuild_day(warehouse, SIM_START.date())
            seen.append(int(warehouse.sql("SELECT count(*) FROM snapshots").item()))
            assert held.execute("SELECT count(*) FROM expiries").fetchone() == (0,)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    held.close()
    for reader in readers:
        out, err = reader.communicate(timeout=60)
        summary = orjson.loads(out.strip().splitlines()[-1])
        assert summary["errors"] == [], (summary, err)
        assert summary["queries"] > size
        assert summary["max_seen"] <= size * len(SUPPORTED_SYMBOLS)
    # Visible right after each tick, until the day is cold: later ticks into a cold day wait for
    # the dirty-day rebuild (docs/warehouse.md, visibility rule), so nothing ever shows twice.
    cutoff = size // 2 + 1
    width = len(SUPPORTED_SYMBOLS)
    assert seen == [width * min(n + 1, cutoff) for n in range(size)]
    rebuilt = rebuild_dirty(warehouse).rebuilt
    assert sorted(rebuilt) == sorted((symbol, SIM_START.date()) for symbol in SUPPORTED_SYMBOLS)
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == size * width
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    warehouse.close()


@sized(4, 40)
def test_overlapping_ticks_store_each_response_once(tmp_path: Path, size: int) -> None:
    warehouse = Warehouse.open(tmp_path / "home")
    with ThreadPoolExecutor(max_workers=3) as pool:
        for minute in range(size):
            computed_at = BASE_TIME + timedelta(minutes=minute)
            # Three schedulers fire the same tick at once (a slow run overlapping the next one).
            reports = list(
                pool.map(
                    lambda offset, at=computed_at: ingest_outcomes(
                        warehouse,
                        tick(at, started_at=at + timedelta(seconds=5, milliseconds=offset)),
                    ),
                    range(3),
                )
            )
            assert sum(len(report.stored) for report in reports) == len(SUPPORTED_SYMBOLS)
            assert sum(report.duplicates_skipped for report in reports) == 2 * len(
                SUPPORTED_SYMBOLS
            )
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == size * len(SUPPORTED_SYMBOLS)
    outcomes = warehouse.sql("SELECT outcome, count(*) AS n FROM ingest_log GROUP BY outcome")
    assert dict(outcomes.iter_rows()) == {
        "stored": size * len(SUPPORTED_SYMBOLS),
        "duplicate": 2 * size * len(SUPPORTED_SYMBOLS),
    }
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    warehouse.close()


def test_overlapping_cli_ingests_in_separate_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_simulator(frozen_at=SIM_START, burst_limit_per_minute=10**6) as sim:
        env = {
            **os.environ,
            "BACKQUANT_API_KEY": sim.api_key,
            "BACKQUANT_BASE_URL": sim.base_url,
            "TERMSTORE_HOME": str(home),
        }
        command = [str(Path(sys.executable).parent / "termstore"), "ingest", "--once"]
        runs = [
            subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], results
    warehouse = Warehouse.open(home)
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == len(SUPPORTED_SYMBOLS)
    logged = dict(
        warehouse.sql("SELECT outcome, count(*) FROM ingest_log GROUP BY outcome").iter_rows()
    )
    assert logged == {"stored": len(SUPPORTED_SYMBOLS), "duplicate": 2 * len(SUPPORTED_SYMBOLS)}
    warehouse.close()
