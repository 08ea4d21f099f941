"""Jobs and schedules: minutely ingest, nightly history, hourly lake maintenance, run pruning."""

from datetime import UTC, datetime, timedelta
from typing import Final

import dagster as dg

from assets.history import HISTORY_ASSET
from assets.ingest import TICK_ASSET
from assets.maintenance import MAINTENANCE_ASSET
from pipelines.settings import Settings

INGEST_JOB: Final[str] = "ingest"
HISTORY_JOB: Final[str] = "history"
RETENTION_JOB: Final[str] = "prune_runs"
MAINTENANCE_JOB: Final[str] = "maintenance"
CONCURRENCY_TAG: Final[str] = "termstore/concurrency"
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
    tags={CONCURRENCY_TAG: INGEST_JOB},
)
history_job = dg.define_asset_job(
    HISTORY_JOB,
    selection=[HISTORY_ASSET],
    description="Rebuild UTC days of expiry_history from the raw archive.",
    tags={CONCURRENCY_TAG: HISTORY_JOB},
)


def build_ingest_schedule(settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="ingest_every_minute",
        job=ingest_job,
        cron_schedule=settings.ingest_cron,
        execution_timezone="UTC",
        description=(
            f"Runs the ingest job on '{settings.ingest_cron}' (TERMSTORE_INGEST_CRON). A tick is "
            "skipped while the previous ingest run is still queued or running, so runs never "
            "overlap or double up."
        ),
    )
    def ingest_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        if in_flight_runs(context.instance, INGEST_JOB):
            return dg.SkipReason("the previous ingest run is still queued or running")
        return dg.RunRequest()

    return ingest_schedule


history_schedule = dg.build_schedule_from_partitioned_job(
    history_job,
    name="history_nightly",
    hour_of_day=0,
    minute_of_hour=20,
    description="Builds yesterday's expiry_history partition at 00:20 UTC.",
)


maintenance_job = dg.define_asset_job(
    MAINTENANCE_JOB,
    selection=[MAINTENANCE_ASSET],
    description="DuckLake maintenance: merge files, expire snapshots, delete unreferenced files.",
    tags={CONCURRENCY_TAG: MAINTENANCE_JOB},
)
maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_hourly",
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
        name="prune_runs_hourly",
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
