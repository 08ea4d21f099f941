"""``expiry_history``: one daily partition per UTC day, rebuilt from the raw archive.

Materialising a day replays today's code over the day's archived bodies and replaces the day's
rows in one transaction, so it is the backfill and repair surface in the UI. Ticks stored before
or after stay visible. Its checks run in the same step, on the days that step rebuilt.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import dagster as dg
from dagster._utils.schedules import cron_string_iterator

from assets.ingest import TICK_ASSET
from assets.metadata import column_schema, describe, frame_metadata, table_metadata
from assets.resources import WarehouseResource
from storage.errors import StorageError
from storage.rebuild import rebuild_range
from storage.reports import NO_ARCHIVE, RebuildReport
from storage.warehouse import Warehouse

HISTORY_ASSET: Final[str] = "expiry_history"
MAX_DAYS_PER_RUN: Final[int] = 7
MIN_COVERAGE: Final[float] = 0.95

COVERAGE = "coverage"
NO_DUPLICATE_KEYS = "no_duplicate_keys"
MATCHES_ARCHIVE = "matches_archive"
CHECK_DESCRIPTIONS: Final[dict[str, str]] = {
    COVERAGE: f"Snapshots per symbol and day against the ingest schedule (warn under "
    f"{MIN_COVERAGE:.0%}); days with no archive at all are listed.",
    NO_DUPLICATE_KEYS: "No (symbol, computed_at) twice in snapshots and no (symbol, computed_at, "
    "expiry) twice in expiries for the rebuilt days.",
    MATCHES_ARCHIVE: "Snapshot rows per symbol-day equal the archived responses that today's code "
    "accepts.",
}
HISTORY_DESCRIPTION = (
    "The per-expiry term-structure history, one partition per UTC day (symbol is a column). "
    "Materialising a day rebuilds it from the raw archive with today's code and replaces the "
    "day's rows in one transaction (readers see the old day or the new one, never a mix), so "
    "backfilling a range from the UI replays those days."
)


def expected_ticks(day: date, cron: str) -> int:
    """How many times the ingest schedule fires in a UTC day (at most one per 30 s bucket)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    count = 0
    for tick in cron_string_iterator(start.timestamp() - 1e-3, cron, "UTC"):
        if tick >= end:
            break
        count += 1
    return min(count, 2880)


def _day_sql(days: list[date]) -> str:
    quoted = ", ".join(f"DATE '{day.isoformat()}'" for day in days)
    return f"CAST(computed_at AT TIME ZONE 'UTC' AS DATE) IN ({quoted})"


def history_checks(
    warehouse: Warehouse, report: RebuildReport, days: list[date], cron: str
) -> list[dg.AssetCheckResult]:
    in_days = _day_sql(days)
    per_day = warehouse.sql(
        f"SELECT symbol, CAST(computed_at AT TIME ZONE 'UTC' AS DATE) AS day, "  # noqa: S608
        f"count(*) AS snapshots FROM snapshots WHERE {in_days} GROUP BY ALL ORDER BY ALL"
    )
    counts = {
        (row["symbol"], row["day"]): row["snapshots"] for row in per_day.iter_rows(named=True)
    }
    coverage_rows = []
    worst = 1.0
    for item in report.days:
        expected = expected_ticks(item.day, cron)
        found = counts.get((item.symbol, item.day), 0)
        ratio = found / expected if expected else 1.0
        worst = min(worst, ratio)
        coverage_rows.append(
            {
                "symbol": item.symbol,
                "day": item.day.isoformat(),
                "snapshots": str(found),
                "expected": str(expected),
                "coverage": f"{ratio:.1%}",
                "status": item.status,
            }
        )
    duplicates = warehouse.sql(
        f"SELECT 'snapshots' AS tbl, count(*) - count(DISTINCT (symbol, computed_at)) AS extra "  # noqa: S608
        f"FROM snapshots WHERE {in_days} UNION ALL "
        f"SELECT 'expiries', count(*) - count(DISTINCT (symbol, computed_at, expiry)) "
        f"FROM expiries WHERE {in_days}"
    )
    extra = {row["tbl"]: int(row["extra"]) for row in duplicates.iter_rows(named=True)}
    mismatches = {
        f"{item.symbol} {item.day}": {
            "accepted_in_archive": item.responses - len(item.rejected),
            "snapshots": counts.get((item.symbol, item.day), 0),
        }
        for item in report.days
        if item.status != NO_ARCHIVE
        and item.responses - len(item.rejected) != counts.get((item.symbol, item.day), 0)
    }
    return [
        dg.AssetCheckResult(
            check_name=COVERAGE,
            passed=worst >= MIN_COVERAGE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"worst_coverage": worst, "per_symbol_day": table_metadata(coverage_rows)},
        ),
        dg.AssetCheckResult(
            check_name=NO_DUPLICATE_KEYS,
            passed=not any(extra.values()),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"extra_rows": dg.MetadataValue.json(extra)},
        ),
        dg.AssetCheckResult(
            check_name=MATCHES_ARCHIVE,
            passed=not mismatches,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"mismatches": dg.MetadataValue.json(mismatches)},
        ),
    ]


def build_history_asset(
    *, partitions_def: dg.DailyPartitionsDefinition, ingest_cron: str, simulated: bool
) -> dg.AssetsDefinition:
    @dg.asset(
        name=HISTORY_ASSET,
        group_name="history",
        deps=[TICK_ASSET],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
        description=describe(HISTORY_DESCRIPTION, simulated=simulated),
        kinds={"polars", "duckdb", "ducklake"},
        owners=["team:termstore"],
        tags={"layer": "lake"},
        metadata={"dagster/column_schema": column_schema("expiries")},
        check_specs=[
            dg.AssetCheckSpec(name, asset=HISTORY_ASSET, description=text)
            for name, text in CHECK_DESCRIPTIONS.items()
        ],
    )
    def expiry_history(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:  # type: ignore[type-arg]
        window = context.partition_time_window
        first = window.start.date()
        last = (window.end - timedelta(seconds=1)).date()
        store = warehouse.open()
        try:
            report = rebuild_range(store, first, last)
        except StorageError as error:
            raise dg.Failure(description=str(error)) from None
        days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
        missing = sorted({f"{symbol} {day}" for symbol, day in report.missing})
        if missing:
            context.log.warning(f"no archive for: {', '.join(missing)}")
        rows = store.sql(
            f"SELECT symbol, count(*) AS expiry_rows, count(DISTINCT computed_at) AS snapshots "  # noqa: S608
            f"FROM expiries WHERE {_day_sql(days)} GROUP BY symbol ORDER BY symbol"
        )
        return dg.MaterializeResult(
            metadata={
                "days": f"{first} … {last}" if first != last else first.isoformat(),
                "rebuilt": len(report.rebuilt),
                "no_archive": ", ".join(missing) or "none",
                "per_symbol_day": table_metadata(report.table_rows()),
                "rows_by_symbol": frame_metadata(rows),
                "dagster/row_count": int(rows["expiry_rows"].sum()) if rows.height else 0,
                "seconds": round(report.seconds, 3),
            },
            check_results=history_checks(store, report, days, ingest_cron),
        )

    return expiry_history
