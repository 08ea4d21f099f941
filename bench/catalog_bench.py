"""Where a tick's and a query's time goes: DuckLake's own catalog queries, and how their cost
grows with the catalog (SQLite catalog, local data: the default lake).

DuckLake logs every statement it sends to its catalog (DuckDB log type ``DuckLakeMetadata``,
with whole elapsed milliseconds, so statements under a millisecond count as 0).

- **Tick anatomy** (day corpus, one local lake): ``warm`` ticks landed with
  ``ingest_outcomes``, then ``timed`` ticks timed, then ``logged`` ticks with the catalog log
  on: statements per tick, their summed elapsed ms, and the slowest (the commit's).
- **Query anatomy** (year corpus): ``latest_term_structure`` and a point query on an open
  connection: p50, the CPU time of DuckDB's operators (its profiler), and the catalog
  statements with their elapsed ms.
- **Catalog growth** (a copy of the year corpus's catalog, the same data files): the two queries
  again after adding synthetic rows to ``ducklake_file_column_stats`` for a table that does not
  exist. No answer changes; only the rows a catalog read has to get past. They stand in for
  more history (docs/benchmarks.md says how many rows a year holds).
- **Snapshot growth** (a copy of the tick lake's catalog): ticks and ``latest_term_structure``
  after adding synthetic rows to ``ducklake_snapshot`` and ``ducklake_snapshot_changes`` with
  negative ids, which no file and no query refers to. A live lake keeps one snapshot per tick for
  the whole retention period (7 days by default: ~10,000); the corpora hold a few hundred.
- **The same on PostgreSQL** (``--postgres``, on in ``make bench``): the tick lake's and the
  year corpus's catalogs copied row for row into an embedded PostgreSQL on loopback
  (bench/catalog_copies.py), describing the same data files; then both growths run again. On
  PostgreSQL DuckLake sends each catalog query to the server whole, so its filters run there.

Run: ``.venv/bin/python -m bench.catalog_bench``; writes bench/results/catalog_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

import duckdb

from backquant.client import FetchOutcome
from bench.catalog_copies import CatalogCopy, PostgresCatalogCopy, SqliteCatalogCopy
from bench.common import load_average, summarise, write_results
from bench.corpus import day_corpus, tick_outcomes, year_corpus
from storage import Warehouse, ingest_outcomes
from storage.lake import open_lake
from tests.support.services import running_postgres

COMMAND: Final = ".venv/bin/python -m bench.catalog_bench"
QUERIES: Final = {
    "latest_term_structure": "SELECT * FROM latest_term_structure",
    "point_query": "SELECT count(*), max(atm_iv) FROM expiries WHERE symbol = 'BTCUSDT' "
    "AND computed_at >= (SELECT max(computed_at) - INTERVAL 1 HOUR FROM snapshots)",
}
CATALOG_ROWS: Final = (
    "ducklake_snapshot",
    "ducklake_data_file",
    "ducklake_file_column_stats",
)


class CatalogLog:
    """DuckLake's catalog statements on one connection, read in slices. (Truncating DuckDB's
    log stops it recording in duckdb 1.5.5, so the slices are kept apart by position.)"""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        connection.execute("CALL enable_logging('DuckLakeMetadata')")
        self.seen = 0
        self.since_last()  # skip what was logged before

    def since_last(self) -> list[tuple[str, int]]:
        """Statements logged since the last call: first 80 characters, elapsed ms."""
        rows = self.connection.execute(
            "SELECT query, elapsed_ms FROM duckdb_logs_parsed('DuckLakeMetadata')"
        ).fetchall()[self.seen :]
        self.seen += len(rows)
        return [(" ".join(str(query).split())[:80], int(ms or 0)) for query, ms in rows]

    def close(self) -> None:
        self.connection.execute("CALL disable_logging()")


def catalog_rows(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows of the catalog tables every file-list read scans whole."""
    counted = {}
    for table in CATALOG_ROWS:
        row = connection.execute(f'SELECT count(*) FROM "__ducklake_metadata_lake".{table}')
        counted[table] = int(row.fetchone()[0])  # type: ignore[index]
    return counted


def tick_anatomy(home: Path, warm: int, timed: int, logged: int) -> dict[str, Any]:
    """Ticks into a new local lake at ``home``."""
    prepared = tick_outcomes(day_corpus().bodies(), warm + timed + logged)
    warehouse = Warehouse.open(home)
    for outcomes in prepared[:warm]:
        ingest_outcomes(warehouse, outcomes)
    seconds = []
    for outcomes in prepared[warm : warm + timed]:
        began = time.perf_counter()
        ingest_outcomes(warehouse, outcomes)
        seconds.append(time.perf_counter() - began)
    per_tick: list[list[tuple[str, int]]] = []
    with warehouse.writer() as connection:
        log = CatalogLog(connection)
    for outcomes in prepared[warm + timed :]:
        ingest_outcomes(warehouse, outcomes)
        per_tick.append(log.since_last())
    with warehouse.writer() as connection:
        log.close()
        rows = catalog_rows(connection)
    warehouse.close()
    slowest = max((max(tick, key=lambda s: s[1]) for tick in per_tick), key=lambda s: s[1])
    return {
        "ticks_before": warm,
        "tick": summarise(seconds),
        "catalog_statements_per_tick": statistics.median(len(tick) for tick in per_tick),
        "catalog_elapsed_ms_per_tick": statistics.median(sum(ms for _, ms in t) for t in per_tick),
        "slowest_statement": {"starts": slowest[0], "elapsed_ms": slowest[1]},
        "catalog_rows_after": rows,
    }


