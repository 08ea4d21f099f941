# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""The research views, stored in the lake with the tables (``storage.lake_schema`` creates them).

All sit on ``expiries`` or on ``expiries_hourly``; see docs/data-dictionary.md for every column.
``expiries_hourly`` is the hourly sample (the rows of each symbol's last snapshot in every UTC
hour): the ``hourly_sample`` table that ``research_daily`` writes for whole days (and a rebuild
rewrites for its days), followed by the same sample taken on the fly from ``expiries`` after the
newest sampled hour, so today's ticks are always included.
"""

from __future__ import annotations

from typing import Final

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

_UNSAMPLED_EXPIRIES: Final[str] = f"""(
    SELECT e.* FROM expiries AS e
    LEFT JOIN (SELECT symbol, max(computed_at) AS through FROM {HOURLY_SAMPLE_TABLE}
               GROUP BY symbol) AS sampled ON e.symbol = sampled.symbol
    WHERE sampled.through IS NULL
       OR e.computed_at >= date_trunc('hour', sampled.through) + INTERVAL 1 HOUR
)"""

HOURLY_VIEW_SQL: Final[str] = (
    f"SELECT * FROM {HOURLY_SAMPLE_TABLE} UNION ALL BY NAME "
    f"SELECT * FROM ({sample_sql(_UNSAMPLED_EXPIRIES, MICROS_PER_HOUR)})"
)

RESEARCH_VIEWS: Final[dict[str, str]] = {
    HOURLY_TABLE: HOURLY_VIEW_SQL,
    "constant_maturity": constant_maturity_sql("expiries"),
    "constant_maturity_hourly": constant_maturity_sql(HOURLY_TABLE),
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
