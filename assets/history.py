"""``expiry_history``: one daily partition per UTC day, rebuilt from the raw archive.

Materialising a day replays today's code over the day's archived bodies and replaces the day's
rows in one transaction, so it is the backfill and repair surface in the UI. Ticks stored before
or after stay visible. Its checks run in the same step, on the days that step rebuilt.
"""

import functools
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Final

import dagster as dg
from dagster._utils.schedules import cron_string_iterator, is_valid_cron_string

from assets.clock import Clock, utc_now
from assets.ingest import TICK_ASSET
from assets.metadata import column_schema, describe, frame_metadata, table_metadata
from assets.resources import WarehouseResource
from storage.errors import StorageError
from storage.reports import NO_ARCHIVE, RebuildReport

if TYPE_CHECKING:
    import polars as pl

    from storage.warehouse import Warehouse

HISTORY_ASSET: Final[str] = "expiry_history"
HISTORY_POOL: Final[str] = "history"
"""The asset's concurrency pool: the instance (dagster-instance.yaml, ``concurrency: pools``)
gives it one slot, so one run at a time rebuilds days, whether history_nightly, a backfill or
the UI's Materialize started it."""
MAX_DAYS_PER_RUN: Final[int] = 7
MIN_COVERAGE: Final[float] = 0.95
COVERAGE_SETTLE: Final[timedelta] = timedelta(minutes=2)
"""A tick due this recently may still be running (run start-up, then up to the client's retry
deadline), so today's coverage counts only the ticks due before."""

COVERAGE = "coverage"
NO_DUPLICATE_KEYS = "no_duplicate_keys"
MATCHES_ARCHIVE = "matches_archive"
CHECK_DESCRIPTIONS: Final[dict[str, str]] = {
    COVERAGE: f"Snapshots per symbol and day against the ticks the ingest schedule was due to "
    f"run: the whole day once it is over; for today, the ticks due up to "
    f"{COVERAGE_SETTLE.seconds // 60} minutes ago (warn under {MIN_COVERAGE:.0%}). The metadata "
    "counts the due minutes with no attempt at all (schedule off, daemon or machine down) and "
    "those whose attempts failed, as ingest_gaps_between reports them, and lists days with no "
    "archive.",
    NO_DUPLICATE_KEYS: "No (symbol, computed_at) twice in snapshots and no (symbol, computed_at, "
    "expiry) twice in expiries for the rebuilt days.",
    MATCHES_ARCHIVE: "Snapshot rows per symbol-day equal the archived responses that today's code "
    "accepts.",
}
HISTORY_DESCRIPTION = (
    "The per-expiry term-structure history, one partition per UTC day (symbol is a column). "
    "Materialising a day rebuilds it from the raw archive with today's code and replaces the "
    "day's rows in one transaction (readers see the old day or the new one, never a mix), so "
    "backfilling a range from the UI replays those days. history_nightly builds the day that "
    "just ended at 00:20 UTC; today's partition is there for a backfill of today, whose "
    "coverage counts the ticks due so far."
)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def due_ticks(cron: str, start: datetime, end: datetime) -> list[datetime]:
    """The instants in [start, end) at which the ingest schedule fires."""
    due = []
    for tick in cron_string_iterator(start.timestamp() - 1e-3, cron, "UTC"):
        if tick >= end:
            break
        due.append(tick)
    return due


def measured_until(day: date, now: datetime) -> datetime:
    """How far ``day`` can be judged at ``now``: to its end once it is over, else to the ticks
    due by ``now`` less the settle time (its start, for a day not begun)."""
    start, end = day_bounds(day)
    return max(start, min(end, now - COVERAGE_SETTLE))


def expected_ticks(day: date, cron: str, until: datetime | None = None) -> int:
    """How many times the ingest schedule fires in a UTC day, or in its part before ``until``
    (at most one per 30 s bucket)."""
    start, end = day_bounds(day)
    return min(len(due_ticks(cron, start, min(end, until or end))), 2880)


