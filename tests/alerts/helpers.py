"""Drive the alert sensors as the daemon does, at simulated instants, against a real lake."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from assets.alert_conditions import Thresholds
from assets.alert_webhook import AlertWebhookResource
from assets.alerts import AlertState
from assets.history import build_history_asset
from assets.maintenance import build_maintenance_asset
from assets.resources import WarehouseResource
from pipelines.alerting import FEED_SENSOR, JOB_SENSOR, build_alert_sensors
from pipelines.automation import HISTORY_JOB, history_job, maintenance_job
from storage.ingest import ingest_once
from storage.reports import TickReport
from storage.warehouse import Warehouse
from tests.alerts.receiver import Receiver
from tests.support.simulator import SIM_START, RunningSimulator

REPOSITORY = "termstore"
DAY = SIM_START.date().isoformat()


def at_minute(sim: RunningSimulator, minute: float) -> datetime:
    """Move the simulator's frozen clock to ``minute`` minutes after ``SIM_START``."""
    instant = SIM_START + timedelta(minutes=minute)
    sim.clock.set(instant)
    return instant


def tick(sim: RunningSimulator, home: Path) -> TickReport:
    """One tick through the real ingest path (fetch over loopback HTTP, one transaction)."""
    with Warehouse.open(home) as warehouse:
        return ingest_once(warehouse, sim.client_config())


def snapshot_count(home: Path) -> int:
    with Warehouse.open(home) as warehouse:
        return int(warehouse.sql("SELECT count(*) FROM snapshots").item())


def webhook(url: str | dg.EnvVar, timeout_s: float = 1.0) -> AlertWebhookResource:
    return AlertWebhookResource(url=url, timeout_s=timeout_s, connect_timeout_s=timeout_s)


@dataclass
class AlertSensors:
    """The real sensors (``build_alert_sensors``) on the simulator's clock, with their cursors
    carried from one evaluation to the next as the daemon carries them."""

    sim: RunningSimulator
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    thresholds: Thresholds = field(default_factory=Thresholds)
    cursors: dict[str, str | None] = field(default_factory=dict)
    results: list[dg.SensorResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        sensors = build_alert_sensors(self.thresholds, clock=self.sim.clock.now)
        self.sensors = {sensor.name: sensor for sensor in sensors}

    def evaluate(self, name: str = FEED_SENSOR) -> dg.SensorResult:
        sensor = self.sensors[name]
        resources = (
            self.resources
            if name == FEED_SENSOR
            else {"alert_webhook": self.resources["alert_webhook"]}
        )
        with dg.build_sensor_context(
            instance=self.instance,
            # With the instance's ref the sensor's log is captured to the instance's compute
            # log storage, as the daemon captures it.
            instance_ref=self.instance.get_ref(),
            cursor=self.cursors.get(name),
            repository_name=REPOSITORY,
            sensor_name=name,
            resources=resources,
        ) as context:
            data = sensor.evaluate_tick(context)
        # What the daemon does with a tick's result: keep the cursor, store the asset events.
        self.cursors[name] = data.cursor
        for event in data.asset_events:
            self.instance.report_runless_asset_event(event)
        result = dg.SensorResult(
            cursor=data.cursor, asset_events=list(data.asset_events), skip_reason=data.skip_message
        )
        self.results.append(result)
        return result

    def evaluate_jobs(self) -> dg.SensorResult:
        return self.evaluate(JOB_SENSOR)

    def state(self, name: str = FEED_SENSOR) -> AlertState:
        return AlertState.from_cursor(self.cursors.get(name))


def feed_resources(home: Path, hook: AlertWebhookResource) -> dict[str, Any]:
    return {"warehouse": WarehouseResource(home=str(home)), "alert_webhook": hook}


def tally(receiver: Receiver) -> Counter[tuple[str, str]]:
    """(alert key, kind) → how many posts the receiver answered."""
    return Counter(
        (post.body["termstore"]["alert"], post.body["termstore"]["kind"]) for post in receiver.posts
    )


def _definitions(home: Path) -> dg.Definitions:
    partitions = dg.DailyPartitionsDefinition(start_date="2026-03-01", timezone="UTC")
    return dg.Definitions(
        assets=[
            build_history_asset(partitions_def=partitions, ingest_cron="* * * * *", simulated=True),
            build_maintenance_asset(simulated=True),
        ],
        jobs=[history_job, maintenance_job],
        resources={"warehouse": WarehouseResource(home=str(home))},
    )


def run(instance: dg.DagsterInstance, job: str, home: Path) -> bool:
    """Run ``job`` as the schedules do; a home that is a file makes it fail (no lake there)."""
    definition = _definitions(home).resolve_job_def(job)
    result = definition.execute_in_process(
        instance=instance, raise_on_error=False, partition_key=DAY if job == HISTORY_JOB else None
    )
    return result.success


def materialise(
    instance: dg.DagsterInstance,
    asset: str,
    home: Path,
    partition: str | None = None,
    tags: dict[str, str] | None = None,
) -> bool:
    """Materialise ``asset`` as the UI's *Materialize* and a backfill do: a run of Dagster's
    implicit asset job with the asset selected (a backfill's run carries its range as tags)."""
    job = _definitions(home).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=[dg.AssetKey(asset)],
        partition_key=partition,
        tags=tags,
    )
    return result.success
