"""A whole simulated day: does a tick cost the same at 23:59 as at 00:00, and what does
maintenance of a day cost?

- **Day over loopback** (goal: tick p50 < 100 ms in every hour, not growing): the simulator in
  this process on a loopback port, its clock moved a minute per tick from 00:00:05 of the corpus
  day; 1,440 ticks of ``ingest_once`` (4 concurrent HTTP fetches + store) into one default local
  lake, and ``storage.maintenance.maintain`` after every 60th tick, as the hourly schedule runs
  it (timed apart, not in any tick). Before the clock, each minute's bucket is fetched once so
  the simulator's market model is cached (its work, not termstore's), and the fetch alone is
  timed once more. Reported per hour of the day: tick p50/p95, the fetch alone, and the
  maintenance run that followed the hour. Time is compressed (a simulated
  minute lasts one tick), so maintenance's wall-clock waits (snapshot retention, the clean-up
  grace) never pass during the run: snapshots and merged-away files accumulate as they do
  within the first hour of retention.
- **Maintenance of a full day** (goal: < 10 s): the day corpus's 1,440 ticks landed as 1,440
  ``ingest_outcomes`` commits with no maintenance (outcomes built before the clock; the ticks'
  own p50 per hour is reported too), then one ``maintain()`` (merge each day's files, rewrite,
  expire, clean-up, orphans), and then the run a retention period later that expires the day's
  snapshots and deletes the merged-away files (``maintain(now=...)``).

The day over loopback runs once per lake setup (``--setups``, default the local lake and a
PostgreSQL catalog with local data, bench/lakes.py), to tell the catalog's share of any growth.

Run: ``.venv/bin/python -m bench.day_bench [--ticks 1440] [--maintain-every 60]
[--setups local,postgres_local_data]``; writes bench/results/day_bench.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backquant.client import fetch_all_sync
from backquant.symbols import SUPPORTED_SYMBOLS
from bench.common import load_average, progress, summarise, table_sizes, write_results
from bench.corpus import DAY, FETCH_OFFSET, day_corpus, tick_outcomes
from bench.lakes import LOCAL, POSTGRES_LOCAL_DATA, lake_config, running_services
from storage import Warehouse, ingest_once, ingest_outcomes
from storage.lake_config import LakeConfig
from storage.maintenance import CLEANUP_GRACE, MaintenanceReport, maintain
from tests.support.simulator import running_simulator

COMMAND = ".venv/bin/python -m bench.day_bench"
GOALS = {"tick_p50_ms_below_every_hour": 100, "maintenance_of_a_full_day_s_below": 10}
MIDNIGHT = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)


@dataclass
class DayRun:
    """What a day of ticks measured."""

    tick_seconds: list[float] = field(default_factory=list)
    fetch_seconds: list[float] = field(default_factory=list)
    maintenance: list[MaintenanceReport] = field(default_factory=list)


def by_hour(seconds: list[float], per_hour: int = 60) -> dict[str, dict[str, float]]:
    hours = (len(seconds) + per_hour - 1) // per_hour
    return {
        f"{hour:02d}:00": summarise(seconds[hour * per_hour : (hour + 1) * per_hour])
        for hour in range(hours)
    }


def flatness(hours: dict[str, dict[str, float]]) -> dict[str, float]:
    """How the hourly p50 moved: the first and last hour, the lowest and highest."""
    p50s = [hour["p50_ms"] for hour in hours.values()]
    return {
        "first_hour_p50_ms": p50s[0],
        "last_hour_p50_ms": p50s[-1],
        "lowest_hour_p50_ms": min(p50s),
        "highest_hour_p50_ms": max(p50s),
        "last_over_first": round(p50s[-1] / p50s[0], 3),
    }


def run_day_over_loopback(lake: LakeConfig, ticks: int, maintain_every: int) -> DayRun:
    """``ticks`` minutes of ``ingest_once`` from 00:00:05, ``maintain`` every
    ``maintain_every`` ticks."""
    warehouse = Warehouse.open(config=lake)
    warehouse.initialise()  # creating the lake is not a tick's cost
    run = DayRun()
    with (
        running_simulator(frozen_at=MIDNIGHT + FETCH_OFFSET, burst_limit_per_minute=10**9) as sim,
        progress() as bar,
    ):
        config = sim.client_config()
        task = bar.add_task("a day of ticks over loopback (ingest_once)", total=ticks)
        for minute in range(ticks):
            sim.clock.set(MIDNIGHT + timedelta(minutes=minute) + FETCH_OFFSET)
            fetch_all_sync(config)  # the simulator computes this minute's bucket
            began = time.perf_counter()
            fetch_all_sync(config)
            run.fetch_seconds.append(time.perf_counter() - began)
            began = time.perf_counter()
            report = ingest_once(warehouse, config)
            run.tick_seconds.append(time.perf_counter() - began)
            if len(report.stored) != len(SUPPORTED_SYMBOLS):
                raise RuntimeError(f"a tick did not store every symbol: {report.as_dict()}")
            if (minute + 1) % maintain_every == 0:
                run.maintenance.append(maintain(warehouse))
            bar.advance(task)
    warehouse.close()
    return run


def bench_day_over_loopback(lake: LakeConfig, ticks: int, maintain_every: int) -> dict[str, Any]:
    load_before = load_average()
    run = run_day_over_loopback(lake, ticks, maintain_every)
    warehouse = Warehouse.open(config=lake)
    with warehouse.writer() as connection:
        sizes = table_sizes(connection)
        row = connection.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()
    warehouse.close()
    hours = by_hour(run.tick_seconds)
    catalog = lake.catalog_file
    return {
        "ticks": len(run.tick_seconds),
        "all_ticks": summarise(run.tick_seconds),
        "by_hour_of_day": hours,
        "flatness": flatness(hours),
        "fetch_all_4_symbols_alone_p50_ms_by_hour": {
            hour: value["p50_ms"] for hour, value in by_hour(run.fetch_seconds).items()
        },
        "maintenance_each_hour": [
            {
                "seconds": round(report.seconds, 3),
                "files_before": report.files_before,
                "files_after": report.files_after,
            }
            for report in run.maintenance
        ],
        "maintenance_seconds": summarise([report.seconds for report in run.maintenance])
        if run.maintenance
        else None,
        "lake_at_end_of_day": sizes,
        "lake_snapshots_at_end_of_day": int(row[0]) if row else 0,
        "catalog_file_bytes": catalog.stat().st_size if catalog else None,
        "load_average_before_after": [load_before, load_average()],
    }


def land_ticks(home: Path, bodies: list[bytes], ticks: int) -> list[float]:
    """The first ``ticks`` ticks of ``bodies`` (tick-major) as individual commits, no
    maintenance."""
    prepared = tick_outcomes(bodies, ticks)
    warehouse = Warehouse.open(home)
    warehouse.initialise()
    seconds = []
    with progress() as bar:
        task = bar.add_task("a day of ticks as commits (ingest_outcomes)", total=len(prepared))
        for outcomes in prepared:
            began = time.perf_counter()
            report = ingest_outcomes(warehouse, outcomes)
            seconds.append(time.perf_counter() - began)
            if len(report.stored) != len(outcomes):
                raise RuntimeError(f"a tick did not store every symbol: {report.as_dict()}")
            bar.advance(task)
    warehouse.close()
    return seconds


def maintain_landed_day(home: Path) -> dict[str, Any]:
    """``maintain()`` of a lake of un-maintained ticks (a fresh handle, as the hourly job
    opens it), then the run a retention period later; with the rows before and after."""
    warehouse = Warehouse.open(home)
    with warehouse.writer() as connection:
        before = table_sizes(connection)
    began = time.perf_counter()
    first = maintain(warehouse)
    first_s = time.perf_counter() - began
    later = datetime.now(UTC) + timedelta(days=warehouse.config.retention_days) + CLEANUP_GRACE
    began = time.perf_counter()
    second = maintain(warehouse, now=later + timedelta(minutes=5))
    second_s = time.perf_counter() - began
    with warehouse.writer() as connection:
        after = table_sizes(connection)
    warehouse.close()
    return {
        "maintain_s": round(first_s, 3),
        "maintain": first.as_dict(),
        "a_retention_period_later_s": round(second_s, 3),
        "a_retention_period_later": second.as_dict(),
        "lake_before": before,
        "lake_after": after,
        "rows_unchanged": all(before[t]["rows"] == after[t]["rows"] for t in before),
        "local_data_files_on_disk_after": sum(1 for _ in (home / "data").rglob("*.parquet")),
    }


def bench_maintenance(home: Path, bodies: list[bytes], ticks: int) -> dict[str, Any]:
    load_before = load_average()
    seconds = land_ticks(home, bodies, ticks)
    hours = by_hour(seconds)
    return {
        "ticks_landed": len(seconds),
        "tick_without_maintenance_all": summarise(seconds),
        "tick_without_maintenance_by_hour": hours,
        "tick_without_maintenance_flatness": flatness(hours),
        **maintain_landed_day(home),
        "load_average_before_after": [load_before, load_average()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1440)
    parser.add_argument("--maintain-every", type=int, default=60)
    parser.add_argument("--setups", default=f"{LOCAL},{POSTGRES_LOCAL_DATA}")
    args = parser.parse_args()
    setups = tuple(args.setups.split(","))
    results: dict[str, Any] = {"day": DAY.isoformat()}
    with (
        tempfile.TemporaryDirectory(prefix="termstore-day-bench-") as temp,
        running_services(setups) as services,
    ):
        for setup in setups:
            lake = lake_config(setup, Path(temp) / setup, services, f"day-{setup}")
            key = "day_over_loopback" + ("" if setup == LOCAL else f"_{setup}")
            results[key] = bench_day_over_loopback(lake, args.ticks, args.maintain_every)
        bodies = day_corpus().bodies()
        maintenance = bench_maintenance(Path(temp) / "landed", bodies, args.ticks)
    results["maintenance_of_a_full_day"] = maintenance
    results["goals"] = GOALS
    command = f"{COMMAND} --ticks {args.ticks} --maintain-every {args.maintain_every}"
    target = write_results("day_bench", f"{command} --setups {args.setups}", results)
    print(target.read_text())


if __name__ == "__main__":
    main()
