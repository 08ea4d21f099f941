"""Import of the day corpus (5,760 responses): termstore's bulk import vs dlt vs the physical limit,
then the day's rebuild and its bytes in the lake.

Contenders, each on the same bytes in one process, timed end to end on a fresh directory:

- ``termstore_bulk``: ``storage.bulk.bulk_ingest`` (what ``termstore import`` runs) into a
  fresh default lake (SQLite catalog, data directory): JSON parse + contract validation of every
  body, duplicate check against ``responses``, normalisation with explicit schemas, one DuckLake
  transaction for the day (raw responses, snapshots, expiries, venue_oi, one ingest-log row per
  body). The clock covers opening the lake (loading the DuckDB extensions, creating the tables)
  to closing it. The input (each body with its fetch record, as the HTTP client hands it over)
  is built before the clock, as dlt's input (the bodies) is.
- ``dlt``: dlt's idiomatic pipeline into DuckDB: ``pipeline.run(parsed_dicts, table_name=...)``,
  letting dlt infer the schema and unpack nested lists into child tables.
- ``physical_limit``: no logic at all. polars' NDJSON reader over the same bytes, explode +
  unnest of the expiry rows, zstd Parquet write.
- ``termstore_live`` (once, for scale): the per-minute path, one ``ingest_outcomes``
  transaction per tick of 4 symbols, for the first ``--live-ticks`` ticks.

The three contenders run ``--rounds`` times, interleaved (a change of load touches them all
alike); the median round of each is kept. Then, in one lake holding the imported day: its
bytes per table after ``maintain()``, and ``rebuild_day`` of the whole day (4 symbols, 5,760
responses) and of one symbol-day.

Run: ``.venv/bin/python -m bench.ingest_bench [--rounds 3] [--live-ticks 240] [--skip-dlt]``.
Writes bench/results/ingest_bench.json. dlt comes from the ``bench`` dependency group (``make
bench`` installs it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from backquant.symbols import SUPPORTED_SYMBOLS
from bench.common import (
    bytes_per_row,
    directory_bytes,
    progress,
    repeat,
    table_sizes,
    timed,
    with_load,
    write_results,
)
from bench.corpus import DAY, day_corpus, fetched_bodies, tick_outcomes
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.bulk import FetchedBody, bulk_ingest
from storage.maintenance import maintain
from storage.reports import DUPLICATE, STORED

COMMAND = ".venv/bin/python -m bench.ingest_bench"
GOALS = {"termstore_bulk_vs_dlt_at_least": 50}


def termstore_bulk(fetched: list[FetchedBody], home: Path) -> dict[str, Any]:
    counts: dict[str, int] = {}
    inner: dict[str, float] = {}

    def run() -> None:
        warehouse = Warehouse.open(home)
        report = bulk_ingest(warehouse, fetched)
        inner["bulk_ingest_s"] = round(report.seconds, 3)
        counts.update({status: report.count(status) for status in (STORED, DUPLICATE)})
        warehouse.close()

    _, seconds = timed(run)
    if counts.get(STORED) != len(fetched):
        raise RuntimeError(f"the import did not store every body: {counts}")
    return {**_rates(len(fetched), seconds, home), **inner}


def termstore_live(bodies: list[bytes], home: Path, ticks: int) -> dict[str, Any]:
    prepared = tick_outcomes(bodies, ticks)

    def run() -> None:
        warehouse = Warehouse.open(home)
        with progress() as bar:
            task = bar.add_task("termstore live: ingest_outcomes per tick", total=len(prepared))
            for outcomes in prepared:
                report = ingest_outcomes(warehouse, outcomes)
                if len(report.stored) != len(outcomes):
                    raise RuntimeError(f"a tick did not store every symbol: {report.as_dict()}")
                bar.advance(task)
        warehouse.close()

    _, seconds = timed(run)
    return {**_rates(len(prepared) * len(SUPPORTED_SYMBOLS), seconds, home), "ticks": ticks}


def dlt_tables(database: Path) -> dict[str, int]:
    """Rows per table dlt created (its own bookkeeping tables left out)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        names = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'backquant' "
            "AND table_name NOT LIKE '_dlt%'"
        ).fetchall()
        counts = {}
        for (name,) in names:
            row = connection.execute(f'SELECT count(*) FROM backquant."{name}"').fetchone()
            counts[name] = int(row[0]) if row else 0
    return counts


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
    return {
        **_rates(len(bodies), seconds, root),
        "dlt_version": dlt.__version__,
        "tables": dlt_tables(root / "dlt.duckdb"),
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
    responses = ndjson.read_bytes().count(b"\n")
    return {**_rates(responses, seconds, root), "expiry_rows": rows}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time, plus every run's rate."""
    ordered = sorted(runs, key=lambda run: run["seconds"])
    return {
        **ordered[len(ordered) // 2],
        "rounds": len(runs),
        "responses_per_s_each_round": [run["responses_per_s"] for run in runs],
    }


def _rates(responses: int, seconds: float, root: Path) -> dict[str, Any]:
    return {
        "responses": responses,
        "seconds": round(seconds, 3),
        "responses_per_s": round(responses / seconds, 1),
        "bytes_on_disk": directory_bytes(root),
    }


def rebuild_and_bytes(fetched: list[FetchedBody], home: Path) -> dict[str, Any]:
    """The imported day's bytes per table after ``maintain()``; then the day rebuilt from
    ``responses`` (whole day, one symbol-day) and the tables after another ``maintain()``."""
    warehouse = Warehouse.open(home)
    bulk_ingest(warehouse, fetched)
    maintain(warehouse)
    with warehouse.writer() as connection:
        imported = table_sizes(connection)
    whole_day = repeat(lambda: rebuild_day(warehouse, DAY), 3, warmup=0)
    one_symbol = repeat(lambda: rebuild_day(warehouse, DAY, ["BTCUSDT"]), 3, warmup=0)
    maintenance = maintain(warehouse)
    with warehouse.writer() as connection:
        rebuilt = table_sizes(connection)
    warehouse.close()
    return {
        "lake_tables_after_import_and_maintenance": imported,
        "bytes": bytes_per_row(imported),
        "rebuild_day_4_symbols_5760_responses": whole_day,
        "rebuild_day_one_symbol_1440_responses": one_symbol,
        "maintenance_after_rebuilds": maintenance.as_dict(),
        "lake_tables_after_rebuilds_and_maintenance": rebuilt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live-ticks", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each contender")
    parser.add_argument("--skip-dlt", action="store_true")
    args = parser.parse_args()
    corpus = day_corpus()
    bodies = corpus.bodies()
    fetched = fetched_bodies(bodies)
    results: dict[str, Any] = {
        "corpus": {
            "responses": corpus.responses,
            "ndjson_bytes": corpus.size_bytes,
            "day": str(DAY),
        }
    }
    contenders: dict[str, Callable[[Path], dict[str, Any]]] = {
        "physical_limit": lambda target: physical_limit(corpus.path, target),
        "termstore_bulk": lambda target: termstore_bulk(fetched, target / "home"),
    }
    if not args.skip_dlt:
        contenders["dlt"] = lambda target: dlt_pipeline(bodies, target)
    with tempfile.TemporaryDirectory(prefix="termstore-ingest-bench-") as temp:
        root = Path(temp)
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
        with progress() as bar:
            task = bar.add_task("rounds of the contenders", total=args.rounds * len(contenders))
            for number in range(args.rounds):
                for name, contender in contenders.items():
                    target = root / f"{name}-{number}"
                    target.mkdir()
                    rounds[name].append(with_load(partial(contender, target)))
                    shutil.rmtree(target)
                    bar.advance(task)
        results.update({name: median_run(runs) for name, runs in rounds.items()})
        results["termstore_live"] = with_load(
            lambda: termstore_live(bodies, root / "live", args.live_ticks)
        )
        results["rebuild_and_bytes"] = with_load(
            lambda: rebuild_and_bytes(fetched, root / "rebuild")
        )
    limit = results["physical_limit"]["responses_per_s"]
    ratios: dict[str, Any] = {}
    for name in ("termstore_bulk", "termstore_live"):
        rate = results[name]["responses_per_s"]
        ratios[f"{name}_vs_limit"] = round(rate / limit, 4)
        if "dlt" in results:
            ratios[f"{name}_vs_dlt"] = round(rate / results["dlt"]["responses_per_s"], 2)
    if "dlt" in results:
        ratios["termstore_bulk_vs_dlt_each_round"] = [
            round(ours["responses_per_s"] / theirs["responses_per_s"], 2)
            for ours, theirs in zip(rounds["termstore_bulk"], rounds["dlt"], strict=True)
        ]
    results["ratios"] = ratios
    results["goals"] = GOALS
    command = f"{COMMAND} --rounds {args.rounds} --live-ticks {args.live_ticks}"
    path = write_results("ingest_bench", command, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
