"""Research queries on the year corpus, and termstore's catalog vs a naive glob over tick files.

1. On the year (bench.corpus.year_corpus): latest term structure, the hourly 30-day
   constant-maturity series over the year (``constant_maturity_hourly``, with the hourly tier
   materialised first, as the ``research_daily`` asset keeps it), the cruder hourly ATM of the
   expiry nearest 30 days from raw rows, daily skew summary, full-scan aggregate, through
   ``Warehouse.sql`` (reused handle) and a fresh ``Warehouse.connect()`` per latest query.
2. Catalog vs naive on the same rows: the last 7 real days of the corpus (40,320 responses) as
   a warehouse home of their own, and as what a quick script writes: one Parquet file of expiry
   rows per symbol per tick, queried with ``read_parquet('<dir>/*/*.parquet')``. A naive layout
   for the whole year would be 2.1 M files; it is not built.

Run: ``.venv/bin/python -m bench.query_bench``; writes bench/results/query_bench.json.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from backquant.symbols import SUPPORTED_SYMBOLS
from bench.common import repeat, tracked, write_results
from bench.corpus import YearCorpus, year_corpus
from bench.queries import naive_latest, queries
from storage import Warehouse, refresh_catalog
from storage.catalog import cold_file
from storage.layout import TABLES, Layout, key_stamp
from storage.research.hourly_tier import materialise_months, months_of
from storage.state import TierState, load_state, save_state

COMMAND = ".venv/bin/python -m bench.query_bench"
RUNS = {"latest_term_structure": 50}
DEFAULT_RUNS = 5
NAIVE_RUNS = 2
NAIVE_DAYS = 7
"""Days of the naive one-file-per-tick layout (40,320 files); the whole year would be 2.1 M."""
COMMITTED_AT = datetime(2026, 3, 2, tzinfo=UTC)
"""A fixed commit time for the linked days (it only matters for hot-file expiry)."""


def _home_of_days(year: YearCorpus, days: list[date], target: Path) -> Warehouse:
    """A warehouse home listing only ``days``, with hard links to the year's cold files."""
    source = Layout(year.home)
    source_state = load_state(source)
    layout = Layout(target)
    state = TierState()
    for symbol in SUPPORTED_SYMBOLS:
        for day in days:
            for table in TABLES:
                destination = layout.cold_file(table, symbol, day)
                if not destination.exists():
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    os.link(cold_file(source, source_state, table, symbol, day), destination)
            state.mark_cold(symbol, day, COMMITTED_AT)
    warehouse = Warehouse.open(target)
    for symbol in SUPPORTED_SYMBOLS:
        for latest in source.latest_dir(symbol).glob("*.parquet"):
            destination = layout.latest_dir(symbol) / latest.name
            if not destination.exists():
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.link(latest, destination)
    save_state(layout, state)
    refresh_catalog(layout, state)
    return warehouse


def _naive_layout(year: YearCorpus, days: list[date], root: Path) -> tuple[Path, int]:
    """One Parquet file of expiry rows per symbol per tick (built once, cached)."""
    marker = root / "done.json"
    if marker.exists():
        return root, int(orjson.loads(marker.read_bytes())["files"])
    layout = Layout(year.home)
    state = load_state(layout)
    files = 0
    pairs = [(symbol, day) for symbol in SUPPORTED_SYMBOLS for day in days]
    for symbol, day in tracked(pairs, "naive layout: one file per tick", len(pairs)):
        frame = pl.read_parquet(cold_file(layout, state, "expiries", symbol, day))
        directory = root / symbol
        directory.mkdir(parents=True, exist_ok=True)
        for part in frame.partition_by("computed_at", maintain_order=True):
            part.write_parquet(directory / f"{key_stamp(part.item(0, 'computed_at'))}.parquet")
            files += 1
    marker.write_bytes(orjson.dumps({"files": files}))
    return root, files


def bench_year(year: YearCorpus) -> dict[str, Any]:
    warehouse = Warehouse.open(year.home)
    days = sorted(load_state(warehouse.layout).of(SUPPORTED_SYMBOLS[0]).cold_days)
    began = time.perf_counter()
    written = materialise_months(warehouse, months_of(days[0], days[-1]))
    materialise_s = time.perf_counter() - began
    sql = queries("expiries", "latest_term_structure", "constant_maturity_hourly")
    results: dict[str, Any] = {
        "hourly_tier": {"symbol_months": len(written), "materialise_s": round(materialise_s, 2)}
    }
    for name, statement in sql.items():
        began = time.perf_counter()
        rows = warehouse.sql(statement).height
        first = time.perf_counter() - began
        runs = RUNS.get(name, DEFAULT_RUNS)
        results[name] = {
            **repeat(partial(warehouse.sql, statement), runs, warmup=0),
            "first_run_ms": round(first * 1000, 3),
            "rows": rows,
        }

    def latest_fresh_connection() -> None:
        connection = warehouse.connect()
        connection.execute(sql["latest_term_structure"]).fetchall()
        connection.close()

    results["latest_term_structure_new_connection_each_time"] = repeat(latest_fresh_connection, 30)
    warehouse.close()
    return results


def _fetch_all(connection: duckdb.DuckDBPyConnection, statement: str) -> None:
    connection.execute(statement).fetchall()


def bench_naive_vs_catalog(year: YearCorpus) -> dict[str, Any]:
    # Beside the year's home, so a rebuilt year rebuilds these too.
    root = year.home.parent / "week"
    days = list(year.real_days[-NAIVE_DAYS:])
    week = _home_of_days(year, days, root / "home")
    materialise_months(week, months_of(days[0], days[-1]))
    naive_dir, files = _naive_layout(year, days, root / "naive")
    glob_read = f"read_parquet('{naive_dir}/*/*.parquet')"
    catalog_sql = queries("expiries", "latest_term_structure")
    naive_sql = queries(glob_read, naive_latest(glob_read))
    naive = duckdb.connect(":memory:")
    naive.execute("SET TimeZone = 'UTC'")
    comparison: dict[str, Any] = {"naive_files": files, "days": [str(day) for day in days]}
    for name in catalog_sql:
        catalog_rows = week.sql(catalog_sql[name])
        catalog = repeat(partial(week.sql, catalog_sql[name]), DEFAULT_RUNS, warmup=0)
        naive_rows = naive.sql(naive_sql[name]).pl()
        slow = repeat(partial(_fetch_all, naive, naive_sql[name]), NAIVE_RUNS, warmup=0)
        comparison[name] = {
            "catalog": catalog,
            "naive_glob": slow,
            "speedup_p50": round(slow["p50_ms"] / catalog["p50_ms"], 1),
            "same_row_count": catalog_rows.height == naive_rows.height,
            "rows": catalog_rows.height,
        }
    naive.close()
    week.close()
    return comparison


def main() -> None:
    year = year_corpus()
    results = {
        "corpus": {
            "days": year.days,
            "real_days": [str(day) for day in year.real_days],
            "cloned_days": year.cloned_days,
            "rows": year.manifest["rows"],
            "note": f"{len(year.real_days)} real days through the real write path + "
            f"{year.cloned_days} cloned days (bench/corpus.py)",
        },
        "year_catalog": bench_year(year),
        "catalog_vs_naive_on_last_7_days": bench_naive_vs_catalog(year),
        "goals": {
            "latest_ms_below": 50,
            "hourly_30d_year_ms_below": 1000,
            "catalog_vs_naive_at_least": 50,
        },
        "hourly_30d_series": "hourly_cm_30d_year: interpolated constant maturity (research layer)",
    }
    path = write_results("query_bench", COMMAND, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
