"""Benchmark corpora from the simulator's market, built once and cached outside the repository.

- **Day corpus**: one day of 1-minute ticks × 4 symbols = 5,760 response bodies, exactly as the
  simulator serves them (``Market(seed).expiry_summary_bytes``), one body per line (NDJSON),
  tick-major (4 consecutive bodies per minute, in ``SUPPORTED_SYMBOLS`` order).
- **Year corpus**: a lake (the default local setup: SQLite catalog, data directory) holding 52
  weeks (364 days) of 1-minute history × 4 symbols. The last ``REAL_DAYS`` days go through the
  real write path (simulator bodies → ``bulk_ingest``: validation, raw archive, summary rows,
  ingest log; then ``materialise_days`` for their hourly sample). The earlier weeks are
  **clones** of those days made inside the lake: ``INSERT … SELECT`` of the real days' rows of
  ``snapshots``, ``expiries``, ``venue_oi`` and ``hourly_sample`` with every instant, date and
  expiry token shifted back by whole weeks (weekdays, and so the listing pattern, are kept), one
  transaction per week. ``responses``, ``ingest_log`` and ``quarantine`` are not cloned: they
  hold the real days only. Then ``maintain()``, so each day is one file per table. Row counts,
  file sizes and query costs of the summary tables are those of a real year; the values repeat
  weekly. Built in ~5 minutes on a quiet 2-core machine (the manifest records each step).

The cache is rebuilt when the recipe (``FORMAT``) or the lake's definition (tables, partitions,
options: ``lake_fingerprint``) changes; views are brought up to date in place. Run
``.venv/bin/python -m bench.corpus`` to build (or check) both; other benchmarks call
``day_corpus()`` and ``year_corpus()``, which build on first use.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from backquant.client import FetchOutcome, FetchResult
from backquant.headers import ResponseHeaders
from backquant.simulator import Market
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary
from bench.common import cache_dir, progress, table_sizes
from storage import Warehouse
from storage.bulk import FetchedBody, bulk_ingest
from storage.derived import (
    EXPIRY_ROWS,
    EXPIRY_ROWS_SCHEMA,
    SORTED_BY,
    STORED_EXPIRIES_SQL,
    stored_table,
)
from storage.lake_schema import LAKE_OPTIONS, LAKE_TABLES, PARTITIONS
from storage.maintenance import maintain
from storage.records import FetchMeta
from storage.reports import STORED
from storage.research.hourly_tier import materialise_days
from storage.research.views import HOURLY_SAMPLE_TABLE
from storage.schemas import SUMMARY_TABLES, TABLE_SCHEMAS
from storage.writes import transaction

SEED: Final[int] = 7
FORMAT: Final[int] = 3
"""Bump when the corpus recipe changes, so stale caches are rebuilt."""
DAY: Final[date] = date(2026, 3, 2)
"""The day corpus: a Monday, with dailies, weeklies, monthlies and a quarterly listed."""
YEAR_LAST_DAY: Final[date] = date(2026, 3, 1)
YEAR_WEEKS: Final[int] = 52
REAL_DAYS: Final[int] = 7
MINUTES_PER_DAY: Final[int] = 1440
FETCH_OFFSET: Final[timedelta] = timedelta(seconds=5)
"""Ticks fetch 5 s into the minute; the body's computed_at is the 30-second bucket start."""
LATENCY: Final[timedelta] = timedelta(milliseconds=180)
HEADERS: Final = ResponseHeaders(ratelimit_limit=60, ratelimit_remaining=59, request_id="req_b")
CLONED_TABLES: Final[tuple[str, ...]] = (*map(stored_table, SUMMARY_TABLES), HOURLY_SAMPLE_TABLE)


@dataclass(frozen=True)
class DayCorpus:
    path: Path
    responses: int
    size_bytes: int

    def bodies(self) -> list[bytes]:
        return self.path.read_bytes().splitlines()


@dataclass(frozen=True)
class YearCorpus:
    home: Path
    real_days: tuple[date, ...]
    cloned_days: int
    manifest: dict[str, Any]

    @property
    def days(self) -> int:
        return len(self.real_days) + self.cloned_days

    @property
    def first_day(self) -> date:
        """The earliest cloned day: the first real day, whole weeks earlier."""
        weeks = self.cloned_days // len(self.real_days)
        return self.real_days[0] - timedelta(weeks=weeks)


def fetched_at(day: date, minute: int) -> datetime:
    return (
        datetime(day.year, day.month, day.day, tzinfo=UTC)
        + timedelta(minutes=minute)
        + (FETCH_OFFSET)
    )


def fetch_meta(symbol: str, at: datetime) -> FetchMeta:
    return FetchMeta(symbol, 200, at, at + LATENCY, 1, HEADERS)


