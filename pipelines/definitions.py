"""The termstore code location: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import dagster as dg

from assets.history import build_history_asset
from assets.ingest import build_tick_asset
from assets.research import build_research_asset, research_automation, research_job
from pipelines.automation import (
    build_ingest_schedule,
    build_retention_schedule,
    history_job,
    history_schedule,
    ingest_job,
    prune_runs_job,
    rebuild_dirty_days,
)
from pipelines.resources import BackQuantResource, WarehouseResource
from pipelines.settings import Settings, check_client_environment
from storage.warehouse import resolve_home


def build_definitions() -> dg.Definitions:
    """Check the environment, then wire everything. Raises SettingsError with what to set."""
    settings = Settings.from_env()
    client = check_client_environment()
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
        ],
        jobs=[ingest_job, history_job, prune_runs_job, research_job],
        schedules=[
            build_ingest_schedule(settings),
            history_schedule,
            build_retention_schedule(settings),
        ],
        sensors=[rebuild_dirty_days, research_automation],
        resources={
            "backquant": BackQuantResource(
                api_key=dg.EnvVar("BACKQUANT_API_KEY"),
                base_url=client.base_url,
                symbols=list(client.symbols),
                simulated=settings.simulated,
            ),
            "warehouse": WarehouseResource(home=str(resolve_home(None))),
        },
    )


defs = build_definitions()
