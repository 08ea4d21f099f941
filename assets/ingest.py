"""The tick asset: one warehouse ingest of all four symbols per run."""

from datetime import timedelta
from typing import Final

import dagster as dg

from assets import tick_checks
from assets.clock import Clock, utc_now
from assets.metadata import column_schema, describe, table_metadata
from assets.resources import BackQuantResource, WarehouseResource
from storage.errors import StorageError

TICK_ASSET = "expiry_ticks"
WARN_AFTER: Final[timedelta] = timedelta(minutes=3)
FAIL_AFTER: Final[timedelta] = timedelta(minutes=10)
MINUTELY: Final[timedelta] = timedelta(minutes=1)
TICK_DESCRIPTION = (
    "One tick of BackQuant's /v2/options/expiry-summary for BTCUSDT, ETHUSDT, SOLUSDT and "
    "HYPEUSDT, fetched concurrently and committed to the lake in one transaction: the raw "
    "responses (`responses`), their rows in `snapshots`, `expiries` and `venue_oi`, refused "
    "bodies (`quarantine`) and one `ingest_log` row per attempt — visible to every reader the "
    "moment the run's commit lands. A failing symbol never costs the others: it is logged with "
    "its reason in `ingest_log`, and the run fails only when no symbol could be stored."
)


def freshness_policy(interval: timedelta) -> dg.FreshnessPolicy:
    """Warn after ``WARN_AFTER`` without a tick, fail after ``FAIL_AFTER``; a slower schedule
    (``interval``, its longest gap) gets two and five of its intervals, so it is late only once
    a tick is missed."""
    return dg.FreshnessPolicy.time_window(
        fail_window=max(FAIL_AFTER, 5 * interval), warn_window=max(WARN_AFTER, 2 * interval)
    )


def build_tick_asset(
    *, simulated: bool, clock: Clock = utc_now, ingest_interval: timedelta = MINUTELY
) -> dg.AssetsDefinition:
    """The tick asset; ``clock`` is the instant its freshness check judges the data against,
    ``ingest_interval`` the schedule's longest gap between ticks (``cron_interval``)."""

    @dg.asset(
        name=TICK_ASSET,
        group_name="ingest",
        description=describe(TICK_DESCRIPTION, simulated=simulated),
        kinds={"polars", "duckdb", "ducklake"},
        owners=["team:termstore"],
        tags={"layer": "lake", "source": "simulator" if simulated else "backquant"},
        metadata={
            "dagster/column_schema": column_schema("expiries"),
            "tables": "responses, snapshots, expiries, venue_oi, ingest_log, quarantine",
            "data_source": "SIMULATED (local simulator)" if simulated else "api.backquant.com",
        },
        check_specs=tick_checks.check_specs(TICK_ASSET),
        freshness_policy=freshness_policy(ingest_interval),
    )
    def expiry_ticks(
        context: dg.AssetExecutionContext,
        backquant: BackQuantResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:  # type: ignore[type-arg]
        from storage.ingest import ingest_once

        store = warehouse.open()
        try:
            report = ingest_once(store, backquant.client_config())
        except StorageError as error:
            raise dg.Failure(description=str(error)) from None
        for symbol in report.symbols:
            if not symbol.ok:
                context.log.warning(f"{symbol.symbol} not stored: {symbol.status}: {symbol.reason}")
        if not any(symbol.ok for symbol in report.symbols):
            raise dg.Failure(
                description="no symbol could be stored this tick; see ingest_log for each reason",
                metadata={"symbols": table_metadata(report.table_rows())},
            )
        checks = [
            tick_checks.freshness(report, clock()),
            tick_checks.completeness(report),
            tick_checks.consistency(store, report),
            tick_checks.schema_drift(report),
        ]
        return dg.MaterializeResult(
            metadata={
                "symbols": table_metadata(_glance_rows(report.table_rows())),
                "stored": ", ".join(report.stored) or "none",
                "failed": ", ".join(report.failed) or "none",
                "duplicates_skipped": report.duplicates_skipped,
                "quarantined": report.quarantined,
                "commit_s": round((report.finished_at - report.started_at).total_seconds(), 3),
                "rows_written": dg.MetadataValue.json(dict(report.rows_written)),
                "failure_reasons": dg.MetadataValue.json(
                    {s.symbol: s.reason for s in report.symbols if not s.ok}
                ),
                "dagster/row_count": report.rows_written.get("expiries", 0),
                "data_source": "SIMULATED" if backquant.simulated else backquant.base_url,
            },
            check_results=checks,
        )

    return expiry_ticks


_GLANCE_COLUMNS = (
    "symbol",
    "status",
    "computed_at",
    "freshness_s",
    "expiries",
    "spot",
    "latency_s",
)


def _glance_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{column: row[column] for column in _GLANCE_COLUMNS} for row in rows]
