"""Jobs and schedules: minutely ingest, nightly history, hourly lake maintenance, run pruning.

Defaults: the ingest schedule is the only automation that calls BackQuant (it spends the key's
monthly quota), so it starts off and a person turns it on; everything else only works on the
lake or on Dagster's own records and runs by default (the README's Automation table).

After the daemon was down, Dagster evaluates only each schedule's latest missed tick, at its
scheduled time: ``history_nightly`` therefore takes its day from the scheduled time, never from
the clock, and a missed ingest minute stays missed (``ingest_gaps`` shows it as "no attempt").
"""

from datetime import UTC, date, datetime, timedelta
from typing import Final

import dagster as dg

from assets.history import HISTORY_ASSET
from assets.ingest import TICK_ASSET
from assets.maintenance import MAINTENANCE_ASSET
from pipelines.settings import HISTORY_START_ENV, Settings

INGEST_SCHEDULE: Final[str] = "ingest_every_minute"
HISTORY_SCHEDULE: Final[str] = "history_nightly"
MAINTENANCE_SCHEDULE: Final[str] = "lake_maintenance_hourly"
RETENTION_SCHEDULE: Final[str] = "prune_runs_hourly"
HISTORY_CRON: Final[str] = "20 0 * * *"
INGEST_JOB: Final[str] = "ingest"
HISTORY_JOB: Final[str] = "history"
RETENTION_JOB: Final[str] = "prune_runs"
MAINTENANCE_JOB: Final[str] = "maintenance"
CONCURRENCY_TAG: Final[str] = "termstore/concurrency"
MAX_RUNTIME_TAG: Final[str] = "dagster/max_runtime"
INGEST_MAX_RUNTIME_S: Final[int] = 180
IN_FLIGHT: Final[list[dg.DagsterRunStatus]] = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def in_flight_runs(instance: dg.DagsterInstance, job_name: str, **tags: str) -> int:
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT, tags=tags or None), limit=1
    )
    return len(records)


ingest_job = dg.define_asset_job(
    INGEST_JOB,
    selection=[TICK_ASSET],
    description="One tick: fetch the four symbols and commit them to the lake.",
    # A run whose process died with its code server (a restart, a new image) stays STARTED:
    # Dagster cannot check a run worker of its default launcher. Run monitoring fails it after
    # this many seconds; until then the schedule skips and the ingest slot stays taken. A tick
    # gives up on BackQuant after 45 s, so a live run never comes near it.
    tags={CONCURRENCY_TAG: INGEST_JOB, MAX_RUNTIME_TAG: str(INGEST_MAX_RUNTIME_S)},
    # One step: running it in the run's own process saves a second Python process (Dagster
    # and the code location imported again) every minute.
    executor_def=dg.in_process_executor,
)
history_job = dg.define_asset_job(
    HISTORY_JOB,
    selection=[HISTORY_ASSET],
    description="Rebuild UTC days of expiry_history from the raw archive.",
    tags={CONCURRENCY_TAG: HISTORY_JOB},
)


def build_ingest_schedule(settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=INGEST_SCHEDULE,
        job=ingest_job,
        cron_schedule=settings.ingest_cron,
        execution_timezone="UTC",
        # Off until a person turns it on: it is what spends the key's quota.
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            f"Runs the ingest job on '{settings.ingest_cron}' (TERMSTORE_INGEST_CRON); off until "
            "you turn it on. A tick is skipped while the previous ingest run is still queued or "
            "running, so runs never overlap or double up."
        ),
    )
    def ingest_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        if in_flight_runs(context.instance, INGEST_JOB):
            return dg.SkipReason("the previous ingest run is still queued or running")
        return dg.RunRequest()

    return ingest_schedule


def day_before(scheduled: datetime) -> date:
    """The UTC day that ended before ``scheduled``."""
    return (scheduled.astimezone(UTC) - timedelta(days=1)).date()


def build_history_schedule(partitions: dg.DailyPartitionsDefinition) -> dg.ScheduleDefinition:
    """``history_nightly``: the day that just ended, never today (``expiry_history``'s newest
    partition is today, for a person who backfills it)."""
    first = partitions.start.date()

    @dg.schedule(
        name=HISTORY_SCHEDULE,
        job=history_job,
        cron_schedule=HISTORY_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Builds the expiry_history partition of the UTC day that just ended, at 00:20 UTC "
            "(a late evaluation after the daemon was down builds the same day). Its checks "
            "then judge the whole day, and research_daily follows."
        ),
    )
    def history_nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        day = day_before(context.scheduled_execution_time or datetime.now(UTC))
        if day < first:
            return dg.SkipReason(
                f"{day} is before the first partition ({first}, {HISTORY_START_ENV})"
            )
        return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())

    return history_nightly


maintenance_job = dg.define_asset_job(
    MAINTENANCE_JOB,
    selection=[MAINTENANCE_ASSET],
    description="DuckLake maintenance: merge files, expire snapshots, delete unreferenced files.",
    tags={CONCURRENCY_TAG: MAINTENANCE_JOB},
)
maintenance_schedule = dg.ScheduleDefinition(
    name=MAINTENANCE_SCHEDULE,
    job=maintenance_job,
    cron_schedule="7 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Runs lake_maintenance at minute 7 of every hour: a day of minutely ticks is 1,440 small "
        "files per table until merged, and queries read every one of them."
    ),
)


class RetentionConfig(dg.Config):
    keep_successful_hours: int = 24
    keep_failed_days: int = 14


@dg.op(description="Deletes old runs of the minutely ingest job; failures are kept longer.")
def prune_ingest_runs(context: dg.OpExecutionContext, config: RetentionConfig) -> int:
    now = datetime.now(UTC)
    deleted = 0
    for statuses, keep in (
        (
            [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED],
            timedelta(hours=config.keep_successful_hours),
        ),
        ([dg.DagsterRunStatus.FAILURE], timedelta(days=config.keep_failed_days)),
    ):
        while True:
            records = context.instance.get_run_records(
                filters=dg.RunsFilter(
                    job_name=INGEST_JOB, statuses=statuses, updated_before=now - keep
                ),
                limit=500,
            )
            if not records:
                break
            for record in records:
                context.instance.delete_run(record.dagster_run.run_id)
            deleted += len(records)
    context.log.info(f"deleted {deleted} old ingest runs")
    return deleted


@dg.job(name=RETENTION_JOB, description="Prunes old ingest runs (Dagster OSS never does).")
def prune_runs_job() -> None:
    prune_ingest_runs()


def build_retention_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=RETENTION_SCHEDULE,
        job=prune_runs_job,
        cron_schedule="17 * * * *",
        execution_timezone="UTC",
        run_config=dg.RunConfig(
            ops={
                "prune_ingest_runs": RetentionConfig(
                    keep_successful_hours=settings.keep_successful_runs_hours,
                    keep_failed_days=settings.keep_failed_runs_days,
                )
            }
        ),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Keeps the run list usable: a minutely schedule makes 1,440 runs a day.",
    )
