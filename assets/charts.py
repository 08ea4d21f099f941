"""The four standard charts, queried through the research API and rendered as PNG bytes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from backquant.symbols import SUPPORTED_SYMBOLS

if TYPE_CHECKING:
    from storage.warehouse import Warehouse

# The research API and the plotting (polars, DuckDB, matplotlib) load when a chart is drawn:
# the CLI's help and the Dagster code location import this module for its names only.

CHART_NAMES: Final[tuple[str, ...]] = (
    "term_structure",
    "cm_30d_atm_iv",
    "skew_25d",
    "oi_by_expiry",
)
LOOKBACKS: Final[tuple[tuple[str, timedelta], ...]] = (
    ("1 day ago", timedelta(days=1)),
    ("7 days ago", timedelta(days=7)),
)


def _reference_time(warehouse: Warehouse, symbols: Sequence[str], at: datetime | None) -> datetime:
    from storage.research import api

    if at is not None:
        return api.as_utc(at)
    newest = warehouse.sql(
        "SELECT max(computed_at) AS at FROM latest_term_structure WHERE symbol IN "  # noqa: S608
        f"({', '.join(repr(s) for s in symbols)})"
    )["at"][0]
    return api.as_utc(newest) if newest is not None else api.as_utc(datetime.now().astimezone())


def render_charts(
    warehouse: Warehouse,
    *,
    at: datetime | None = None,
    days: int = 30,
    symbols: Sequence[str] = SUPPORTED_SYMBOLS,
    names: Sequence[str] = CHART_NAMES,
) -> dict[str, bytes]:
    """PNG bytes by chart name: term structure now vs 1 and 7 days before ``at`` (None: the
    newest snapshot), the hourly 30d CM ATM IV and 25Δ skew over ``days`` days, and OI by expiry
    with anchors marked."""
    from assets.plots import oi_by_expiry_png, series_png, term_structure_png
    from storage.research import api

    unknown = set(names) - set(CHART_NAMES)
    if unknown:
        raise ValueError(f"unknown chart(s) {sorted(unknown)}; choose from {list(CHART_NAMES)}")
    end = _reference_time(warehouse, symbols, at)
    now = {symbol: api.term_structure(warehouse, symbol, at) for symbol in symbols}
    charts: dict[str, bytes] = {}
    if "term_structure" in names:
        curves = {
            symbol: {
                "now": now[symbol],
                **{
                    label: api.term_structure(warehouse, symbol, end - delta)
                    for label, delta in LOOKBACKS
                },
            }
            for symbol in symbols
        }
        charts["term_structure"] = term_structure_png(curves)
    if {"cm_30d_atm_iv", "skew_25d"} & set(names):
        cm = api.constant_maturity(
            warehouse, list(symbols), end - timedelta(days=days), end + timedelta(seconds=1), (30,)
        )
        if "cm_30d_atm_iv" in names:
            charts["cm_30d_atm_iv"] = series_png(
                cm, "atm_iv", f"30-day constant-maturity ATM IV, hourly, {days} days", "vol points"
            )
        if "skew_25d" in names:
            charts["skew_25d"] = series_png(
                cm,
                "skew_25d",
                f"30-day 25Δ skew (put − call; positive = puts richer), hourly, {days} days",
                "vol points",
            )
    if "oi_by_expiry" in names:
        charts["oi_by_expiry"] = oi_by_expiry_png(now)
    return charts


def write_charts(charts: dict[str, bytes], directory: Path, prefix: str = "") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, png in charts.items():
        path = directory / f"{prefix}{name}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths
