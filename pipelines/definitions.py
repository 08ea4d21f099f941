"""The termstore code location: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import os

import dagster as dg

from assets.history import build_history_asset
from assets.ingest import build_tick_asset
from assets.maintenance import build_maintenance_asset
from assets.research import build_research_asset, research_automation, research_job
from assets.resources import BackQuantResource, WarehouseResource
from pipelines.automation import (
    build_ingest_schedule,
    build_retention_schedule,
    history_job,
    history_schedule,
    ingest_job,
    maintenance_job,
    maintenance_schedule,
    prune_runs_job,
)
from pipelines.settings import Settings, check_client_environment
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, LakeConfig


def build_definitions() -> dg.Definitions:
    """Check the environment, then wire everything. Raises SettingsError with what to set."""
    settings = Settings.from_env()
    client = check_client_environment()
    lake = LakeConfig.from_env()
    partitions = dg.DailyPartitionsDefinition(
        start_date=settings.history_start.isoformat(), timezone="UTC", end_offset=1
    )
    return dg.Definitions(
        assets=[
            build_tick_asset(simulated=settings.simulated),
            build_history_asset(
                partitions_def=partitions,
                ingest_cron=settings.ingest_cron,
                simulated=settings.simulated,
            ),
            build_research_asset(partitions_def=partitions, simulated=settings.simulated),
            build_maintenance_asset(simulated=settings.simulated),
        ],
        jobs=[ingest_job, history_job, prune_runs_job, research_job, maintenance_job],
        schedules=[
            build_ingest_schedule(settings),
            history_schedule,
            build_retention_schedule(settings),
            maintenance_schedule,
        ],
        sensors=[research_automation],
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
        },
    )


defs = build_definitions()
