"""Warehouse speed: one tick, one symbol-day rebuild, latest_term_structure over a year.

Run with ``.venv/bin/python -m bench.warehouse_bench``; writes bench/results/warehouse_bench.json.
Bodies come from the simulator's market model (``Market(seed).expiry_summary_bytes``, no HTTP):
12 expiries for BTC/ETH, 6 for SOL, 4 for HYPE with 8 venues each, as served. The year of
history is synthesised: one real day of cold files per symbol and table, rebuilt through the real
code path and copied to 364 more day paths (the latest query reads only the latest files, so the
copies' timestamps do not matter; what matters is a catalog that lists 1,460 cold files per
table). The machine is shared, so the load average before and after each section is recorded.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backquant.client import FetchOutcome, FetchResult
from storage.schemas import (
    FetchMeta,
    IngestLogEntry,
    RejectedValueError,
    SummaryFrames,
    ingest_log_frame,
)
from backquant.headers import ResponseHeaders
from backquant.simulator.market import Market
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary
from bench.common import repeat, summarise, timed, write_results
from bench.corpus import DAY as CORPUS_DAY
from bench.corpus import day_corpus
from bench.corpus import fetch_meta as corpus_fetch_meta
from bench.ingest_bench import corpus_ticks
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.archive import ArchiveRecord
from storage.atomic import WriteBatch
from storage.bulk import FetchedBody, bulk_ingest
from storage.catalog import build_catalog_sql, cold_file, refresh_catalog, refresh_catalog_report
from storage.layout import TABLES
from storage.normalise import normalise_each
from storage.state import load_state, save_state
from storage.tick_journal import clear_journal, write_journal
from storage.tiers import update_latest, write_hot_log, write_hot_tick
from storage.workers import start_workers, stop_workers

START = datetime(2025, 3, 3, 0, 0, 30, tzinfo=UTC)
MARKET = Market(seed=7)
HEADERS = ResponseHeaders(ratelimit_limit=60, ratelimit_remaining=59, request_id="req_bench")


def load() -> float:
    return round(os.getloadavg()[0], 2)


def fetch_meta(symbol: str, at: datetime) -> FetchMeta:
    started = at + timedelta(seconds=3)
    return FetchMeta(symbol, 200, started, started + timedelta(milliseconds=150), 1, HEADERS)


def outcome(symbol: str, at: datetime) -> FetchOutcome:
    raw = MARKET.expiry_summary_bytes(symbol, at)
    fetch = fetch_meta(symbol, at)
    result = FetchResult(
        symbol,
        parse_expiry_summary(raw),
        raw,
        200,
        HEADERS,
        fetch.started_at,
        fetch.finished_at,
        1,
    )
    return FetchOutcome(symbol, fetch.started_at, fetch.finished_at, result=result)


def normalise_and_write(warehouse: Warehouse, outcomes: dict[str, FetchOutcome]) -> None:
    """What a tick does per symbol, without the lock, state and catalog: normalise, journal the
    log rows, archive, then hot files, latest file and ingest-log row committed as one batch,
    and the journal removed (as storage.ingest)."""
    layout = warehouse.layout
    normalised = zip(outcomes.items(), normalise_tick(outcomes), strict=True)
    entries = [
        IngestLogEntry(
            symbol, fetched.started_at, fetched.finished_at, "stored", None, 200, None, 1, None
        )
        for symbol, fetched in outcomes.items()
    ]
    write_journal(layout, ingest_log_frame(entries))
    batch = WriteBatch()
    for ((symbol, fetched), frames), entry in zip(normalised, entries, strict=True):
        result = fetched.result
        assert result is not None and isinstance(frames, SummaryFrames)
        fetch = fetch_meta(symbol, result.started_at - timedelta(seconds=3))
        computed_at = frames.snapshots.item(0, "computed_at")
        warehouse.archive.write(ArchiveRecord(symbol, computed_at, fetch, result.raw))
        write_hot_tick(layout, symbol, computed_at, frames, batch)
        update_latest(layout, symbol, computed_at, frames.expiries, batch)
        write_hot_log(layout, symbol, fetched.started_at, ingest_log_frame([entry]), batch)
    batch.commit()
    clear_journal(layout)


def normalise_tick(outcomes: dict[str, FetchOutcome]) -> list[SummaryFrames | RejectedValueError]:
    """The four responses normalised in one batch, as storage.ingest does."""
    items = []
    for symbol, fetched in outcomes.items():
        assert fetched.result is not None
        fetch = fetch_meta(symbol, fetched.result.started_at - timedelta(seconds=3))
        items.append((fetched.result.parsed, fetch))
    return normalise_each(items)


def tick_outcomes(minute: int) -> dict[str, FetchOutcome]:
    at = START + timedelta(minutes=minute)
    return {symbol: outcome(symbol, at) for symbol in SUPPORTED_SYMBOLS}


def bench_tick(root: Path, ticks: int = 60) -> dict[str, Any]:
    # Outcome construction (JSON parse + validation) is the client's work: prebuilt, untimed.
    prepared = [tick_outcomes(minute) for minute in range(2 * ticks)]
    load_before = load()
    plain = Warehouse.open(root / "tick-write")
    write_seconds = []
    normalise_seconds = []
    for outcomes in prepared[:ticks]:
        begin = time.perf_counter()
        normalise_tick(outcomes)
        normalise_seconds.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        normalise_and_write(plain, outcomes)
        write_seconds.append(time.perf_counter() - begin)
    warehouse = Warehouse.open(root / "tick")
    total_seconds = []
    for outcomes in prepared[ticks:]:
        begin = time.perf_counter()
        ingest_outcomes(warehouse, outcomes)
        total_seconds.append(time.perf_counter() - begin)
    refresh = repeat(lambda: refresh_catalog(warehouse.layout, load_state(warehouse.layout)), 30)
    return {
        "normalise_4_symbols": summarise(normalise_seconds),
        "normalise_and_write_4_symbols": summarise(write_seconds),
        "ingest_outcomes_4_symbols_including_catalog_refresh": summarise(total_seconds),
        f"catalog_refresh_alone_hot_day_of_{ticks}_ticks": refresh,
        "load_average_before_after": [load_before, load()],
    }


def bench_rebuild(root: Path) -> dict[str, Any]:
    warehouse = Warehouse.open(root / "rebuild")
    day = START.date()
    for minute in range(1440):
        at = START + timedelta(minutes=minute)
        raw = MARKET.expiry_summary_bytes("BTCUSDT", at)
        warehouse.archive.write(ArchiveRecord("BTCUSDT", at, fetch_meta("BTCUSDT", at), raw))
    load_before = load()
    report, from_loose = timed(lambda: rebuild_day(warehouse, day, ["BTCUSDT"]))
    again = repeat(lambda: rebuild_day(warehouse, day, ["BTCUSDT"]), 5, warmup=0)
    return {
        "responses": report.days[0].responses,
        "rows": report.days[0].rows_written,
        "first_rebuild_from_loose_records_ms": round(from_loose * 1000, 3),
        "rebuild_again_from_pack": again,
        "load_average_before_after": [load_before, load()],
        "four_symbols": bench_rebuild_four_symbols(root),
    }


def bench_rebuild_four_symbols(root: Path) -> dict[str, Any]:
    """A whole day (the day corpus: 5,760 responses, four symbol-days) rebuilt in this process
    alone, with one process per CPU started afresh by each rebuild, and with those workers
    already running (a long-lived process, storage/workers.py)."""
    warehouse = Warehouse.open(root / "rebuild-day")
    fetched = [
        FetchedBody(corpus_fetch_meta(symbol, at), raw)
        for at, by_symbol in corpus_ticks(day_corpus().bodies())
        for symbol, raw in by_symbol.items()
    ]
    bulk_ingest(warehouse, fetched)
    load_before = load()
    one = repeat(lambda: rebuild_day(warehouse, CORPUS_DAY, workers=1), 3, warmup=0)
    load_between = load()
    starting = []
    for _ in range(3):
        stop_workers()
        _, seconds = timed(lambda: rebuild_day(warehouse, CORPUS_DAY, workers=os.cpu_count()))
        starting.append(seconds)
    wait(start_workers().started)
    running = repeat(
        lambda: rebuild_day(warehouse, CORPUS_DAY, workers=os.cpu_count()), 3, warmup=0
    )
    stop_workers()
    warehouse.close()
    return {
        "responses": len(fetched),
        "one_process": one,
        "worker_processes_starting": summarise(starting),
        "worker_processes_running": running,
        "cpus": os.cpu_count(),
        "load_average_before_between_after": [load_before, load_between, load()],
    }


def synthesise_year(home: Path) -> tuple[Warehouse, datetime]:
    warehouse = Warehouse.open(home)
    last = START + timedelta(days=364)
    midnight = last.replace(hour=0, minute=0)
    for symbol in SUPPORTED_SYMBOLS:
        for minute in range(1440):
            at = midnight + timedelta(minutes=minute, seconds=30)
            raw = MARKET.expiry_summary_bytes(symbol, at)
            warehouse.archive.write(ArchiveRecord(symbol, at, fetch_meta(symbol, at), raw))
    rebuild_day(warehouse, last.date())
    state = load_state(warehouse.layout)
    for symbol in SUPPORTED_SYMBOLS:
        for table in TABLES:
            source = cold_file(warehouse.layout, state, table, symbol, last.date())
            for offset in range(1, 365):
                day = last.date() - timedelta(days=offset)
                shutil.copyfile(source, warehouse.layout.cold_file(table, symbol, day))
        for offset in range(1, 365):
            state.mark_cold(symbol, last.date() - timedelta(days=offset), datetime.now(UTC))
    save_state(warehouse.layout, state)
    return warehouse, last


def bench_latest(root: Path) -> dict[str, Any]:
    home = root / "year"
    (warehouse, last), synth_s = timed(lambda: synthesise_year(home))
    load_before = load()
    refresh = repeat(lambda: refresh_catalog(warehouse.layout, load_state(warehouse.layout)), 10)
    # Ticks of the day after the year, outcomes prebuilt (one warm-up, ten timed).
    upcoming = iter([tick_outcomes(365 * 1440 + minute) for minute in range(11)])
    tick = repeat(lambda: ingest_outcomes(warehouse, next(upcoming)), 10)
    # A tick's files, then the refresh on its own: what it costs and which views it rebinds.
    more = iter([tick_outcomes(365 * 1440 + 11 + minute) for minute in range(11)])
    recreated: set[str] = set()
    refresh_seconds = []
    build_seconds = []
    for _ in range(11):
        normalise_and_write(warehouse, next(more))
        with warehouse.lock():
            state = load_state(warehouse.layout)
            begin = time.perf_counter()
            build_catalog_sql(warehouse.layout, state)
            build_s = time.perf_counter() - begin
            begin = time.perf_counter()
            report = refresh_catalog_report(warehouse.layout, state)
            refresh_s = time.perf_counter() - begin
        build_seconds.append(build_s)
        refresh_seconds.append(refresh_s)
        recreated.update(report.recreated)
    query = "SELECT * FROM latest_term_structure"
    reader = Warehouse.open(home)
    rows, first_query_s = timed(lambda: reader.sql(query).height)
    warm = repeat(lambda: reader.sql(query), 200)

    def fresh_connection() -> None:
        connection = reader.connect()
        connection.sql(query).pl()
        connection.close()

    fresh = repeat(fresh_connection, 50)
    one_day = repeat(
        lambda: reader.sql(
            "SELECT count(*) FROM expiries WHERE symbol = 'BTCUSDT' "
            f"AND computed_at >= TIMESTAMPTZ '{last.date()}'"
        ),
        5,
    )
    reader.close()
    return {
        "cold_files": sum(1 for _ in (home / "cold").rglob("*.parquet")),
        "synthesis_s": round(synth_s, 3),
        "latest_rows": rows,
        "catalog_refresh_with_a_year": refresh,
        "ingest_outcomes_4_symbols_with_a_year": tick,
        "catalog_refresh_after_a_tick_with_a_year": summarise(refresh_seconds[1:]),
        "build_catalog_sql_alone_with_a_year": summarise(build_seconds[1:]),
        "views_recreated_by_a_tick": sorted(recreated),
        "latest_first_query_in_new_handle_ms": round(first_query_s * 1000, 3),
        "latest_term_structure_reused_connection": warm,
        "latest_term_structure_new_connection_each_time": fresh,
        "expiries_full_scan_filter_one_day_over_a_year": one_day,
        "load_average_before_after": [load_before, load()],
    }


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="termstore-bench-") as temp:
        root = Path(temp)
        results: dict[str, Any] = {
            "bodies": "simulator market model, seed 7",
            "tick": bench_tick(root),
            "rebuild_symbol_day": bench_rebuild(root),
            "latest_with_a_year": bench_latest(root),
        }
    results["wall_s"] = round(time.perf_counter() - started, 1)
    command = " ".join([".venv/bin/python -m bench.warehouse_bench", *sys.argv[1:]])
    target = write_results("warehouse_bench", command, results)
    print(target.read_text())


if __name__ == "__main__":
    main()
