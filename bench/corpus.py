"""Benchmark corpora from the simulator's market, built once and cached outside the repository.

- **Day corpus**: one day of 1-minute ticks × 4 symbols = 5,760 response bodies, exactly as the
  simulator serves them (``Market(seed).expiry_summary_bytes``), one body per line (NDJSON).
- **Year corpus**: a warehouse home holding 52 weeks (364 days) of 1-minute history × 4 symbols.
  By default the last ``REAL_DAYS`` days go through the real write path (simulator bodies →
  ``bulk_ingest``: validation, archive pack, cold files) and the earlier weeks are **clones** of
  those real days: the same cold files with every timestamp, date and expiry token shifted back
  by whole weeks (weekdays, and so the listing pattern, are preserved). Row counts, file sizes and
  query costs are those of a real year; the values repeat weekly. The simulator's model costs
  ~1.8 ms a body, so a year with no clones (``--real-days 364``, 2.1M bodies) took 43 min 38 s
  on a 2-core machine; it is built once and then kept by every benchmark.

Run ``.venv/bin/python -m bench.corpus [--real-days N]`` to build (or check) both; other
benchmarks call ``day_corpus()`` and ``year_corpus()``, which build on first use.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
import polars as pl

from storage.schemas import FetchMeta
from backquant.headers import ResponseHeaders
from backquant.simulator import Market
from backquant.symbols import SUPPORTED_SYMBOLS
from bench.common import cache_dir, progress
from storage import FetchedBody, Warehouse, bulk_ingest, refresh_catalog
from storage.atomic import atomic_write_parquet
from storage.catalog import cold_file
from storage.layout import SUMMARY_TABLES, TABLES
from storage.rebuild import COLD_COMPRESSION_LEVEL
from storage.reports import STORED
from storage.state import load_state, save_state

SEED: Final[int] = 7
FORMAT: Final[int] = 2
"""Bump when the corpus recipe changes, so stale caches are rebuilt."""
DAY: Final[date] = date(2026, 3, 2)
"""The day corpus: a Monday, with dailies, weeklies, monthlies and a quarterly listed."""
YEAR_LAST_DAY: Final[date] = date(2026, 3, 1)
YEAR_WEEKS: Final[int] = 52
REAL_DAYS: Final[int] = 7
FETCH_OFFSET: Final[timedelta] = timedelta(seconds=5)
"""Ticks fetch 5 s into the minute; the body's computed_at is the 30-second bucket start."""


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


def fetched_at(day: date, minute: int) -> datetime:
    return (
        datetime(day.year, day.month, day.day, tzinfo=UTC)
        + timedelta(minutes=minute)
        + (FETCH_OFFSET)
    )


def fetch_meta(symbol: str, at: datetime) -> FetchMeta:
    return FetchMeta(symbol, 200, at, at + timedelta(milliseconds=180), 1, ResponseHeaders())


def _day_bodies(day_ordinal: int) -> list[bytes]:
    """Every body of one day, tick-major then symbol (runs in a worker process)."""
    day = date.fromordinal(day_ordinal)
    market = Market(SEED, cache_size=8)
    return [
        market.expiry_summary_bytes(symbol, fetched_at(day, minute))
        for minute in range(1440)
        for symbol in SUPPORTED_SYMBOLS
    ]


def _read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    return manifest


def day_corpus() -> DayCorpus:
    """The cached day corpus (built on first use, ~10 s)."""
    root = cache_dir() / "day"
    path = root / "bodies.ndjson"
    manifest_path = root / "manifest.json"
    wanted = {"format": FORMAT, "seed": SEED, "day": DAY.isoformat()}
    manifest = _read_manifest(manifest_path)
    if manifest is None or {k: manifest.get(k) for k in wanted} != wanted or not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        with progress() as bar:
            task = bar.add_task("day corpus: simulator bodies", total=1)
            bodies = _day_bodies(DAY.toordinal())
            bar.advance(task)
        path.write_bytes(b"\n".join(bodies) + b"\n")
        manifest = {**wanted, "responses": len(bodies)}
        manifest_path.write_bytes(orjson.dumps(manifest))
    return DayCorpus(path, int(manifest["responses"]), path.stat().st_size)


