"""Quality checks of one ingest tick: freshness, completeness, consistency, schema drift.

They run inside the tick's own step (their results travel with the materialisation), on what the
tick stored, read back through the catalog.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

import dagster as dg

from backquant.symbols import SUPPORTED_SYMBOLS
from storage.reports import DUPLICATE, STORED, TickReport

if TYPE_CHECKING:
    import polars as pl

    from storage.warehouse import Warehouse

HEALTHY_MAX_S: Final[float] = 60.0
"""BackQuant refreshes the expiry summary every 30 s; /v2/status calls 0–60 s healthy."""
DEGRADED_MAX_S: Final[float] = 300.0
"""Past this /v2/status calls the gex family unhealthy: dangerously stale."""
RELATIVE_TOLERANCE: Final[float] = 1e-6

FRESHNESS = "freshness"
COMPLETENESS = "completeness"
CONSISTENCY = "consistency"
SCHEMA_DRIFT = "schema_drift"

CHECK_DESCRIPTIONS: Final[dict[str, str]] = {
    FRESHNESS: (
        "meta.freshness_seconds and the age of computed_at for every symbol fetched, stored or "
        "duplicate (BackQuant serving its previous summary again, so a stuck upstream shows "
        f"here): healthy up to {HEALTHY_MAX_S:g} s (warn above), unhealthy above "
        f"{DEGRADED_MAX_S:g} s (error)."
    ),
    COMPLETENESS: (
        "All four symbols stored (or duplicate of a stored snapshot); any other symbol must be "
        "explained by a reason in ingest_log."
    ),
    CONSISTENCY: (
        "On the rows this tick stored: total_oi = call_oi + put_oi, pcr = put_oi / call_oi, "
        "skew_25d = put_25d_iv − call_25d_iv, notional_oi_usd = total_oi × spot, anchor_count = "
        "anchors listed, type = BackQuant's calendar rule for the token."
    ),
    SCHEMA_DRIFT: "Fields outside the published contract seen in this tick's responses.",
}


def check_specs(asset_key: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=asset_key, description=description)
        for name, description in CHECK_DESCRIPTIONS.items()
    ]


def freshness(report: TickReport, now: datetime) -> dg.AssetCheckResult:
    """How old the data each symbol was served is. A duplicate counts too: it is the summary
    BackQuant still serves, and when BackQuant stops refreshing every tick is one."""
    worst = 0.0
    rows = []
    for symbol in report.symbols:
        if not symbol.ok or symbol.computed_at is None:
            continue
        age = (now - symbol.computed_at).total_seconds()
        stale = max(symbol.freshness_seconds or 0.0, age)
        worst = max(worst, stale)
        status = "" if symbol.status == STORED else f" ({symbol.status})"
        rows.append(
            f"{symbol.symbol}{status}: freshness {symbol.freshness_seconds} s, age {age:.0f} s"
        )
    return dg.AssetCheckResult(
        check_name=FRESHNESS,
        passed=worst <= HEALTHY_MAX_S,
        severity=dg.AssetCheckSeverity.ERROR
        if worst > DEGRADED_MAX_S
        else dg.AssetCheckSeverity.WARN,
        metadata={"worst_staleness_s": worst, "symbols": "\n".join(rows) or "none fetched"},
    )


def completeness(report: TickReport) -> dg.AssetCheckResult:
    by_symbol = {symbol.symbol: symbol for symbol in report.symbols}
    unexplained = [
        name
        for name in SUPPORTED_SYMBOLS
        if name not in by_symbol
        or (by_symbol[name].status not in (STORED, DUPLICATE) and not by_symbol[name].reason)
    ]
    missing = {
        symbol.symbol: f"{symbol.status}: {symbol.reason}"
        for symbol in report.symbols
        if symbol.status not in (STORED, DUPLICATE)
    }
    return dg.AssetCheckResult(
        check_name=COMPLETENESS,
        passed=not missing and not unexplained,
        severity=dg.AssetCheckSeverity.ERROR if unexplained else dg.AssetCheckSeverity.WARN,
        metadata={
            "stored": len(report.stored),
            "not_stored": dg.MetadataValue.json(missing),
            "unexplained": ", ".join(unexplained) or "none",
        },
    )


def _violations(expiries: pl.DataFrame, snapshots: pl.DataFrame) -> dict[str, int]:
    import polars as pl

    def off(left: pl.Expr, right: pl.Expr) -> pl.Expr:
        scale = pl.max_horizontal(left.abs(), right.abs(), pl.lit(1.0))
        return ((left - right).abs() > RELATIVE_TOLERANCE * scale).fill_null(False)

    counts = expiries.select(
        total_oi=off(pl.col("total_oi"), pl.col("call_oi") + pl.col("put_oi")).sum(),
        pcr=off(pl.col("pcr"), pl.col("put_oi") / pl.col("call_oi")).sum(),
        skew_25d=off(pl.col("skew_25d"), pl.col("put_25d_iv") - pl.col("call_25d_iv")).sum(),
        notional_oi_usd=off(
            pl.col("notional_oi_usd"), pl.col("total_oi") * pl.col("spot_price")
        ).sum(),
        type=(pl.col("type") != pl.col("calendar_type")).fill_null(False).sum(),
    ).row(0, named=True)
    anchors = expiries.group_by("symbol", "computed_at").agg(
        listed=pl.col("is_anchor").sum().cast(pl.Int32)
    )
    joined = snapshots.join(anchors, on=["symbol", "computed_at"], how="left")
    counts["anchor_count"] = joined.filter(
        pl.col("anchor_count") != pl.col("listed").fill_null(0)
    ).height
    return {name: int(value) for name, value in counts.items()}


def consistency(warehouse: Warehouse, report: TickReport) -> dg.AssetCheckResult:
    keys = [
        (symbol.symbol, symbol.computed_at)
        for symbol in report.symbols
        if symbol.status == STORED and symbol.computed_at is not None
    ]
    if not keys:
        return dg.AssetCheckResult(
            check_name=CONSISTENCY,
            passed=True,
            metadata={"rows_checked": 0, "note": "nothing stored this tick"},
        )
    where = " OR ".join(
        f"(symbol = '{symbol}' AND computed_at = TIMESTAMPTZ '{at.isoformat()}')"
        for symbol, at in keys
    )
    expiries = warehouse.sql(f"SELECT * FROM expiries WHERE {where}")  # noqa: S608 - keys are ours
    snapshots = warehouse.sql(f"SELECT * FROM snapshots WHERE {where}")  # noqa: S608
    violations = _violations(expiries, snapshots)
    return dg.AssetCheckResult(
        check_name=CONSISTENCY,
        passed=not any(violations.values()) and snapshots.height == len(keys),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows_checked": expiries.height,
            "snapshots_found": f"{snapshots.height} of {len(keys)}",
            "violations": dg.MetadataValue.json(violations),
        },
    )


def schema_drift(report: TickReport) -> dg.AssetCheckResult:
    drift = {symbol.symbol: list(symbol.drift) for symbol in report.symbols if symbol.drift}
    return dg.AssetCheckResult(
        check_name=SCHEMA_DRIFT,
        passed=not drift,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "unknown_fields": dg.MetadataValue.json(drift),
            "note": "unknown fields are kept in the raw archive; update the contract extract",
        },
    )
