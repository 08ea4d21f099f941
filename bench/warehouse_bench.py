"""Warehouse speed: one tick, one symbol-day rebuild, latest_term_structure over a year.

Run with ``.venv/bin/python -m bench.warehouse_bench``; writes bench/results/warehouse_bench.json.
Bodies are hand-built (tests/support/bodies.py) at realistic shapes: 11 expiries for BTC/ETH,
7 for SOL, 5 for HYPE, 8 venues each. The year of history is synthesised: one realistic day
of cold files per symbol and table, written once with polars and copied to 365 day paths (the
latest query reads only the latest files, so the copies' timestamps do not matter; what matters
is a catalog that lists 1,460 cold files per table).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from backquant.client import FetchOutcome, FetchResult
from backquant.expiry_calendar import format_token
from backquant.frames import FetchMeta
from backquant.headers import ResponseHeaders
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.archive import ArchiveRecord
from storage.catalog import refresh_catalog
from storage.layout import TABLES
from storage.state import load_state, save_state
from tests.support.bodies import summary_document

EXPIRY_COUNTS = {"BTCUSDT": 11, "ETHUSDT": 11, "SOLUSDT": 7, "HYPEUSDT": 5}
OFFSETS = (1, 2, 3, 4, 11, 18, 25, 53, 115, 207, 298)
START = datetime(2025, 3, 3, 0, 0, 30, tzinfo=UTC)
RESULTS = Path(__file__).parent / "results" / "warehouse_bench.json"


def raw_body(symbol: str, computed_at: datetime) -> bytes:
    tokens = tuple(
        format_token(computed_at.date() + timedelta(days=offset))
        for offset in OFFSETS[: EXPIRY_COUNTS[symbol]]
    )
    return orjson.dumps(summary_document(symbol, computed_at=computed_at, tokens=tokens))


def outcome(symbol: str, computed_at: datetime) -> FetchOutcome:
    raw = raw_body(symbol, computed_at)
    started = computed_at + timedelta(seconds=3)
    finished = started + timedelta(milliseconds=150)
    result = FetchResult(
        symbol, parse_expiry_summary(raw), raw, 200, ResponseHeaders(), started, finished, 1
    )
    return FetchOutcome(symbol, started, finished, result=result)


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


def bench_tick(root: Path) -> dict[str, object]:
    warehouse = Warehouse.open(root / "tick")
    ticks = iter(range(10_000))

    def one_tick() -> None:
        at = START + timedelta(minutes=next(ticks))
        ingest_outcomes(warehouse, {s: outcome(s, at) for s in SUPPORTED_SYMBOLS})

    # Outcome construction (JSON parse + pydantic validation) is the client's work: prebuild.
    total = timings(one_tick, 60)
    refresh = timings(lambda: refresh_catalog(warehouse.layout, load_state(warehouse.layout)), 30)
    return {
        "ingest_outcomes_4_symbols_including_catalog_refresh": total,
        "catalog_refresh_alone_hot_day_of_60_ticks": refresh,
        "note": "includes building the FetchOutcome (JSON parse + validation) of 4 bodies",
    }


def bench_rebuild(root: Path) -> dict[str, object]:
    warehouse = Warehouse.open(root / "rebuild")
    day = START.date()
    for minute in range(1440):
        at = START + timedelta(minutes=minute)
        raw = raw_body("BTCUSDT", at)
        fetch = FetchMeta(
            "BTCUSDT",
            200,
            at + timedelta(seconds=3),
            at + timedelta(seconds=3.2),
            1,
            ResponseHeaders(),
        )
        warehouse.archive.write(ArchiveRecord("BTCUSDT", at, fetch, raw))
    first = time.perf_counter()
    report = rebuild_day(warehouse, day, ["BTCUSDT"])
    from_loose = time.perf_counter() - first
    again = timings(lambda: rebuild_day(warehouse, day, ["BTCUSDT"]), 3)
    return {
        "responses": report.days[0].responses,
        "rows": report.days[0].rows_written,
        "first_rebuild_from_loose_records_s": from_loose,
        "rebuild_again_from_pack": again,
    }


def bench_latest(root: Path) -> dict[str, object]:
    home = root / "year"
    warehouse = Warehouse.open(home)
    last = START + timedelta(days=364)
    # One realistic day per symbol through the real code path, then copies for the year.
    for symbol in SUPPORTED_SYMBOLS:
        for minute in range(0, 1440):
            at = last.replace(hour=0, minute=0) + timedelta(minutes=minute, seconds=30)
            fetch = FetchMeta(symbol, 200, at, at + timedelta(seconds=0.2), 1, ResponseHeaders())
            warehouse.archive.write(ArchiveRecord(symbol, at, fetch, raw_body(symbol, at)))
    rebuild_day(warehouse, last.date())
    state = load_state(warehouse.layout)
    copy_started = time.perf_counter()
    for symbol in SUPPORTED_SYMBOLS:
        for table in TABLES:
            source = warehouse.layout.cold_file(table, symbol, last.date())
            for offset in range(1, 365):
                day = last.date() - timedelta(days=offset)
                target = warehouse.layout.cold_file(table, symbol, day)
                shutil.copyfile(source, target)
        for offset in range(1, 365):
            state.mark_cold(symbol, last.date() - timedelta(days=offset), datetime.now(UTC))
    save_state(warehouse.layout, state)
    synth_s = time.perf_counter() - copy_started
    refresh = timings(lambda: refresh_catalog(warehouse.layout, load_state(warehouse.layout)), 5)
    cold_files = sum(1 for _ in (home / "cold").rglob("*.parquet"))
    query = "SELECT * FROM latest_term_structure"
    reader = Warehouse.open(home)
    cold_open = time.perf_counter()
    rows = reader.sql(query).height
    first_query_ms = (time.perf_counter() - cold_open) * 1000
    warm = timings(lambda: reader.sql(query), 200)

    def fresh_connection() -> None:
        connection = reader.connect()
        connection.sql(query).pl()
        connection.close()

    fresh = timings(fresh_connection, 50)
    one_day = timings(
        lambda: reader.sql(
            "SELECT count(*) FROM expiries WHERE symbol = 'BTCUSDT' "
            f"AND computed_at >= TIMESTAMPTZ '{last.date()}'"
        ),
        5,
    )
    return {
        "cold_files": cold_files,
        "synthesis_s": synth_s,
        "latest_rows": rows,
        "catalog_refresh_with_a_year": refresh,
        "latest_first_query_in_new_handle_ms": first_query_ms,
        "latest_term_structure_reused_connection": warm,
        "latest_term_structure_new_connection_each_time": fresh,
        "expiries_full_scan_filter_one_day_over_a_year": one_day,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="termstore-bench-") as temp:
        root = Path(temp)
        results = {
            "measured_at": datetime.now(UTC).isoformat(),
            "tick": bench_tick(root),
            "rebuild_symbol_day": bench_rebuild(root),
            "latest_with_a_year": bench_latest(root),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