def _write_real_days(warehouse: Warehouse, days: list[date]) -> None:
    """Simulator bodies → ``bulk_ingest``: the real backfill write path (validation, archive
    pack, cold files), one day at a time while worker processes simulate the next days."""
    with progress() as bar, ProcessPoolExecutor(max_workers=2) as pool:
        task = bar.add_task("year corpus: real days (simulate, bulk ingest)", total=len(days))
        batches = pool.map(_day_bodies, [day.toordinal() for day in days])
        for day, bodies in zip(days, batches, strict=True):
            fetched = [
                FetchedBody(fetch_meta(symbol, fetched_at(day, minute)), body)
                for (minute, symbol), body in zip(
                    itertools.product(range(1440), SUPPORTED_SYMBOLS), bodies, strict=True
                )
            ]
            report = bulk_ingest(warehouse, fetched, workers=1)
            if report.count(STORED) != len(fetched):
                raise RuntimeError(f"{day}: not every simulator body was stored: {report.days}")
            bar.advance(task)


def _shift_tokens(column: str, shift: timedelta) -> pl.Expr:
    token_date = pl.col(column).str.to_date("%d%b%y", strict=False)
    shifted = (token_date + shift).dt.strftime("%d%b%y").str.to_uppercase()
    return pl.coalesce(shifted, pl.col(column)).alias(column)


def shifted(frame: pl.DataFrame, shift: timedelta) -> pl.DataFrame:
    """The same rows moved in time by ``shift``: every datetime, date and expiry token."""
    changes: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime | pl.Date):
            changes.append((pl.col(name) + shift).alias(name))
    if "expiry" in frame.columns:
        changes.append(_shift_tokens("expiry", shift))
    return frame.with_columns(changes) if changes else frame


def _clone_weeks(warehouse: Warehouse, real_days: list[date], weeks: int) -> int:
    layout = warehouse.layout
    state = load_state(layout)
    cloned = 0
    with progress() as bar:
        task = bar.add_task("year corpus: cloned weeks", total=weeks)
        for week in range(1, weeks + 1):
            shift = timedelta(weeks=-week)
            for day in real_days:
                target_day = day + shift
                for symbol in SUPPORTED_SYMBOLS:
                    for table in TABLES:
                        frame = pl.read_parquet(cold_file(layout, state, table, symbol, day))
                        atomic_write_parquet(
                            layout.cold_file(table, symbol, target_day),
                            shifted(frame, shift),
                            compression_level=COLD_COMPRESSION_LEVEL,
                        )
                    state.mark_cold(symbol, target_day, datetime.now(UTC))
                cloned += 1
            bar.advance(task)
    save_state(layout, state)
    refresh_catalog(layout, state)
    return cloned


def year_corpus(real_days: int | None = None) -> YearCorpus:
    """The cached year warehouse, built on first use with ``real_days`` real days (default
    ``REAL_DAYS``: a few minutes). ``None`` accepts a cache built with any number of real days,
    so a fully real year built once (``python -m bench.corpus --real-days 364``) is kept."""
    root = cache_dir() / "year"
    home = root / "home"
    manifest_path = root / "manifest.json"
    wanted: dict[str, Any] = {
        "format": FORMAT,
        "seed": SEED,
        "last_day": YEAR_LAST_DAY.isoformat(),
        "weeks": YEAR_WEEKS,
    }
    manifest = _read_manifest(manifest_path)
    if real_days is None:
        real_days = int(manifest.get("real_days", REAL_DAYS)) if manifest else REAL_DAYS
    wanted["real_days"] = real_days
    days = [YEAR_LAST_DAY - timedelta(days=offset) for offset in range(real_days - 1, -1, -1)]
    if manifest is None or {k: manifest.get(k) for k in wanted} != wanted:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        warehouse = Warehouse.open(home)
        _write_real_days(warehouse, days)
        clone_weeks = (YEAR_WEEKS * 7 - real_days) // real_days
        cloned = _clone_weeks(warehouse, days, clone_weeks)
        rows = {
            table: int(warehouse.sql(f"SELECT count(*) FROM {table}").item())
            for table in SUMMARY_TABLES
        }
        warehouse.close()
        manifest = {**wanted, "cloned_days": cloned, "rows": rows}
        manifest_path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return YearCorpus(home, tuple(days), int(manifest["cloned_days"]), manifest)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build (or check) the cached corpora.")
    parser.add_argument(
        "--real-days",
        type=int,
        default=None,
        help=f"days of the year written for real, the rest cloned (default: the cached "
        f"corpus, else {REAL_DAYS}; {YEAR_WEEKS * 7} = no clones, ~45 min here)",
    )
    args = parser.parse_args()
    day = day_corpus()
    print(f"day corpus: {day.responses} responses, {day.size_bytes:,} bytes at {day.path}")
    year = year_corpus(args.real_days)
    print(f"year corpus: {year.days} days at {year.home}: {year.manifest['rows']}")


if __name__ == "__main__":
    main()
