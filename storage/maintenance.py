# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""Lake maintenance: DuckLake's own functions, run by the writer under the writer lock.

In order: rewrite files with deleted rows (a rebuilt day) without them; merge the small files
(a tick's, and the run they are merged into) into one file per table and month; once that run
reaches ``RUN_BYTES``, merge it into its month's large file (merging respects the monthly
partitions); expire snapshots older than the retention (time travel reaches back that far); and
delete the files nothing references any more once they have been unreferenced for
``CLEANUP_GRACE``, so a query that was already reading them can finish. Inlined data is never
flushed: termstore writes none (storage/lake_schema.py says why).

Two merges, not one: a single merge would rewrite the whole month so far every hour. This way
an hourly run rewrites at most ``RUN_BYTES`` per table, and a month's large file is rewritten
once each time a run fills up, so a month ends as one or two files per table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import duckdb

from storage.lake import LAKE
from storage.warehouse import Warehouse
from storage.writes import write_error

RUN_BYTES: Final = 8 * 1024 * 1024
"""Files smaller than this are merged on every run; files that reached it, into their month's."""
CLEANUP_GRACE: Final = timedelta(hours=1)
"""How long an unreferenced file stays before it is deleted: longer than any query runs."""


@dataclass(frozen=True, slots=True)
class MaintenanceStep:
    name: str
    seconds: float
    affected: int
    """Files merged or deleted, snapshots expired (what the step's function returns)."""


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    steps: tuple[MaintenanceStep, ...]
    files_before: int
    files_after: int
    snapshots_kept: int

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": {
                step.name: {"seconds": step.seconds, "affected": step.affected}
                for step in self.steps
            },
            "files_before": self.files_before,
            "files_after": self.files_after,
            "snapshots_kept": self.snapshots_kept,
            "seconds": self.seconds,
        }


def _count(connection: duckdb.DuckDBPyConnection, query: str) -> int:
    row = connection.execute(query).fetchone()
    return int(row[0]) if row else 0


def data_files(connection: duckdb.DuckDBPyConnection) -> int:
    """Data files the current snapshot references, over every table."""
    return _count(
        connection,
        f"SELECT sum(file_count) FROM ducklake_table_info('{LAKE}')",
    )


def catalog_cutoff(warehouse: Warehouse, instant: datetime) -> datetime:
    """The ``older_than`` to pass for ``instant``. A SQLite catalog keeps snapshot and
    scheduling times as text, and DuckLake compares them with its ISO-8601 cutoff as strings:
    every time on the cutoff's date counts as older, however late in the day. A cutoff just
    before the start of ``instant``'s UTC day never reaches past ``instant`` (it keeps at most
    a day longer than asked)."""
    if warehouse.config.catalog_kind != "sqlite":
        return instant
    start = instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start - timedelta(microseconds=1)


def maintain(warehouse: Warehouse, *, now: datetime | None = None) -> MaintenanceReport:
    """Run every maintenance step once; safe to run at any time, readers keep working."""
    instant = now or datetime.now(UTC)
    expire_before = catalog_cutoff(
        warehouse, instant - timedelta(days=warehouse.config.retention_days)
    )
    cleanup_before = instant - CLEANUP_GRACE
    steps: tuple[tuple[str, str, list[object]], ...] = (
        # Any file with deleted rows (a rebuilt symbol-day) is rewritten without them first:
        # merging skips files with deletes.
        (
            "rewrite_data_files",
            f"CALL ducklake_rewrite_data_files('{LAKE}', delete_threshold => 0)",
            [],
        ),
        (
            "merge_adjacent_files",
            f"CALL ducklake_merge_adjacent_files('{LAKE}', max_file_size => ?)",
            [RUN_BYTES],
        ),
        (
            "merge_into_month_files",
            f"CALL ducklake_merge_adjacent_files('{LAKE}', min_file_size => ?)",
            [RUN_BYTES],
        ),
        (
            "expire_snapshots",
            f"CALL ducklake_expire_snapshots('{LAKE}', older_than => ?)",
            [expire_before],
        ),
        (
            "cleanup_old_files",
            f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => ?)",
            [catalog_cutoff(warehouse, cleanup_before)],
        ),
        (
            "delete_orphaned_files",
            f"CALL ducklake_delete_orphaned_files('{LAKE}', older_than => ?)",
            [cleanup_before],
        ),
    )
    done: list[MaintenanceStep] = []
    with warehouse.writer() as connection:
        before = data_files(connection)
        for name, statement, parameters in steps:
            started = time.perf_counter()
            try:
                affected = len(connection.execute(statement, parameters).fetchall())
            except duckdb.Error as error:
                raise write_error(warehouse.config, f"maintenance ({name})", error) from None
            done.append(MaintenanceStep(name, time.perf_counter() - started, affected))
        after = data_files(connection)
        kept = _count(connection, f"SELECT count(*) FROM ducklake_snapshots('{LAKE}')")
    return MaintenanceReport(tuple(done), before, after, kept)
