"""How ingest and query costs grow with history length: 1 day, 1 month (30 days), 1 year (364).

Each size is its own warehouse home made of hard links to the newest N days of the year corpus
(bench/corpus.py), so the files are identical across sizes and only the history length changes.
Per size: catalog refresh, one live tick of 4 symbols (``ingest_outcomes`` with simulator bodies
for the next minute, catalog refresh included) and the research queries of bench/queries.py.
Writes bench/results/scaling_bench.json and the plot bench/results/scaling.png.

Run: ``.venv/bin/python -m bench.scaling_bench``.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from backquant.client import FetchOutcome, FetchResult
from backquant.headers import ResponseHeaders
from backquant.simulator import Market
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary
from bench.common import RESULTS_DIR, cache_dir, repeat, write_results
from bench.corpus import SEED, YEAR_LAST_DAY, YearCorpus, year_corpus
from bench.queries import queries
from storage import Warehouse, ingest_outcomes, refresh_catalog
from storage.catalog import cold_file
from storage.layout import TABLES, Layout
from storage.state import TierState, load_state, save_state

COMMAND = ".venv/bin/python -m bench.scaling_bench"
SIZES = {"1 day": 1, "1 month": 30, "1 year": 364}
TICKS = 10
PLOT = RESULTS_DIR / "scaling.png"


def _linked_home(year: YearCorpus, days: int, target: Path) -> Warehouse:
    if target.exists():
        shutil.rmtree(target)
    source = Layout(year.home)
    source_state = load_state(source)
    layout = Layout(target)
    state = TierState()
    committed = datetime(2026, 3, 2, tzinfo=UTC)
    for offset in range(days):
        day = YEAR_LAST_DAY - timedelta(days=offset)
        for symbol in SUPPORTED_SYMBOLS:
            for table in TABLES:
                destination = layout.cold_file(table, symbol, day)
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.link(cold_file(source, source_state, table, symbol, day), destination)
            state.mark_cold(symbol, day, committed)
    warehouse = Warehouse.open(target)
    save_state(layout, state)
    refresh_catalog(layout, state)
    return warehouse


def _outcomes(market: Market, minute: int) -> dict[str, FetchOutcome]:
    """The next day's ticks, fetched 5 s into each minute, as the client would hand them over."""
    start = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=minute, seconds=5)
    finished = start + timedelta(milliseconds=180)
    outcomes = {}
    for symbol in SUPPORTED_SYMBOLS:
        raw = market.expiry_summary_bytes(symbol, start)
        result = FetchResult(
            symbol, parse_expiry_summary(raw), raw, 200, ResponseHeaders(), start, finished, 1
        )
        outcomes[symbol] = FetchOutcome(symbol, start, finished, result=result)
    return outcomes


def measure(year: YearCorpus, days: int, target: Path) -> dict[str, Any]:
    warehouse = _linked_home(year, days, target)
    layout = warehouse.layout
    results: dict[str, Any] = {
        "days": days,
        "catalog_refresh": repeat(lambda: refresh_catalog(layout, load_state(layout)), 5),
    }
    for name, statement in queries("expiries", "latest_term_structure").items():
        results[name] = repeat(partial(warehouse.sql, statement), 3)
    market = Market(SEED)
    prepared = [_outcomes(market, minute) for minute in range(TICKS + 1)]
    ticks = iter(prepared)
    results["tick_ingest_outcomes"] = repeat(lambda: ingest_outcomes(warehouse, next(ticks)), TICKS)
    warehouse.close()
    shutil.rmtree(target)
    return results


def plot(results: dict[str, dict[str, Any]]) -> Path:
    days = [entry["days"] for entry in results.values()]
    series = {
        "tick (ingest_outcomes, 4 symbols)": "tick_ingest_outcomes",
        "catalog refresh": "catalog_refresh",
        "latest term structure": "latest_term_structure",
        "hourly ATM ~30d, whole history": "hourly_atm_nearest_30d_year",
        "full-scan aggregate": "full_scan_aggregate",
    }
    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, key in series.items():
        axis.plot(
            days, [entry[key]["p50_ms"] for entry in results.values()], marker="o", label=label
        )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(days, [f"{d} d" for d in days])
    axis.set_xlabel("history length (days of 1-minute ticks, 4 symbols)")
    axis.set_ylabel("median time (ms)")
    axis.set_title("termstore: cost vs history length")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(PLOT)
    plt.close(figure)
    return PLOT


def main() -> None:
    year = year_corpus()
    root = cache_dir() / "scaling"
    results = {label: measure(year, days, root / f"{days}d") for label, days in SIZES.items()}
    image = plot(results)
    path = write_results(
        "scaling_bench",
        COMMAND,
        {"sizes": results, "plot": str(image.relative_to(RESULTS_DIR.parent.parent))},
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
