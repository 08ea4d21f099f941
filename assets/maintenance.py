"""``lake_maintenance``: DuckLake's own maintenance on a schedule, visible in the UI.

Each run rewrites files that rebuilds left with deleted rows, merges the small per-tick files
into one run per table and month (and a full run into the month's large file), expires snapshots
past the retention (TERMSTORE_SNAPSHOT_RETENTION_DAYS) and deletes files nothing references
(storage.maintenance).
"""

from typing import Final

import dagster as dg

from assets.ingest import TICK_ASSET
from assets.metadata import describe, table_metadata
from assets.resources import WarehouseResource
from storage.errors import StorageError

MAINTENANCE_ASSET: Final[str] = "lake_maintenance"
MAINTENANCE_DESCRIPTION = (
    "DuckLake maintenance of the termstore lake: rewrite files with rows deleted by rebuilds, "
    "merge the per-tick files into few files per table and month, expire snapshots older than "
    "the retention (time travel reaches back that far), delete files nothing references. "
    "Readers keep working throughout; `termstore maintain` runs the same from the CLI."
)


def build_maintenance_asset(*, simulated: bool) -> dg.AssetsDefinition:
    @dg.asset(
        name=MAINTENANCE_ASSET,
        group_name="maintenance",
        deps=[TICK_ASSET],
        description=describe(MAINTENANCE_DESCRIPTION, simulated=simulated),
        kinds={"duckdb", "ducklake"},
        owners=["team:termstore"],
        tags={"layer": "lake"},
    )
    def lake_maintenance(warehouse: WarehouseResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
        from storage.maintenance import maintain

        try:
            report = maintain(warehouse.open())
        except StorageError as error:
            raise dg.Failure(description=str(error)) from None
        steps = [
            {"step": step.name, "seconds": f"{step.seconds:.3f}", "affected": str(step.affected)}
            for step in report.steps
        ]
        return dg.MaterializeResult(
            metadata={
                "data_files_before": report.files_before,
                "data_files_after": report.files_after,
                "snapshots_kept": report.snapshots_kept,
                "seconds": round(report.seconds, 3),
                "steps": table_metadata(steps),
            }
        )

    return lake_maintenance