def query_anatomy(
    connection: duckdb.DuckDBPyConnection, query: str, runs: int, profile: Path
) -> dict[str, Any]:
    for _ in range(2):
        connection.execute(query).fetchall()
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        connection.execute(query).fetchall()
        seconds.append(time.perf_counter() - began)
    connection.execute("PRAGMA enable_profiling = 'json'")
    connection.execute(f"SET profiling_output = '{profile}'")
    connection.execute(query).fetchall()
    connection.execute("PRAGMA disable_profiling")
    profiled = json.loads(profile.read_text())
    log = CatalogLog(connection)
    connection.execute(query).fetchall()
    statements = log.since_last()
    log.close()
    return {
        **summarise(seconds),
        "operators_cpu_ms": round(float(profiled["cpu_time"]) * 1000, 1),
        "catalog_statements": len(statements),
        "catalog_elapsed_ms": sum(ms for _, ms in statements),
        "catalog_elapsed_ms_each": [ms for _, ms in statements],
    }


def snapshot_growth(
    copy: CatalogCopy,
    ticks: list[dict[str, FetchOutcome]],
    extra_snapshots: list[int],
    profile: Path,
) -> dict[str, Any]:
    """``ticks`` and ``latest_term_structure`` on ``copy`` with each number of synthetic
    snapshots. Each level starts from the same catalog, so it lands the same ticks."""
    results: dict[str, Any] = {}
    for extra in extra_snapshots:
        copy.reset(0, extra_snapshots=extra)
        warehouse = Warehouse.open(config=copy.config)
        try:
            seconds = []
            for outcomes in ticks:
                began = time.perf_counter()
                ingest_outcomes(warehouse, outcomes)
                seconds.append(time.perf_counter() - began)
            with warehouse.writer() as connection:
                snapshots = catalog_rows(connection)["ducklake_snapshot"]
        finally:
            warehouse.close()
        reader = open_lake(copy.config, read_only=True)
        try:
            query = query_anatomy(reader, QUERIES["latest_term_structure"], len(ticks), profile)
        finally:
            reader.close()
        results[f"extra_{extra}"] = {
            "snapshot_rows": snapshots,
            "tick": summarise(seconds),
            "latest_term_structure": query,
        }
    return results


def catalog_growth(
    copy: CatalogCopy, extra_rows: list[int], runs: int, profile: Path
) -> dict[str, Any]:
    """The queries on ``copy`` with each number of ``extra_rows`` synthetic stats rows."""
    results: dict[str, Any] = {}
    first_answers: dict[str, Any] | None = None
    for extra in extra_rows:
        copy.reset(extra)
        connection = open_lake(copy.config, read_only=True)
        try:
            answers = {}
            measured: dict[str, Any] = {"catalog_rows": catalog_rows(connection)}
            for name, query in QUERIES.items():
                answers[name] = connection.execute(query).fetchall()
                measured[name] = query_anatomy(connection, query, runs, profile)
            first_answers = first_answers or answers
            measured["same_answers_as_without_extra_rows"] = answers == first_answers
        finally:
            connection.close()
        results[f"extra_{extra}"] = measured
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--extra-rows", default="0,100000,500000")
    parser.add_argument("--extra-snapshots", default="0,10080,50400")
    parser.add_argument("--postgres", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    load_before = load_average()
    year = year_corpus()
    extra = [int(value) for value in args.extra_rows.split(",")]
    snapshots = [int(value) for value in args.extra_snapshots.split(",")]
    already = args.warm + args.ticks + 10
    later = tick_outcomes(day_corpus().bodies(), already + args.ticks)[already:]
    with (
        tempfile.TemporaryDirectory(prefix="termstore-catalog-bench-") as temp,
        ExitStack() as stack,
    ):
        root = Path(temp)
        ticks = root / "ticks"
        profile = root / "profile.json"
        results: dict[str, Any] = {
            "tick_anatomy": tick_anatomy(ticks, args.warm, args.ticks, logged=10),
            "snapshot_growth": snapshot_growth(
                SqliteCatalogCopy(ticks, root / "snapshots"), later, snapshots, profile
            ),
            "year_catalog_growth": catalog_growth(
                SqliteCatalogCopy(year.home, root / "year"), extra, args.runs, profile
            ),
        }
        if args.postgres:
            server = stack.enter_context(running_postgres())
            tick_copy = PostgresCatalogCopy(ticks, root, server, "tick_catalog")
            results["snapshot_growth_postgres"] = snapshot_growth(
                tick_copy, later, snapshots, profile
            )
            year_copy = PostgresCatalogCopy(year.home, root, server, "year_catalog")
            results["year_catalog_growth_postgres"] = catalog_growth(
                year_copy, extra, args.runs, profile
            )
    results["load_average_before_after"] = [load_before, load_average()]
    command = f"{COMMAND} --warm {args.warm} --ticks {args.ticks} --runs {args.runs}"
    extras = f"--extra-rows {args.extra_rows} --extra-snapshots {args.extra_snapshots}"
    postgres = "" if args.postgres else " --no-postgres"
    path = write_results("catalog_bench", f"{command} {extras}{postgres}", results)
    print(path.read_text())


if __name__ == "__main__":
    main()
