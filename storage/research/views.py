# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""The research views, stored in the lake with the tables (``storage.lake_schema`` creates them).

All sit on ``expiries`` or on ``expiries_hourly``; see docs/data-dictionary.md for every column.
``expiries_hourly`` is the hourly sample (the rows of each symbol's last snapshot in every UTC
hour): the ``hourly_sample`` table for the symbol-days it holds (whole days, written by
``research_daily`` and by a rebuild), and the same sample taken on the fly from ``expiries`` for
every other symbol-day, today's ticks included.

The on-the-fly part must not read the sampled days, or the sample would save nothing: it is three
joins of ``expiries`` against small relations derived from the sample (before a symbol's first
sampled day, after its last, and the unsampled runs in between). DuckDB turns each join's bounds
into a filter on ``computed_at`` that skips the sampled days' files; written as one anti-join or
a LEFT JOIN, the same query reads every file of ``expiries``.
"""

from __future__ import annotations

from typing import Final

from backquant.symbols import SUPPORTED_SYMBOLS
from storage.research.cm_sql import (
    constant_maturity_sql,
    forward_listed_sql,
    forward_tenor_sql,
    shape_sql,
)
from storage.research.derived_sql import (
    MICROS_PER_HOUR,
    daily_constant_maturity_sql,
    daily_term_structure_sql,
    next_anchor_sql,
    opex_anchors_sql,
    sample_sql,
)

HOURLY_TABLE: Final[str] = "expiries_hourly"
HOURLY_SAMPLE_TABLE: Final[str] = "hourly_sample"

MICROS_PER_DAY: Final[int] = 24 * MICROS_PER_HOUR
_SYMBOLS: Final[str] = "[" + ", ".join(f"'{symbol}'" for symbol in SUPPORTED_SYMBOLS) + "]"

_SAMPLE_SPANS: Final[str] = f"""
    sampled_days AS (
        SELECT DISTINCT symbol, epoch_us(computed_at) // {MICROS_PER_DAY} AS day
        FROM {HOURLY_SAMPLE_TABLE}
    ),
    spans AS (
        SELECT listed.symbol, min(s.day) AS first_day, max(s.day) AS last_day
        FROM (SELECT unnest({_SYMBOLS}) AS symbol) AS listed
        LEFT JOIN sampled_days AS s ON listed.symbol = s.symbol
        GROUP BY listed.symbol
    ),
    before_first AS (
        SELECT symbol,
               coalesce(to_timestamp(first_day * 86400), 'infinity'::TIMESTAMPTZ) AS until
        FROM spans
    ),
    after_last AS (
        SELECT symbol, to_timestamp((last_day + 1) * 86400) AS since
        FROM spans WHERE last_day IS NOT NULL
    ),
    between_sampled AS (
        SELECT symbol, to_timestamp((day + 1) * 86400) AS since,
               to_timestamp(next_day * 86400) AS until
        FROM (SELECT symbol, day, lead(day) OVER (PARTITION BY symbol ORDER BY day) AS next_day
              FROM sampled_days)
        WHERE next_day > day + 1
    )"""

_UNSAMPLED_EXPIRIES: Final[str] = f"""(
    WITH {_SAMPLE_SPANS}
    SELECT e.* FROM expiries AS e
    JOIN before_first AS b ON e.symbol = b.symbol AND e.computed_at < b.until
    UNION ALL
    SELECT e.* FROM expiries AS e
    JOIN after_last AS a ON e.symbol = a.symbol AND e.computed_at >= a.since
    UNION ALL
    SELECT e.* FROM expiries AS e
    JOIN between_sampled AS g
      ON e.symbol = g.symbol AND e.computed_at >= g.since AND e.computed_at < g.until
)"""

HOURLY_VIEW_SQL: Final[str] = (
    f"SELECT * FROM {HOURLY_SAMPLE_TABLE} UNION ALL BY NAME "
    f"SELECT * FROM ({sample_sql(_UNSAMPLED_EXPIRIES, MICROS_PER_HOUR)})"
)

RESEARCH_VIEWS: Final[dict[str, str]] = {
    HOURLY_TABLE: HOURLY_VIEW_SQL,
    "constant_maturity": constant_maturity_sql("expiries"),
    "constant_maturity_hourly": constant_maturity_sql(HOURLY_TABLE, period_us=MICROS_PER_HOUR),
    "forward_vol_listed": forward_listed_sql("expiries"),
    "forward_vol_tenor": forward_tenor_sql("constant_maturity"),
    "term_structure_shape": shape_sql("constant_maturity"),
    "daily_term_structure": daily_term_structure_sql("expiries"),
    "daily_constant_maturity": daily_constant_maturity_sql("expiries"),
    "opex_anchors": opex_anchors_sql("expiries"),
    "next_anchor": next_anchor_sql("expiries"),
}
"""View name → its query (over tables and earlier views), in creation order."""

RESEARCH_VIEW_NAMES: Final[tuple[str, ...]] = tuple(RESEARCH_VIEWS)


def research_views() -> dict[str, str]:
    return dict(RESEARCH_VIEWS)