def cron_step(cron: str, day: date) -> timedelta | None:
    """The schedule's fixed interval when the gap report can follow it (whole minutes, each
    instant a multiple of it, as `*/15 * * * *`), else None."""
    ticks = due_ticks(cron, *day_bounds(day))
    steps = {later - earlier for earlier, later in pairwise(ticks)}
    if len(steps) != 1:
        return None
    seconds = int(steps.pop().total_seconds())
    aligned = seconds % 60 == 0 and all(int(tick.timestamp()) % seconds == 0 for tick in ticks)
    return timedelta(seconds=seconds) if aligned else None


INTERVAL_REFERENCE: Final[datetime] = datetime(2026, 1, 5, tzinfo=UTC)
"""A Monday 00:00 UTC: the schedule's intervals are read from the week after it, so the answer
never depends on the day the code location loads."""
INTERVAL_SAMPLE: Final[int] = 1000
"""Ticks read at most: ~17 hours of a minutely schedule (a few ms per hundred ticks)."""


@functools.cache
@functools.cache  # the alert sensors ask on every evaluation; the cron rarely changes
def cron_interval(cron: str) -> timedelta:
    """The longest time the ingest schedule goes between two ticks: 1 min for ``* * * * *``,
    7 for ``*/7 * * * *`` (its 4-minute gap at the hour is shorter), a weekend for a schedule of
    weekdays only. Read over a week (or the first ``INTERVAL_SAMPLE`` ticks); a schedule that
    fires less than twice in it counts as a week apart. Raises ValueError for a bad cron."""
    if not is_valid_cron_string(cron):
        raise ValueError(f"{cron!r} is not a cron expression Dagster accepts")
    horizon = INTERVAL_REFERENCE + timedelta(days=7)
    ticks: list[datetime] = []
    for tick in cron_string_iterator(INTERVAL_REFERENCE.timestamp(), cron, "UTC"):
        ticks.append(tick)
        if tick >= horizon or len(ticks) >= INTERVAL_SAMPLE:
            break
    if len(ticks) < 2:
        return timedelta(days=7)
    return max(later - earlier for earlier, later in pairwise(ticks))


def gap_minutes(
    warehouse: "Warehouse", start: datetime, until: datetime, step: timedelta
) -> dict[tuple[str, date], tuple[int, int]]:
    """Per symbol and day: the schedule's minutes in [start, until) with no attempt, and with
    only failed attempts (``ingest_gaps_between``, the lake's own gap report)."""
    if until <= start:
        return {}
    frame = warehouse.sql(
        "SELECT symbol, CAST(minute AT TIME ZONE 'UTC' AS DATE) AS day, "  # noqa: S608
        "count(*) FILTER (WHERE attempts = 0) AS no_attempt, "
        "count(*) FILTER (WHERE attempts > 0) AS failed "
        f"FROM ingest_gaps_between(TIMESTAMPTZ '{start.isoformat()}', "
        f"TIMESTAMPTZ '{until.isoformat()}', every := INTERVAL {int(step.total_seconds())} SECOND) "
        "GROUP BY ALL"
    )
    return {
        (row["symbol"], row["day"]): (int(row["no_attempt"]), int(row["failed"]))
        for row in frame.iter_rows(named=True)
    }


def _day_sql(days: list[date]) -> str:
    quoted = ", ".join(f"DATE '{day.isoformat()}'" for day in days)
    return f"CAST(computed_at AT TIME ZONE 'UTC' AS DATE) IN ({quoted})"


