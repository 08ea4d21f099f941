"""Research speed: the hourly 30d constant-maturity series for a year of 1-minute history.

Run with ``.venv/bin/python -m bench.research_bench``; writes bench/results/research_bench.json.
The year is synthesised straight into the cold tier with polars in the warehouse's exact
``expiries``/``snapshots`` schemas: 4 symbols × 365 days × 1,440 snapshots (11 expiries for
BTC/ETH, 7 SOL, 5 HYPE: ~17.9M expiry rows), distinct timestamps, rolling expiries, noisy IVs.
Timed: the API call with the real interpolation, with the hourly tier materialised (the normal
state) and without it (every month stale: sampled from the cold files on the fly).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from storage.schemas import EXPIRIES_SCHEMA, SNAPSHOTS_SCHEMA, empty_frame
from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse
from storage.atomic import atomic_write_parquet
from storage.rebuild import COLD_COMPRESSION_LEVEL
from storage.research import api
from storage.research.hourly_tier import materialise_months, months_of
from storage.state import load_state, save_state

EXPIRY_COUNTS = {"BTCUSDT": 11, "ETHUSDT": 11, "SOLUSDT": 7, "HYPEUSDT": 5}
OFFSETS = np.array([1, 2, 3, 4, 11, 18, 25, 53, 115, 207, 298])
FIRST_DAY = date(2025, 3, 3)
DAYS = 365
RESULTS = Path(__file__).parent / "results" / "research_bench.json"


def _utc(column: str) -> pl.Expr:
    return pl.col(column).dt.replace_time_zone("UTC")


def _full(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    return frame.select(
        [pl.col(name) if name in frame.columns else pl.lit(None).alias(name) for name in schema]
    ).cast(schema)


def synthesise_year(warehouse: Warehouse) -> int:
    """Cold expiries/snapshots files for every symbol-day; returns the expiry rows written."""
    rng = np.random.default_rng(7)
    state = load_state(warehouse.layout)
    rows = 0
    for symbol in SUPPORTED_SYMBOLS:
        count = EXPIRY_COUNTS[symbol]
        for offset in range(DAYS):
            day = FIRST_DAY + timedelta(days=offset)
            minutes = np.datetime64(day, "us") + (np.arange(1440) * 60 + 30) * 1_000_000
            expiry_at = (np.datetime64(day) + OFFSETS[:count]).astype("datetime64[us]")
            expiry_at = expiry_at + np.timedelta64(8, "h")
            computed = np.repeat(minutes, count)
            settles = np.tile(expiry_at, 1440)
            years = (settles - computed).astype("int64") / 1e6 / (365 * 86400)
            atm = 45 + 10 * np.sqrt(years) + rng.normal(0, 0.5, years.size)
            expiries = pl.DataFrame(
                {
                    "symbol": np.full(years.size, symbol),
                    "computed_at": computed,
                    "expiry": np.tile([f"E{i}" for i in range(count)], 1440),
                    "position": np.tile(np.arange(count), 1440).astype(np.int16),
                    "expiry_at": settles,
                    "years_to_expiry": years,
                    "atm_iv": atm,
                    "put_25d_iv": atm + 3 + rng.normal(0, 0.3, years.size),
                    "call_25d_iv": atm - 1 + rng.normal(0, 0.3, years.size),
                }
            ).with_columns(_utc("computed_at"), _utc("expiry_at"))
            snapshots = pl.DataFrame({"symbol": [symbol] * 1440, "computed_at": minutes})
            snapshots = snapshots.with_columns(_utc("computed_at"))
            layout = warehouse.layout
            for table, frame in (
                ("expiries", _full(expiries, EXPIRIES_SCHEMA)),
                ("snapshots", _full(snapshots, SNAPSHOTS_SCHEMA)),
                ("venue_oi", empty_frame("venue_oi")),
                ("ingest_log", empty_frame("ingest_log")),
            ):
                atomic_write_parquet(
                    layout.cold_file(table, symbol, day),
                    frame,
                    compression_level=COLD_COMPRESSION_LEVEL,
                )
            state.mark_cold(symbol, day, datetime.now(UTC))
            rows += expiries.height
    save_state(warehouse.layout, state)
    return rows


def timings(action: Callable[[], object], runs: int) -> dict[str, float]:
    seconds = []
    for _ in range(runs):
        begin = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - begin)
    seconds.sort()
    return {
        "runs": runs,
        "median_ms": statistics.median(seconds) * 1000,
        "p95_ms": seconds[int(0.95 * (runs - 1))] * 1000,
        "min_ms": seconds[0] * 1000,
    }


def main() -> None:
    start = datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=DAYS)
    with tempfile.TemporaryDirectory(prefix="termstore-research-bench-") as temp:
        warehouse = Warehouse.open(Path(temp) / "home")
        began = time.perf_counter()
        expiry_rows = synthesise_year(warehouse)
        synthesis_s = time.perf_counter() - began
        refresh = timings(warehouse.refresh_catalog, 5)

        def hourly_30d_all() -> pl.DataFrame:
            return api.constant_maturity(warehouse, None, start, end, (30,), every="1h")

        began = time.perf_counter()
        stale_rows = hourly_30d_all().height
        on_the_fly_ms = (time.perf_counter() - began) * 1000

        began = time.perf_counter()
        written = materialise_months(warehouse, months_of(start.date(), end.date()))
        materialise_s = time.perf_counter() - began
        hourly_30d_all()
        all_symbols = timings(hourly_30d_all, 20)
        one_call_per_symbol = timings(
            lambda: [
                api.constant_maturity(warehouse, symbol, start, end, (30,), every="1h")
                for symbol in SUPPORTED_SYMBOLS
            ],
            10,
        )
        seven_tenors = timings(
            lambda: api.constant_maturity(warehouse, None, start, end, every="1h"), 5
        )
        daily_4h = timings(
            lambda: api.constant_maturity(warehouse, None, start, end, (30,), every="1d"), 5
        )
        result_rows = hourly_30d_all().height
        warehouse.close()
    results = {
        "measured_at": datetime.now(UTC).isoformat(),
        "history": {
            "symbols": len(SUPPORTED_SYMBOLS),
            "days": DAYS,
            "snapshots_per_symbol_day": 1440,
            "expiry_rows": expiry_rows,
            "synthesis_s": synthesis_s,
        },
        "hourly_30d_cm_year_4_symbols_one_call": all_symbols,
        "hourly_30d_cm_year_one_call_per_symbol_total": one_call_per_symbol,
        "hourly_cm_year_4_symbols_all_7_tenors": seven_tenors,
        "daily_30d_cm_year_4_symbols_from_hourly_tier": daily_4h,
        "result_rows": result_rows,
        "hourly_tier_stale_sampled_on_the_fly_first_call_ms": on_the_fly_ms,
        "hourly_tier_stale_rows": stale_rows,
        "materialise_hourly_tier_48_symbol_months_s": materialise_s,
        "symbol_months_written": len(written),
        "catalog_refresh_with_a_year_including_research_views": refresh,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
