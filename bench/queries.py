"""The research queries the benchmarks time, each with a naive equivalent over raw rows.

Each timed query is what a user runs (a view, or the Python API of storage.research.api); its
naive twin computes the same answer the slow way: straight from ``expiries`` (no hourly sample,
no ``latest_term_structure`` join on ``snapshots``), with the research layer's own formulas
(storage/research/cm_sql.py, derived_sql.py). The query bench times both on the year and checks
they agree; the reduced test checks it on a small lake.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import polars as pl
from polars.testing import assert_frame_equal

from storage import Warehouse
from storage.research import api
from storage.research.cm_sql import constant_maturity_sql
from storage.research.derived_sql import (
    MICROS_PER_HOUR,
    UTC_DAY,
    sample_sql,
)

MICROS_PER_DAY: Final[int] = 24 * MICROS_PER_HOUR
CM_ORDER: Final[str] = "ORDER BY symbol, computed_at, tenor_days"
Query = Callable[[Warehouse], pl.DataFrame]


@dataclass(frozen=True)
class Window:
    """The span the queries cover: ``start`` inclusive, ``end`` exclusive (UTC)."""

    start: datetime
    end: datetime

    def raw(self, symbol: str | None = None) -> str:
        """The window's raw ``expiries`` rows, as a parenthesised query."""
        chosen = f" AND symbol = '{symbol}'" if symbol else ""
        return (
            f"(SELECT * FROM expiries WHERE computed_at >= TIMESTAMPTZ '{self.start.isoformat()}' "
            f"AND computed_at < TIMESTAMPTZ '{self.end.isoformat()}'{chosen})"
        )


@dataclass(frozen=True)
class BenchQuery:
    """A query users run and its naive twin over raw rows (None: no twin)."""

    run: Query
    naive: Query | None
    what: str


def _sql(statement: str) -> Query:
    return lambda warehouse: warehouse.sql(statement)


def _cm_from_raw(window: Window, symbol: str | None, every_us: int) -> Query:
    """30-day constant maturity over a sample taken from raw rows."""
    sampled = f"({sample_sql(window.raw(symbol), every_us)})"
    query = constant_maturity_sql(sampled, (30,), period_us=every_us)
    return _sql(f"SELECT * FROM ({query}) {CM_ORDER}")


def bench_queries(window: Window) -> dict[str, BenchQuery]:
    start, end = window.start, window.end
    return {
        "latest_term_structure": BenchQuery(
            _sql("SELECT * FROM latest_term_structure"),
            _sql(
                "SELECT * FROM expiries QUALIFY computed_at = max(computed_at) "
                "OVER (PARTITION BY symbol) ORDER BY symbol, position"
            ),
            "the newest snapshot's expiries of each symbol (view)",
        ),
        "hourly_cm_30d_btc": BenchQuery(
            lambda w: api.constant_maturity(w, "BTCUSDT", start, end, tenors=(30,), every="1h"),
            _cm_from_raw(window, "BTCUSDT", MICROS_PER_HOUR),
            "api.constant_maturity(BTCUSDT, tenors=(30,), every='1h') over the window; naive: "
            "the same formulas over an hourly sample taken from raw expiries",
        ),
        "hourly_cm_30d_4_symbols": BenchQuery(
            lambda w: api.constant_maturity(w, None, start, end, tenors=(30,), every="1h"),
            None,
            "the same for the four symbols in one call",
        ),
        "hourly_cm_7_tenors_4_symbols": BenchQuery(
            lambda w: api.constant_maturity(w, None, start, end, every="1h"),
            None,
            "api.constant_maturity at the 7 standard tenors, four symbols, hourly",
        ),
        "daily_cm_4_symbols": BenchQuery(
            lambda w: api.daily_constant_maturity(w, None, start, end),
            _sql(
                f"SELECT * FROM daily_constant_maturity WHERE day >= DATE '{start.date()}' "
                f"AND day < DATE '{end.date()}' ORDER BY symbol, day, tenor_days"
            ),
            "api.daily_constant_maturity (per day and tenor: OHLC of CM ATM IV, closing 25d "
            "wings, RR, BF, skew, over every snapshot); naive: the daily_constant_maturity view",
        ),
        "daily_cm_30d_from_hourly_sample": BenchQuery(
            lambda w: api.constant_maturity(w, None, start, end, tenors=(30,), every="1d"),
            _cm_from_raw(window, None, MICROS_PER_DAY),
            "api.constant_maturity(tenors=(30,), every='1d'): each day's last hourly sample "
            "(ATM, 25d put/call IV, skew at 30d); naive: sampled from raw expiries",
        ),
        "daily_skew_summary_raw": BenchQuery(
            _sql(
                f"SELECT symbol, {UTC_DAY} AS day, avg(skew_25d) AS skew_mean, "
                "min(skew_25d) AS skew_min, max(skew_25d) AS skew_max, avg(atm_iv) AS atm_mean "
                f"FROM {window.raw()} WHERE dte BETWEEN 20 AND 45 GROUP BY ALL ORDER BY ALL"
            ),
            None,
            "avg/min/max 25d skew per day of the listed expiries 20-45 days out, raw rows",
        ),
    }


def same_rows(left: pl.DataFrame, right: pl.DataFrame) -> bool:
    """Equal frames, floats to 1e-9 relative (the same SQL may sum in another order)."""
    try:
        assert_frame_equal(left, right, check_exact=False, rel_tol=1e-9)
    except AssertionError:
        return False
    return True


def compare_with_naive(warehouse: Warehouse, window: Window) -> dict[str, dict[str, object]]:
    """Every query with a naive twin: both run, rows counted, answers compared."""
    compared: dict[str, dict[str, object]] = {}
    for name, query in bench_queries(window).items():
        if query.naive is None:
            continue
        ours, naive = query.run(warehouse), query.naive(warehouse)
        compared[name] = {"rows": ours.height, "same_rows_as_naive": same_rows(ours, naive)}
    return compared
