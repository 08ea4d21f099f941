"""One tick of 4 symbols: normalise + commit in process, per lake setup, and over loopback HTTP.

- **Commit** (goal: p50 ≤ 40 ms local, ≤ 60 ms PostgreSQL catalog + S3 data): the day corpus's
  first ticks as fetch outcomes (JSON parse and contract validation, the client's work, done
  before the clock), each through ``ingest_outcomes``: checks, duplicate lookup in
  ``responses``, normalisation, one DuckLake transaction (responses + summary rows + ingest
  log). The setups of bench/lakes.py run side by side: every tick goes to each lake in turn
  (the order rotates), so a change of machine load touches all alike. The first tick of each
  lake creates it and is reported apart. Normalisation alone (``normalise_batch``) is timed on
  the same ticks, to split the tick into normalise and commit.
- **Loopback** (goal: p50 < 100 ms): the simulator in this process (its own thread) on a
  loopback port, its clock moved a minute per tick; ``ingest_once`` = 4 concurrent HTTP
  fetches + validation + the commit above, into the default local lake. Before the clock,
  each minute's bucket is fetched once so the simulator's market model (its work, not
  termstore's; a real API computes elsewhere) is cached; the fetch alone is timed too.

Run: ``.venv/bin/python -m bench.tick_bench [--ticks 200] [--loopback-ticks 120]
[--setups local,postgres_s3,...]``; writes bench/results/tick_bench.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from backquant.client import FetchOutcome, fetch_all_sync
from backquant.symbols import SUPPORTED_SYMBOLS
from bench.common import load_average, progress, summarise, write_results
from bench.corpus import day_corpus, tick_outcomes
from bench.lakes import LOCAL, SETUPS, Services, lake_config, running_services
from storage import Warehouse, ingest_once, ingest_outcomes
from storage.ingest import fetch_meta
from storage.normalise import normalise_batch
from tests.support.simulator import SIM_START, running_simulator

COMMAND = ".venv/bin/python -m bench.tick_bench"
GOALS = {"local_p50_ms_at_most": 40, "postgres_s3_p50_ms_at_most": 60, "loopback_p50_ms_below": 100}


def normalise_only(outcomes: dict[str, FetchOutcome]) -> None:
    """The normalisation a tick does, alone (storage.landing does the same per tick)."""
    fetched = [(s, o.result) for s, o in sorted(outcomes.items()) if o.result is not None]
    normalise_batch([(result.parsed, fetch_meta(symbol, result)) for symbol, result in fetched])


def _stored_all(outcomes: dict[str, FetchOutcome], warehouse: Warehouse) -> None:
    report = ingest_outcomes(warehouse, outcomes)
    if len(report.stored) != len(outcomes):
        raise RuntimeError(f"a tick did not store every symbol: {report.as_dict()}")


def commit_per_setup(
    prepared: list[dict[str, FetchOutcome]],
    setups: tuple[str, ...],
    services: Services,
    root: Path,
) -> tuple[dict[str, list[float]], dict[str, float], list[float], dict[str, Warehouse]]:
    """Every tick into every setup's fresh lake, in rotating order; returns the tick seconds
    per setup (first tick apart), the first tick's seconds, normalise-alone seconds, and the
    open warehouses (the caller closes them)."""
    warehouses = {
        setup: Warehouse.open(config=lake_config(setup, root / setup, services, f"tick-{setup}"))
        for setup in setups
    }
    seconds: dict[str, list[float]] = {setup: [] for setup in setups}
    first: dict[str, float] = {}
    normalise_seconds: list[float] = []
    with progress() as bar:
        task = bar.add_task(f"ticks into {len(setups)} lakes", total=len(prepared))
        for index, outcomes in enumerate(prepared):
            began = time.perf_counter()
            normalise_only(outcomes)
            normalise_seconds.append(time.perf_counter() - began)
            order = setups[index % len(setups) :] + setups[: index % len(setups)]
            for setup in order:
                began = time.perf_counter()
                _stored_all(outcomes, warehouses[setup])
                took = time.perf_counter() - began
                if index == 0:
                    first[setup] = took
                else:
                    seconds[setup].append(took)
            bar.advance(task)
    return seconds, first, normalise_seconds[1:], warehouses


def bench_commit(ticks: int, setups: tuple[str, ...], root: Path) -> dict[str, Any]:
    prepared = tick_outcomes(day_corpus().bodies(), ticks + 1)
    load_before = load_average()
    with running_services(setups) as services:
        seconds, first, normalise_seconds, warehouses = commit_per_setup(
            prepared, setups, services, root
        )
        rows = {
            setup: int(warehouse.sql("SELECT count(*) FROM expiries").item())
            for setup, warehouse in warehouses.items()
        }
        for warehouse in warehouses.values():
            warehouse.close()
    if len(set(rows.values())) != 1:
        raise RuntimeError(f"the setups stored different rows: {rows}")
    normalise = summarise(normalise_seconds)
    per_setup = {
        setup: {
            "ingest_outcomes_4_symbols": summarise(values),
            "commit_p50_ms_without_normalise": round(
                statistics.median(values) * 1000 - normalise["p50_ms"], 3
            ),
            "first_tick_creates_the_lake_ms": round(first[setup] * 1000, 1),
            "first_60_ticks_p50_ms": summarise(values[:60])["p50_ms"],
            "last_60_ticks_p50_ms": summarise(values[-60:])["p50_ms"],
        }
        for setup, values in seconds.items()
    }
    return {
        "ticks_timed": ticks,
        "expiry_rows_each_lake": rows[setups[0]],
        "normalise_4_symbols_alone": normalise,
        "setups": per_setup,
        "load_average_before_after": [load_before, load_average()],
    }


def bench_loopback(ticks: int, root: Path) -> dict[str, Any]:
    warehouse = Warehouse.open(root / "loopback")
    tick_seconds: list[float] = []
    fetch_seconds: list[float] = []
    load_before = load_average()
    with running_simulator(frozen_at=SIM_START, burst_limit_per_minute=10**9) as sim:
        config = sim.client_config()
        ingest_once(warehouse, config)  # creates the lake: not a tick's cost
        with progress() as bar:
            task = bar.add_task("ticks over loopback (ingest_once)", total=ticks)
            for minute in range(1, ticks + 1):
                sim.clock.set(SIM_START + timedelta(minutes=minute))
                fetch_all_sync(config)  # the simulator computes this minute's bucket
                began = time.perf_counter()
                fetch_all_sync(config)
                fetch_seconds.append(time.perf_counter() - began)
                began = time.perf_counter()
                report = ingest_once(warehouse, config)
                tick_seconds.append(time.perf_counter() - began)
                if len(report.stored) != len(SUPPORTED_SYMBOLS):
                    raise RuntimeError(f"a tick did not store every symbol: {report.as_dict()}")
                bar.advance(task)
    warehouse.close()
    return {
        "ingest_once_4_symbols": summarise(tick_seconds),
        "fetch_all_4_symbols_alone": summarise(fetch_seconds),
        "lake": LOCAL,
        "load_average_before_after": [load_before, load_average()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--loopback-ticks", type=int, default=120)
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args()
    setups = tuple(args.setups.split(","))
    with tempfile.TemporaryDirectory(prefix="termstore-tick-bench-") as temp:
        commit = bench_commit(args.ticks, setups, Path(temp) / "commit")
        loopback = bench_loopback(args.loopback_ticks, Path(temp))
    results = {"commit_in_process": commit, "tick_over_loopback": loopback, "goals": GOALS}
    command = f"{COMMAND} --ticks {args.ticks} --loopback-ticks {args.loopback_ticks}"
    path = write_results("tick_bench", command, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