def history_checks(
    warehouse: "Warehouse", report: RebuildReport, days: list[date], cron: str, now: datetime
) -> list[dg.AssetCheckResult]:
    """The day checks of a rebuild; coverage judges each day as far as ``now`` lets it."""
    in_days = _day_sql(days)
    per_day = warehouse.sql(
        f"SELECT symbol, CAST(computed_at AT TIME ZONE 'UTC' AS DATE) AS day, "  # noqa: S608
        f"count(*) AS snapshots FROM snapshots WHERE {in_days} GROUP BY ALL ORDER BY ALL"
    )
    counts = {
        (row["symbol"], row["day"]): row["snapshots"] for row in per_day.iter_rows(named=True)
    }
    until = measured_until(days[-1], now)
    step = cron_step(cron, days[0])
    gaps = gap_minutes(warehouse, day_bounds(days[0])[0], until, step) if step else {}
    coverage_rows = []
    worst = 1.0
    for item in report.days:
        expected = expected_ticks(item.day, cron, until)
        found = counts.get((item.symbol, item.day), 0)
        ratio = min(found / expected, 1.0) if expected else 1.0
        worst = min(worst, ratio)
        no_attempt, failed = gaps.get((item.symbol, item.day), (0, 0))
        coverage_rows.append(
            {
                "symbol": item.symbol,
                "day": item.day.isoformat(),
                "snapshots": str(found),
                "expected": str(expected),
                "coverage": f"{ratio:.1%}",
                "no_attempt_minutes": str(no_attempt) if step else "n/a",
                "failed_minutes": str(failed) if step else "n/a",
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
            metadata={
                "worst_coverage": worst,
                "measured_until": until.isoformat(),
                "per_symbol_day": table_metadata(coverage_rows),
            },
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


def partition_days(context: dg.AssetExecutionContext) -> dict[str, date]:
    """The run's partition keys, each with its UTC day (a backfill run has up to seven)."""
    window = context.partition_time_window
    first = window.start.date()
    count = (window.end.date() - first).days
    days = [first + timedelta(days=offset) for offset in range(count)]
    return dict(zip(context.partition_keys, days, strict=True))


def rebuild_days(warehouse: "Warehouse", days: list[date]) -> list[RebuildReport]:
    """Each day rebuilt on its own (its own report and time, and the writer lock is free for a
    tick between two days); a storage error fails the run."""
    from storage.rebuild import rebuild_day

    try:
        return [rebuild_day(warehouse, day) for day in days]
    except StorageError as error:
        raise dg.Failure(description=str(error)) from None


def rows_by_symbol_day(warehouse: "Warehouse", days: list[date]) -> "pl.DataFrame":
    return warehouse.sql(
        "SELECT CAST(computed_at AT TIME ZONE 'UTC' AS DATE) AS day, symbol, "  # noqa: S608
        "count(*) AS expiry_rows, count(DISTINCT computed_at) AS snapshots "
        f"FROM expiries WHERE {_day_sql(days)} GROUP BY ALL ORDER BY ALL"
    )


def day_metadata(day: date, report: RebuildReport, rows: "pl.DataFrame") -> dict[str, Any]:
    """One partition's materialization metadata: its day's rebuild and the expiry rows per
    symbol the day holds now."""
    missing = [f"{symbol} {missing_day}" for symbol, missing_day in report.missing]
    return {
        "days": day.isoformat(),
        "rebuilt": len(report.rebuilt),
        "no_archive": ", ".join(missing) or "none",
        "per_symbol_day": table_metadata(report.table_rows()),
        "rows_by_symbol": frame_metadata(rows),
        "dagster/row_count": int(rows["expiry_rows"].sum()) if rows.height else 0,
        "seconds": round(report.seconds, 3),
    }


def build_history_asset(
    *,
    partitions_def: dg.DailyPartitionsDefinition,
    ingest_cron: str,
    simulated: bool,
    clock: Clock = utc_now,
) -> dg.AssetsDefinition:
    """The history asset; ``clock`` tells its coverage check how much of today is over."""

    @dg.asset(
        name=HISTORY_ASSET,
        group_name="history",
        deps=[TICK_ASSET],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
        # A backfill's runs carry no job tags, so a tag limit misses them; the pool is on the
        # step, which every run of this asset has.
        pool=HISTORY_POOL,
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
        days = partition_days(context)
        store = warehouse.open()
        reports = rebuild_days(store, list(days.values()))
        report = RebuildReport(
            days=tuple(item for day_report in reports for item in day_report.days),
            seconds=sum(day_report.seconds for day_report in reports),
        )
        missing = sorted({f"{symbol} {day}" for symbol, day in report.missing})
        if missing:
            context.log.warning(f"no archive for: {', '.join(missing)}")
        rows = rows_by_symbol_day(store, list(days.values()))
        # A run of several days records one materialization per day: each gets its own day's
        # numbers, not the run's.
        for (key, day), day_report in zip(days.items(), reports, strict=True):
            day_rows = rows.filter(rows["day"] == day).drop("day")
            context.add_asset_metadata(day_metadata(day, day_report, day_rows), partition_key=key)
        # The checks judge the run's days together (their tables list each symbol-day).
        checks = history_checks(store, report, list(days.values()), ingest_cron, clock())
        return dg.MaterializeResult(check_results=checks)

    return expiry_history
