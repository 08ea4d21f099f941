"""Research queries on the year corpus, against their naive twins, and the lake's bytes per row.

On the year lake (bench/corpus.py: 364 days × 4 symbols, each day one file per table after
maintenance, the hourly sample written for every day), through ``Warehouse.sql`` and the Python
API (storage.research.api) on one open handle:

- ``latest_term_structure`` on the open connection, and including the attach: a new
  ``Warehouse`` and its first query, in this process (extensions already mapped) and in a new
  Python process (timed inside it, from ``Warehouse.open`` to the rows; imports excluded);
- hourly 30-day constant maturity for a year (BTCUSDT; the four symbols; all 7 tenors);
- daily constant maturity for four symbols × the year (``api.daily_constant_maturity``: per day
  and tenor the OHLC of the CM ATM IV and the closing 25Δ wings, RR, BF and skew, over every
  snapshot), the daily 30-day series from the hourly sample, and a raw daily skew summary.

Queries with a naive twin (bench/queries.py: the same answer from raw ``expiries``, without the
hourly sample or the view's join) run it too: its time, and whether the rows are the same.
Bytes: each table's data files as the current snapshot references them, per row.

Run: ``.venv/bin/python -m bench.query_bench``; writes bench/results/query_bench.json.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from bench.common import (
    bytes_per_row,
    directory_bytes,
    load_average,
    repeat,
    summarise,
    table_sizes,
    timed,
    write_results,
)
from bench.corpus import YearCorpus, year_corpus
from bench.queries import BenchQuery, Window, bench_queries, same_rows
from storage import Warehouse

COMMAND = ".venv/bin/python -m bench.query_bench"
GOALS: Final = {
    "latest_term_structure_open_connection_ms_below": 30,
    "latest_term_structure_including_attach_ms_below": 100,
    "hourly_cm_30d_btc_year_ms_below": 300,
    "daily_cm_4_symbols_year_ms_below": 250,
}
RUNS: Final = {"latest_term_structure": 50}
DEFAULT_RUNS: Final = 7
SLOW_RUNS: Final = 3
SLOW_S: Final = 2.0
"""A query whose first run takes longer than this is repeated ``SLOW_RUNS`` times, and one
that takes longer than ``VERY_SLOW_S`` once more."""
VERY_SLOW_S: Final = 20.0
NAIVE_RUNS: Final = 2
LATEST: Final = "SELECT * FROM latest_term_structure"
CHILD: Final = """
import sys, time
from storage import Warehouse
began = time.perf_counter()
warehouse = Warehouse.open(sys.argv[1])
rows = warehouse.sql("SELECT * FROM latest_term_structure").height
print(time.perf_counter() - began, rows)
warehouse.close()
"""


def year_window(year: YearCorpus) -> Window:
    start = datetime.combine(year.first_day, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(year.real_days[-1], datetime.min.time(), tzinfo=UTC)
    return Window(start, end + timedelta(days=1))


def time_query(
    warehouse: Warehouse, name: str, query: BenchQuery, runs: int | None = None
) -> dict[str, Any]:
    """``query`` timed (``runs`` times; default by name and by how slow its first run was),
    and its naive twin, with whether they agree."""
    frame, first = timed(lambda: query.run(warehouse))
    if runs is None:
        slow = 1 if first > VERY_SLOW_S else SLOW_RUNS if first > SLOW_S else DEFAULT_RUNS
        runs = RUNS.get(name, slow)
    result: dict[str, Any] = {
        **repeat(lambda: query.run(warehouse), runs, warmup=0),
        "first_run_ms": round(first * 1000, 3),
        "rows": frame.height,
        "what": query.what,
    }
    if query.naive is not None:
        naive = query.naive
        naive_frame, naive_first = timed(lambda: naive(warehouse))
        more = [timed(lambda: naive(warehouse))[1] for _ in range(min(runs, NAIVE_RUNS) - 1)]
        result["naive"] = summarise([naive_first, *more])
        result["naive_over_ours_p50"] = round(result["naive"]["p50_ms"] / result["p50_ms"], 1)
        result["same_rows_as_naive"] = same_rows(frame, naive_frame)
    return result


def latest_with_attach(home: Path, runs: int = 20) -> dict[str, float]:
    """A new ``Warehouse`` and its first query, each time (this process)."""

    def once() -> None:
        warehouse = Warehouse.open(home)
        warehouse.sql(LATEST)
        warehouse.close()

    return repeat(once, runs)


def latest_in_new_process(home: Path, runs: int = 5) -> dict[str, Any]:
    """The same in a new Python process each time, timed inside it (imports excluded)."""
    seconds = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(home)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        seconds.append(float(done.stdout.split()[0]))
    return summarise(seconds)


def bench_year(
    year: YearCorpus,
    attach_runs: int = 20,
    process_runs: int = 5,
    runs: int | None = None,
) -> dict[str, Any]:
    """Every query of bench/queries.py on the year, the latest with its attach, the bytes."""
    window = year_window(year)
    load_before = load_average()
    warehouse = Warehouse.open(year.home)
    warehouse.sql("SELECT 1")  # attached once; every figure below is on the open handle
    results: dict[str, Any] = {
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()}
    }
    for name, query in bench_queries(window).items():
        results[name] = time_query(warehouse, name, query, runs)
        print(f"{name}: p50 {results[name]['p50_ms']} ms", flush=True)
    results["latest_term_structure_new_warehouse_and_first_query"] = latest_with_attach(
        year.home, attach_runs
    )
    results["latest_term_structure_new_process_open_and_first_query"] = latest_in_new_process(
        year.home, process_runs
    )
    connection = warehouse.connect()
    try:
        sizes = table_sizes(connection)
        row = connection.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()
    finally:
        connection.close()
    warehouse.close()
    results["lake_tables"] = sizes
    results["bytes"] = bytes_per_row(sizes)
    results["lake_snapshots"] = int(row[0]) if row else 0
    results["home_bytes_on_disk"] = directory_bytes(year.home)
    results["load_average_before_after"] = [load_before, load_average()]
    return results


def main() -> None:
    began = time.perf_counter()
    year = year_corpus()
    build_s = time.perf_counter() - began
    results = {
        "corpus": {
            "days": year.days,
            "real_days": [str(day) for day in year.real_days],
            "cloned_days": year.cloned_days,
            "rows": year.manifest["rows"],
            "build": year.manifest["build"],
            "built_at": year.manifest["built_at"],
            "opened_or_built_in_this_run_s": round(build_s, 1),
            "note": f"{len(year.real_days)} real days through bulk_ingest + {year.cloned_days} "
            "cloned days of snapshots, expiries, venue_oi and hourly_sample (responses, "
            "ingest_log and quarantine hold the real days only); bench/corpus.py",
        },
        "year": bench_year(year),
        "goals": GOALS,
    }
    path = write_results("query_bench", COMMAND, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