def corpus_ticks(
    bodies: list[bytes], day: date = DAY
) -> Iterator[tuple[datetime, dict[str, bytes]]]:
    """Tick-major bodies as (fetch start, symbol → body), one tick per minute from midnight."""
    width = len(SUPPORTED_SYMBOLS)
    for minute in range(len(bodies) // width):
        chunk = bodies[minute * width : (minute + 1) * width]
        yield fetched_at(day, minute), dict(zip(SUPPORTED_SYMBOLS, chunk, strict=True))


def fetched_bodies(bodies: list[bytes], day: date = DAY) -> list[FetchedBody]:
    """The bodies as ``bulk_ingest`` takes them: each with its fetch record."""
    return [
        FetchedBody(fetch_meta(symbol, at), raw)
        for at, by_symbol in corpus_ticks(bodies, day)
        for symbol, raw in by_symbol.items()
    ]


def outcome(symbol: str, started_at: datetime, raw: bytes) -> FetchOutcome:
    """What the HTTP client hands the tick for one body (parse + contract validation done)."""
    finished = started_at + LATENCY
    result = FetchResult(
        symbol, parse_expiry_summary(raw), raw, 200, HEADERS, started_at, finished, 1
    )
    return FetchOutcome(symbol, started_at, finished, result=result)


def tick_outcomes(bodies: list[bytes], ticks: int) -> list[dict[str, FetchOutcome]]:
    """The first ``ticks`` ticks of the corpus as fetch outcomes (built before any clock)."""
    chosen = itertools.islice(corpus_ticks(bodies), ticks)
    return [
        {symbol: outcome(symbol, at, raw) for symbol, raw in by_symbol.items()}
        for at, by_symbol in chosen
    ]


def _day_bodies(day_ordinal: int, minutes: int = MINUTES_PER_DAY) -> list[bytes]:
    """The bodies of a day's first ``minutes`` ticks, tick-major then symbol (runs in a worker
    process)."""
    day = date.fromordinal(day_ordinal)
    market = Market(SEED, cache_size=8)
    return [
        market.expiry_summary_bytes(symbol, fetched_at(day, minute))
        for minute in range(minutes)
        for symbol in SUPPORTED_SYMBOLS
    ]


def _read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    return manifest


def day_corpus(minutes: int = MINUTES_PER_DAY) -> DayCorpus:
    """The cached day corpus (built on first use, ~10 s); ``minutes`` < 1,440 gives the day's
    first ticks only (the reduced test's corpus)."""
    root = cache_dir() / ("day" if minutes == MINUTES_PER_DAY else f"day-{minutes}-minutes")
    path = root / "bodies.ndjson"
    manifest_path = root / "manifest.json"
    wanted = {"format": FORMAT, "seed": SEED, "day": DAY.isoformat(), "minutes": minutes}
    manifest = _read_manifest(manifest_path)
    if manifest is None or {k: manifest.get(k) for k in wanted} != wanted or not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        with progress() as bar:
            task = bar.add_task("day corpus: simulator bodies", total=1)
            bodies = _day_bodies(DAY.toordinal(), minutes)
            bar.advance(task)
        path.write_bytes(b"\n".join(bodies) + b"\n")
        manifest = {**wanted, "responses": len(bodies)}
        manifest_path.write_bytes(orjson.dumps(manifest))
    return DayCorpus(path, int(manifest["responses"]), path.stat().st_size)


def write_real_days(warehouse: Warehouse, days: list[date]) -> float:
    """Simulator bodies → ``bulk_ingest``, one day at a time while worker processes simulate
    the next days; returns the seconds spent in ``bulk_ingest``."""
    spent = 0.0
    with progress() as bar, ProcessPoolExecutor(max_workers=2) as pool:
        task = bar.add_task("year corpus: real days (simulate, bulk ingest)", total=len(days))
        batches = pool.map(_day_bodies, [day.toordinal() for day in days])
        for day, bodies in zip(days, batches, strict=True):
            fetched = fetched_bodies(bodies, day)
            report = bulk_ingest(warehouse, fetched)
            spent += report.seconds
            if report.count(STORED) != len(fetched):
                raise RuntimeError(f"{day}: not every simulator body was stored: {report.days}")
            bar.advance(task)
    return spent


_LAKE_SCHEMAS: Final = {
    **TABLE_SCHEMAS,
    EXPIRY_ROWS: EXPIRY_ROWS_SCHEMA,
    HOURLY_SAMPLE_TABLE: TABLE_SCHEMAS["expiries"],
}


def _column_types(table: str) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in _LAKE_SCHEMAS[table].items()}


def shifted_select(table: str, days: int, start: datetime, end: datetime) -> str:
    """``SELECT`` of ``table``'s rows with ``computed_at`` in [start, end), every instant and
    date moved by ``days`` (whole weeks keep weekdays) and expiry tokens (``06MAR26``) moved
    with them; tokens that are not dates stay as they are."""
    columns = []
    for name, dtype in _column_types(table).items():
        if dtype.startswith("Datetime") or dtype == "Date":
            columns.append(f"{name} + INTERVAL '{days} days' AS {name}")
        elif name == "expiry":
            moved = f"try_strptime(expiry, '%d%b%y') + INTERVAL '{days} days'"
            columns.append(f"coalesce(upper(strftime({moved}, '%d%b%y')), expiry) AS expiry")
        else:
            columns.append(name)
    return (
        f"SELECT {', '.join(columns)} FROM {table} "
        f"WHERE computed_at >= TIMESTAMPTZ '{start.isoformat()}' "
        f"AND computed_at < TIMESTAMPTZ '{end.isoformat()}'"
    )


