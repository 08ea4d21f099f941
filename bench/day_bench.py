"""A whole day of live ticks: does a tick cost the same at 23:59 as at 00:00?

Every one of the day corpus's 1,440 ticks (4 symbols each) goes through ``ingest_outcomes`` into
one warehouse, exactly as the minutely schedule would: archive, hot files, ingest log, hourly
roll-up, catalog refresh, clean-up. Outcomes (JSON parse + contract validation, the client's
work) are built before the clock starts. Reported per hour of the day: p50/p95 of the tick, plus
the hot files the catalog lists at the end of the day.

Time is compressed: a simulated minute lasts one tick (~0.1 s), but the hot grace that lets
superseded files go is wall-clock time. Left at its default (1 h) nothing would ever be deleted
during the run, which never happens live; so ``--grace-s`` (default 6 s, about 60 ticks, the
default hour in simulated time) stands in for it.

Run: ``.venv/bin/python -m bench.day_bench [--ticks 1440] [--grace-s 6]``; writes
bench/results/day_bench.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backquant.client import FetchOutcome, FetchResult
from backquant.headers import ResponseHeaders
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary
from bench.common import progress, summarise, write_results
from bench.corpus import DAY, FETCH_OFFSET, day_corpus
from storage import Warehouse, ingest_outcomes
from storage.catalog import hot_files
from storage.layout import TABLES
from storage.state import load_state

HEADERS = ResponseHeaders(ratelimit_limit=60, ratelimit_remaining=59, request_id="req_bench")


def _outcome(symbol: str, started_at: datetime, raw: bytes) -> FetchOutcome:
    finished = started_at + timedelta(milliseconds=180)
    result = FetchResult(
        symbol, parse_expiry_summary(raw), raw, 200, HEADERS, started_at, finished, 1
    )
    return FetchOutcome(symbol, started_at, finished, result=result)


def prepared_ticks(ticks: int) -> list[dict[str, FetchOutcome]]:
    """The corpus is tick-major: 4 consecutive bodies per minute, in SUPPORTED_SYMBOLS order."""
    bodies = day_corpus().bodies()
    width = len(SUPPORTED_SYMBOLS)
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    prepared = []
    for minute in range(ticks):
        started_at = midnight + timedelta(minutes=minute) + FETCH_OFFSET
        chunk = bodies[minute * width : (minute + 1) * width]
        prepared.append(
            {
                symbol: _outcome(symbol, started_at, raw)
                for symbol, raw in zip(SUPPORTED_SYMBOLS, chunk, strict=True)
            }
        )
    return prepared


def run_day(home: Path, ticks: int, grace_s: float) -> dict[str, Any]:
    prepared = prepared_ticks(ticks)
    warehouse = Warehouse.open(home, hot_grace=timedelta(seconds=grace_s))
    seconds: list[float] = []
    rolled = 0
    load_before = round(os.getloadavg()[0], 2)
    with progress() as bar:
        task = bar.add_task("a day of ticks through ingest_outcomes", total=len(prepared))
        for outcomes in prepared:
            begin = time.perf_counter()
            report = ingest_outcomes(warehouse, outcomes)
            seconds.append(time.perf_counter() - begin)
            if len(report.stored) != len(SUPPORTED_SYMBOLS) or report.rollup_error:
                raise RuntimeError(f"a tick did not store every symbol: {report.as_dict()}")
            rolled += report.hours_rolled
            bar.advance(task)
    state = load_state(warehouse.layout)
    listed = {table: len(hot_files(warehouse.layout, state, table)) for table in TABLES}
    rows = warehouse.sql("SELECT count(*) FROM expiries").item()
    warehouse.close()
    by_hour = {
        f"{hour:02d}:00": summarise(seconds[hour * 60 : (hour + 1) * 60])
        for hour in range(0, (len(seconds) + 59) // 60)
    }
    return {
        "ticks": len(seconds),
        "all_ticks": summarise(seconds),
        "first_60_ticks": summarise(seconds[:60]),
        "last_60_ticks": summarise(seconds[-60:]),
        "by_hour_of_day": by_hour,
        "hours_rolled": rolled,
        "hot_files_listed_at_end_of_day": listed,
        "expiry_rows_visible": rows,
        "catalog_bytes": (home / "warehouse.duckdb").stat().st_size,
        "load_average_before_after": [load_before, round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1440)
    parser.add_argument("--grace-s", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="termstore-day-bench-") as temp:
        home = Path(temp) / "home"
        results = {
            "day": DAY.isoformat(),
            "hot_grace_s": args.grace_s,
            **run_day(home, args.ticks, args.grace_s),
        }
    command = f".venv/bin/python -m bench.day_bench --ticks {args.ticks} --grace-s {args.grace_s}"
    target = write_results("day_bench", command, results)
    print(target.read_text())


if __name__ == "__main__":
    main()
