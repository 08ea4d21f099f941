"""The research views added to the catalog (``storage.catalog.build_catalog_sql`` calls this).

All sit on the ``expiries`` view (hot tier included) or on ``expiries_hourly``; see
docs/data-dictionary.md for every column.
"""

from __future__ import annotations

from typing import Final

from storage.layout import Layout
from storage.research.cm_sql import (
    constant_maturity_sql,
    forward_listed_sql,
    forward_tenor_sql,
    shape_sql,
)
from storage.research.derived_sql import (
    daily_constant_maturity_sql,
    daily_term_structure_sql,
    next_anchor_sql,
    opex_anchors_sql,
)
from storage.research.hourly_tier import HOURLY_TABLE, hourly_view_sql
from storage.state import TierState

RESEARCH_VIEWS: Final[dict[str, str]] = {
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
"""View name → its query (over other catalog views), in creation order."""

RESEARCH_VIEW_NAMES: Final[tuple[str, ...]] = (HOURLY_TABLE, *RESEARCH_VIEWS)


def research_views(layout: Layout, state: TierState) -> list[str]:
    """CREATE VIEW statements, to run after the base tables' views exist."""
    statements = [hourly_view_sql(layout, state)]
    statements.extend(f"CREATE VIEW {name} AS {query}" for name, query in RESEARCH_VIEWS.items())
    return statements
