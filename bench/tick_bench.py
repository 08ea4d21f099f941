"""One tick in process over loopback, a symbol-day rebuild, and bytes on disk per row and response.

- Tick: the simulator on a loopback port (same process, its own thread), clock moved one minute
  per tick; ``ingest_once`` = 4 concurrent HTTP fetches + validation + archive + hot files +
  catalog refresh. Also the fetch alone (``fetch_all_sync``) to split the cost.
- Rebuild: ``rebuild_day`` of one real symbol-day of the year corpus (1,440 responses), with the
  year's catalog refreshed at the end, as the nightly job does it.
- Rebuild range: ``rebuild_range`` of the year's last 2 and 4 real days (all symbols) in one
  process, with a worker process per CPU started by the call, and with those workers already
  running, rounds interleaved: where starting workers pays
  (``storage.day_jobs.PARALLEL_MIN_RESPONSES``) and what running ones save.
- Bytes: cold-tier bytes per expiry row (all three summary tables, and expiries alone) and
  archive bytes per response (packed day files, and loose ``.rec.gz`` records from the ticks).

Run: ``.venv/bin/python -m bench.tick_bench [--ticks 120]``; writes bench/results/tick_bench.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import wait
from datetime import timedelta
from pathlib import Path
from typing import Any

from backquant.client import fetch_all_sync
from backquant.symbols import SUPPORTED_SYMBOLS
from bench.common import directory_bytes, repeat, summarise, tracked, write_results
from bench.corpus import YearCorpus, year_corpus
from storage import Warehouse, ingest_once, rebuild_day, rebuild_range
from storage.catalog import cold_file
from storage.layout import SUMMARY_TABLES, Layout
from storage.state import load_state
from storage.workers import start_workers, stop_workers
from tests.support.simulator import SIM_START, running_simulator

COMMAND = ".venv/bin/python -m bench.tick_bench"


def bench_ticks(ticks: int, root: Path) -> dict[str, Any]:
    warehouse = Warehouse.open(root / "ticks")
    tick_seconds: list[float] = []
    fetch_seconds: list[float] = []
    with running_simulator(frozen_at=SIM_START, burst_limit_per_minute=10**9) as sim:
        config = sim.client_config()
        for minute in tracked(range(ticks), "ticks over loopback", ticks):
            sim.clock.set(SIM_START + timedelta(minutes=minute, seconds=20))
            began = time.perf_counter()
            fetch_all_sync(config)
            fetch_seconds.append(time.perf_counter() - began)
            sim.clock.set(SIM_START + timedelta(minutes=minute))
            began = time.perf_counter()
            report = ingest_once(warehouse, config)
            tick_seconds.append(time.perf_counter() - began)
            if len(report.stored) != len(SUPPORTED_SYMBOLS):
                raise RuntimeError(f"a tick did not store every symbol: {report.as_dict()}")
    archive = warehouse.home / "archive"
    records = list(archive.rglob("*.rec.gz"))
    warehouse.close()
    return {
        "ingest_once_4_symbols": summarise(tick_seconds),
        "fetch_all_4_symbols_only": summarise(fetch_seconds),
        "note": "each minute the fetch-only run comes first and pays the simulator computing the "
        "bucket; ingest_once then gets the cached bucket (same 30 s bucket, 20 s earlier)",
        "loose_archive_bytes_per_response": round(
            sum(p.stat().st_size for p in records) / len(records), 1
        ),
    }


def bench_rebuild(year: YearCorpus) -> dict[str, Any]:
    warehouse = Warehouse.open(year.home)
    day = year.real_days[-1]
    results = {
        "day": str(day),
        "symbol": "BTCUSDT",
        "rebuild_day_one_symbol_with_year_catalog": repeat(
            lambda: rebuild_day(warehouse, day, ["BTCUSDT"]), 3, warmup=0
        ),
        "responses": len(warehouse.archive.read_day("BTCUSDT", day)),
    }
    warehouse.close()
    return results


REBUILD_SETUPS: dict[str, int] = {
    "one_process": 1,
    "worker_per_cpu_starting": os.cpu_count() or 1,
    "worker_per_cpu_running": os.cpu_count() or 1,
}
"""``rebuild_range`` setups: this process alone; with worker processes started by the call
(a fresh process); with workers already running (a long-lived process, storage/workers.py)."""


def bench_rebuild_range(year: YearCorpus, rounds: int = 2) -> dict[str, Any]:
    warehouse = Warehouse.open(year.home)
    results: dict[str, Any] = {}
    for days in (2, 4):
        chosen = year.real_days[-days:]
        seconds: dict[str, list[float]] = {name: [] for name in REBUILD_SETUPS}
        for _ in range(rounds):
            for name, workers in REBUILD_SETUPS.items():
                if name == "worker_per_cpu_starting":
                    stop_workers()
                elif name == "worker_per_cpu_running":
                    wait(start_workers().started)
                started = time.perf_counter()
                rebuild_range(warehouse, chosen[0], chosen[-1], workers=workers)
                seconds[name].append(round(time.perf_counter() - started, 3))
        responses = sum(
            len(warehouse.archive.read_day(symbol, day))
            for symbol in SUPPORTED_SYMBOLS
            for day in chosen
        )
        results[f"{days}_days"] = {"responses": responses, "seconds_each_round": seconds}
    warehouse.close()
    return results


def bytes_on_disk(year: YearCorpus) -> dict[str, Any]:
    layout = Layout(year.home)
    warehouse = Warehouse.open(year.home)
    real = {str(day) for day in year.real_days}
    rows = warehouse.sql(
        "SELECT count(*) FROM expiries WHERE CAST(computed_at AS DATE) IN "
        f"({', '.join(repr(day) for day in sorted(real))})"
    ).item()
    warehouse.close()
    state = load_state(layout)
    table_bytes = {
        table: sum(
            cold_file(layout, state, table, symbol, day).stat().st_size
            for symbol in SUPPORTED_SYMBOLS
            for day in year.real_days
        )
        for table in SUMMARY_TABLES
    }
    packs = [
        layout.archive_pack(symbol, day) for symbol in SUPPORTED_SYMBOLS for day in year.real_days
    ]
    responses = len(packs) * 1440
    return {
        "real_days": len(year.real_days),
        "expiry_rows": rows,
        "cold_bytes_per_expiry_row_all_summary_tables": round(sum(table_bytes.values()) / rows, 2),
        "cold_bytes_per_expiry_row_expiries_table": round(table_bytes["expiries"] / rows, 2),
        "cold_bytes_by_table": table_bytes,
        "packed_archive_bytes_per_response": round(
            sum(p.stat().st_size for p in packs) / responses, 1
        ),
        "year_home_bytes": directory_bytes(year.home),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=120)
    args = parser.parse_args()
    year = year_corpus()
    with tempfile.TemporaryDirectory(prefix="termstore-tick-bench-") as temp:
        ticks = bench_ticks(args.ticks, Path(temp))
    results = {
        "tick_over_loopback": ticks,
        "rebuild_symbol_day": bench_rebuild(year),
        "rebuild_range": bench_rebuild_range(year),
        "bytes": bytes_on_disk(year),
    }
    path = write_results("tick_bench", COMMAND, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