def clone_weeks(warehouse: Warehouse, real_days: list[date], weeks: int) -> int:
    """Clone the real days' summary rows and hourly sample ``weeks`` times, a week earlier
    each time, one transaction per week; returns the days cloned."""
    start = datetime.combine(real_days[0], datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(real_days[-1], datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
    with progress() as bar, warehouse.writer() as connection:
        task = bar.add_task("year corpus: cloned weeks (INSERT … SELECT)", total=weeks)
        for week in range(1, weeks + 1):
            with transaction(connection, warehouse.config, f"clone of week -{week}"):
                for table in CLONED_TABLES:
                    listed = ", ".join(_column_types(table))
                    select = shifted_select(table, -7 * week, start, end)
                    connection.execute(f"INSERT INTO {table} ({listed}) {select}")
            bar.advance(task)
    return weeks * len(real_days)


def _row_counts(warehouse: Warehouse) -> dict[str, int]:
    return {
        table: int(warehouse.sql(f"SELECT count(*) FROM {table}").item()) for table in LAKE_TABLES
    }


def build_year(
    home: Path,
    days: list[date],
    weeks: int,
    write_days: Callable[[Warehouse, list[date]], float] = write_real_days,
) -> dict[str, Any]:
    """A year lake at ``home`` from ``days`` real days (written by ``write_days``) and
    ``weeks`` cloned weeks; returns what the manifest records (each step's time included)."""
    timings: dict[str, float] = {}
    began = time.perf_counter()
    warehouse = Warehouse.open(home)
    try:
        timings["bulk_ingest_s"] = round(write_days(warehouse, days), 1)
        timings["simulate_and_ingest_real_days_s"] = round(time.perf_counter() - began, 1)
        step = time.perf_counter()
        end_of_days = datetime.combine(days[-1], datetime.min.time(), tzinfo=UTC) + timedelta(1)
        materialise_days(warehouse, days, now=end_of_days)
        timings["materialise_hourly_sample_real_days_s"] = round(time.perf_counter() - step, 1)
        step = time.perf_counter()
        cloned = clone_weeks(warehouse, days, weeks)
        timings["clone_weeks_s"] = round(time.perf_counter() - step, 1)
        step = time.perf_counter()
        report = maintain(warehouse)
        timings["maintain_s"] = round(time.perf_counter() - step, 1)
        with warehouse.writer() as connection:
            tables = table_sizes(connection)
        rows = _row_counts(warehouse)
    finally:
        warehouse.close()
    timings["total_s"] = round(time.perf_counter() - began, 1)
    return {
        "cloned_days": cloned,
        "rows": rows,
        "tables": tables,
        "maintenance": report.as_dict(),
        "build": timings,
    }


def lake_fingerprint() -> str:
    """What the lake's data files depend on (tables, partitions, options): a cached year built
    under another definition is rebuilt. Views are not part of it: the first writer brings a
    cached lake's views up to ``SCHEMA_VERSION``."""
    described = repr((TABLE_SCHEMAS, PARTITIONS, LAKE_OPTIONS, STORED_EXPIRIES_SQL, SORTED_BY))
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def year_corpus() -> YearCorpus:
    """The cached year lake, built on first use (see the module docstring)."""
    root = cache_dir() / "year-lake"
    home = root / "home"
    manifest_path = root / "manifest.json"
    wanted: dict[str, Any] = {
        "format": FORMAT,
        "seed": SEED,
        "last_day": YEAR_LAST_DAY.isoformat(),
        "weeks": YEAR_WEEKS,
        "real_days": REAL_DAYS,
        "lake": lake_fingerprint(),
    }
    days = [YEAR_LAST_DAY - timedelta(days=offset) for offset in range(REAL_DAYS - 1, -1, -1)]
    manifest = _read_manifest(manifest_path)
    if manifest is None or {k: manifest.get(k) for k in wanted} != wanted:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        clone_count = (YEAR_WEEKS * 7 - REAL_DAYS) // 7
        built = build_year(home, days, clone_count)
        manifest = {**wanted, **built, "built_at": datetime.now(UTC).isoformat()}
        manifest_path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return YearCorpus(home, tuple(days), int(manifest["cloned_days"]), manifest)


def main() -> None:
    argparse.ArgumentParser(description="Build (or check) the cached corpora.").parse_args()
    day = day_corpus()
    print(f"day corpus: {day.responses} responses, {day.size_bytes:,} bytes at {day.path}")
    year = year_corpus()
    print(f"year corpus: {year.days} days at {year.home}")
    print(orjson.dumps(year.manifest, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
