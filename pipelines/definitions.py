"""The termstore code location: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import os

import dagster as dg

from assets.clock import Clock, utc_now
from assets.history import build_history_asset, cron_interval
from assets.ingest import build_tick_asset
from assets.maintenance import build_maintenance_asset
from assets.research import build_research_asset, research_automation, research_job
from assets.resources import BackQuantResource, WarehouseResource
from pipelines.alerting import AlertSettings, build_alert_sensors
from pipelines.automation import (
    build_history_schedule,
    build_ingest_schedule,
    build_retention_schedule,
    history_job,
    ingest_job,
    maintenance_job,
    maintenance_schedule,
    prune_runs_job,
)
from pipelines.settings import Settings, check_client_environment
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, LakeConfig


def build_definitions(*, clock: Clock = utc_now) -> dg.Definitions:
    """Check the environment, then wire everything. Raises SettingsError with what to set.
    ``clock`` is the instant checks and alerts judge against (a test's simulated clock)."""
    settings = Settings.from_env()
    client = check_client_environment()
    lake = LakeConfig.from_env()
    alerts = AlertSettings.from_env()
    # Today is the newest partition so a person can backfill it; history_nightly asks for the
    # day that just ended.
    partitions = dg.DailyPartitionsDefinition(
        start_date=settings.history_start.isoformat(), timezone="UTC", end_offset=1
    )
    return dg.Definitions(
        assets=[
            build_tick_asset(
                simulated=settings.simulated,
                clock=clock,
                ingest_interval=cron_interval(settings.ingest_cron),
            ),
            build_history_asset(
                partitions_def=partitions,
                ingest_cron=settings.ingest_cron,
                simulated=settings.simulated,
                clock=clock,
            ),
            build_research_asset(partitions_def=partitions, simulated=settings.simulated),
            build_maintenance_asset(simulated=settings.simulated),
        ],
        jobs=[ingest_job, history_job, prune_runs_job, research_job, maintenance_job],
        schedules=[
            build_ingest_schedule(settings),
            build_history_schedule(partitions),
            build_retention_schedule(settings),
            maintenance_schedule,
        ],
        sensors=[research_automation, *build_alert_sensors(alerts.thresholds, clock=clock)],
        # Every job here is one step (or one op): a step process per run would only add a
        # Python start-up and a second import of Dagster and this code location.
        executor=dg.in_process_executor,
        resources={
            "backquant": BackQuantResource(
                api_key=dg.EnvVar("BACKQUANT_API_KEY"),
                base_url=client.base_url,
                symbols=list(client.symbols),
                simulated=settings.simulated,
            ),
            "warehouse": WarehouseResource(
                home=str(lake.home),
                # The catalog string may hold a password: the resource gets the variable, so
                # the UI shows its name, never its value.
                catalog=dg.EnvVar(CATALOG_ENV) if os.environ.get(CATALOG_ENV) else "",
                data_path=dg.EnvVar(DATA_PATH_ENV) if os.environ.get(DATA_PATH_ENV) else "",
            ),
            "alert_webhook": alerts.webhook(),
        },
    )


defs = build_definitions()
