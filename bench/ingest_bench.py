"""Ingest throughput of the day corpus (5,760 responses): termstore vs dlt vs the physical limit.

Contenders, each on the same bytes, timed end to end on a fresh directory:

- ``termstore_backfill``: the bulk write path. Per body: JSON parse + contract validation
  (``parse_expiry_summary``) and a durable archive record; then ``rebuild_day`` for the day
  (normalise with explicit schemas, one sorted zstd file per table × symbol, archive packing,
  catalog refresh).
- ``termstore_live``: the per-minute path the schedule runs. One ``ingest_outcomes`` per tick of
  4 symbols (validation, quarantine checks, archive, hot files, latest file, ingest-log row,
  catalog refresh), for the first ``--live-ticks`` ticks of the day.
- ``dlt``: dlt's idiomatic pipeline into DuckDB: ``pipeline.run(parsed_dicts, table_name=...)``,
  letting dlt infer the schema and unpack nested lists into child tables.
- ``physical_limit``: no logic at all. polars' native NDJSON reader over the same bytes,
  explode + unnest of the expiry rows, zstd Parquet write.

Run: ``.venv/bin/python -m bench.ingest_bench [--live-ticks 1440] [--skip-dlt]``.
Writes bench/results/ingest_bench.json. dlt comes from the ``bench`` dependency group
(``make bench`` installs it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from backquant.client import FetchOutcome, FetchResult
from backquant.frames import summary_key
from backquant.headers import ResponseHeaders
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary
from bench.common import directory_bytes, progress, timed, write_results
from bench.corpus import DAY, FETCH_OFFSET, day_corpus, fetch_meta
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.archive import ArchiveRecord
from storage.layout import TABLES

COMMAND = ".venv/bin/python -m bench.ingest_bench"


def _ticks(bodies: list[bytes]) -> Iterator[tuple[datetime, dict[str, bytes]]]:
    """The corpus is tick-major: 4 consecutive bodies per minute, in SUPPORTED_SYMBOLS order."""
    width = len(SUPPORTED_SYMBOLS)
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) + FETCH_OFFSET
    for minute in range(len(bodies) // width):
        chunk = bodies[minute * width : (minute + 1) * width]
        yield start + timedelta(minutes=minute), dict(zip(SUPPORTED_SYMBOLS, chunk, strict=True))


def termstore_backfill(bodies: list[bytes], home: Path) -> dict[str, Any]:
    phases: dict[str, float] = {}

    def run() -> None:
        began = time.perf_counter()
        warehouse = Warehouse.open(home)
        with progress() as bar:
            task = bar.add_task("termstore backfill: validate + archive", total=len(bodies))
            for at, by_symbol in _ticks(bodies):
                for symbol, raw in by_symbol.items():
                    parsed = parse_expiry_summary(raw)
                    computed_at = summary_key(parsed.response, symbol)
                    record = ArchiveRecord(symbol, computed_at, fetch_meta(symbol, at), raw)
                    warehouse.archive.write(record)
                bar.advance(task, len(by_symbol))
        phases["validate_and_archive_s"] = round(time.perf_counter() - began, 3)
        began = time.perf_counter()
        rebuild_day(warehouse, DAY)
        phases["rebuild_day_s"] = round(time.perf_counter() - began, 3)
        warehouse.close()

    _, seconds = timed(run)
    return {**_rates(len(bodies), seconds, home), "phases": phases}


def _outcome(symbol: str, at: datetime, raw: bytes) -> FetchOutcome:
    finished = at + timedelta(milliseconds=180)
    result = FetchResult(
        symbol, parse_expiry_summary(raw), raw, 200, ResponseHeaders(), at, finished, 1
    )
    return FetchOutcome(symbol, at, finished, result=result)


def termstore_live(bodies: list[bytes], home: Path, ticks: int) -> dict[str, Any]:
    chosen = list(_ticks(bodies))[:ticks]

    def run() -> None:
        warehouse = Warehouse.open(home)
        with progress() as bar:
            task = bar.add_task("termstore live: ingest_outcomes per tick", total=len(chosen))
            for at, by_symbol in chosen:
                outcomes = {s: _outcome(s, at, raw) for s, raw in by_symbol.items()}
                report = ingest_outcomes(warehouse, outcomes)
                if len(report.stored) != len(by_symbol):
                    raise RuntimeError(f"tick {at} did not store every symbol: {report.as_dict()}")
                bar.advance(task)
        warehouse.close()

    _, seconds = timed(run)
    responses = len(chosen) * len(SUPPORTED_SYMBOLS)
    return {**_rates(responses, seconds, home), "ticks": len(chosen)}


def dlt_pipeline(bodies: list[bytes], root: Path) -> dict[str, Any]:
    import dlt

    def run() -> Any:
        pipeline = dlt.pipeline(
            pipeline_name="bench_expiry_summary",
            destination=dlt.destinations.duckdb(str(root / "dlt.duckdb")),
            dataset_name="backquant",
            pipelines_dir=str(root / "pipelines"),
            progress="log",
        )
        return pipeline.run(
            (orjson.loads(raw) for raw in bodies),
            table_name="expiry_summary",
            write_disposition="append",
        )

    info, seconds = timed(run)
    import duckdb

    with duckdb.connect(str(root / "dlt.duckdb"), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'backquant' "
            "AND table_name NOT LIKE '_dlt%'"
        ).fetchall()
        rows = {
            name: connection.execute(f'SELECT count(*) FROM backquant."{name}"').fetchone()[0]  # type: ignore[index]
            for (name,) in tables
        }
    return {
        **_rates(len(bodies), seconds, root),
        "dlt_version": dlt.__version__,
        "tables": rows,
        "load_packages": len(info.load_packages),
    }


def physical_limit(ndjson: Path, root: Path) -> dict[str, Any]:
    def run() -> int:
        frame = pl.read_ndjson(ndjson.read_bytes())
        snapshots = frame.select(
            pl.col("meta").struct.unnest(), pl.col("data").struct.field("anchor_count")
        )
        expiries = (
            frame.select(
                pl.col("meta").struct.field("symbol", "computed_at"),
                pl.col("data").struct.field("expiries"),
            )
            .explode("expiries")
            .unnest("expiries")
        )
        snapshots.write_parquet(root / "snapshots.parquet", compression="zstd")
        expiries.write_parquet(root / "expiries.parquet", compression="zstd")
        return expiries.height

    rows, seconds = timed(run)
    return {**_rates(frame_count(ndjson), seconds, root), "expiry_rows": rows}


def frame_count(ndjson: Path) -> int:
    return ndjson.read_bytes().count(b"\n")


def _rates(responses: int, seconds: float, root: Path) -> dict[str, Any]:
    return {
        "responses": responses,
        "seconds": round(seconds, 3),
        "responses_per_s": round(responses / seconds, 1),
        "bytes_on_disk": directory_bytes(root),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live-ticks", type=int, default=1440)
    parser.add_argument("--skip-dlt", action="store_true")
    args = parser.parse_args()
    corpus = day_corpus()
    bodies = corpus.bodies()
    results: dict[str, Any] = {
        "corpus": {
            "responses": corpus.responses,
            "ndjson_bytes": corpus.size_bytes,
            "day": str(DAY),
        },
    }
    with tempfile.TemporaryDirectory(prefix="termstore-ingest-bench-") as temp:
        root = Path(temp)
        for name in ("limit", "backfill", "live", "dlt"):
            (root / name).mkdir()
        results["physical_limit"] = physical_limit(corpus.path, root / "limit")
        results["termstore_backfill"] = termstore_backfill(bodies, root / "backfill")
        cold = root / "backfill" / "cold"
        results["termstore_backfill"]["cold_bytes"] = {
            table: directory_bytes(cold / table) for table in TABLES
        }
        results["termstore_live"] = termstore_live(bodies, root / "live", args.live_ticks)
        shutil.rmtree(root / "live")
        if not args.skip_dlt:
            results["dlt"] = dlt_pipeline(bodies, root / "dlt")
    limit = results["physical_limit"]["responses_per_s"]
    ratios: dict[str, float] = {}
    for name in ("termstore_backfill", "termstore_live"):
        rate = results[name]["responses_per_s"]
        ratios[f"{name}_vs_limit"] = round(rate / limit, 4)
        if "dlt" in results:
            ratios[f"{name}_vs_dlt"] = round(rate / results["dlt"]["responses_per_s"], 2)
    results["ratios"] = ratios
    results["goals"] = {"vs_dlt_at_least": 50, "vs_limit_at_least": 0.5}
    path = write_results("ingest_bench", COMMAND, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
