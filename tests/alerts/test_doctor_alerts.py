"""``termstore doctor`` lists the open alerts, evaluated when it runs (so they show with the
daemon down), the failed jobs in the Dagster instance and the messages an alert sensor still
holds for a webhook that is down, and never shows the webhook URL."""

from __future__ import annotations

import secrets
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    SensorInstigatorData,
)
from typer.testing import CliRunner

from assets.alert_webhook import ALERT_WEBHOOK_ENV
from pipelines.alerting import FEED_SENSOR
from pipelines.automation import MAINTENANCE_JOB
from pipelines.cli import app
from tests.alerts.helpers import AlertSensors, at_minute, feed_resources, run, tick, webhook
from tests.alerts.receiver import Receiver
from tests.support.simulator import SIM_START, running_simulator

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def keep_cursor(instance: dg.DagsterInstance, sensor: str, cursor: str | None) -> None:
    """Store a sensor's cursor in the instance, where the daemon keeps it."""
    repository = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("termstore"), "__repository__")
    instance.add_instigator_state(
        InstigatorState(
            repository.get_instigator_origin(sensor),
            InstigatorType.SENSOR,
            InstigatorStatus.RUNNING,
            SensorInstigatorData(cursor=cursor),
        )
    )


def test_doctor_shows_open_alerts_failed_jobs_and_queued_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = secrets.token_hex(16)
    dead = Receiver(path=f"/services/T0/B0/{token}")  # never listens
    home, dagster_home = tmp_path / "lake", tmp_path / "dagster"
    dagster_home.mkdir()
    broken = tmp_path / "not-a-directory"
    broken.write_text("")
    try:
        with (
            dg.instance_for_test(temp_dir=str(dagster_home)) as instance,
            running_simulator(frozen_at=SIM_START, faults="SOLUSDT:404") as sim,
        ):
            sensors = AlertSensors(sim, instance, feed_resources(home, webhook(dead.url, 0.5)))
            for minute in range(5):
                at_minute(sim, minute)
                tick(sim, home)
            sensors.evaluate()  # SOLUSDT failing: the alert waits for the dead webhook
            keep_cursor(instance, FEED_SENSOR, sensors.cursors[FEED_SENSOR])
            assert not run(instance, MAINTENANCE_JOB, broken)
            for name, value in {
                "TERMSTORE_HOME": str(home),
                "BACKQUANT_API_KEY": sim.api_key,
                "BACKQUANT_BASE_URL": sim.base_url,
                ALERT_WEBHOOK_ENV: dead.url,
                "DAGSTER_HOME": str(dagster_home),
                "COLUMNS": "400",
            }.items():
                monkeypatch.setenv(name, value)
            monkeypatch.delenv("TERMSTORE_CATALOG", raising=False)
            monkeypatch.delenv("TERMSTORE_DATA_PATH", raising=False)
            result = CliRunner().invoke(app, ["doctor"])
    finally:
        dead.close()

    output = " ".join(result.output.replace("│", " ").split())
    assert "Alerts" in output
    assert f"webhook ok {ALERT_WEBHOOK_ENV} is set (not shown: it is a secret)" in output
    # The lake's newest tick is from March 2026: stale by the wall clock doctor runs on.
    assert "stale_feed open no tick stored for" in output
    assert "symbol_failing:SOLUSDT open SOLUSDT failed 5 fetch attempts in a row" in output
    # Its quota samples are from March too: no rate to project from.
    assert "quota unknown no quota headers in the window" in output
    assert f"job_failed:{MAINTENANCE_JOB} open run " in output
    assert f"{FEED_SENSOR} queue queued 1 message(s) not yet posted" in output
    assert "last error: could not reach the webhook" in output
    assert token not in result.output
