"""A webhook that is dead (port closed) or slow (takes the post, never answers in time) costs
no tick and no stuck sensor; what it missed is posted once it is back, oldest first, and the
webhook URL appears in no log, event, cursor, file or UI snapshot."""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import threading
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import (
    RepositorySnap,
    ResourceConfigEnvVarSnap,
)
from dagster._serdes import serialize_value

from assets.alert_conditions import STALE_FEED
from assets.alert_webhook import ALERT_WEBHOOK_ENV
from assets.ingest import build_tick_asset
from assets.resources import BackQuantResource, WarehouseResource
from pipelines.alerting import FEED_SENSOR, JOB_SENSOR
from tests.alerts.helpers import (
    AlertSensors,
    at_minute,
    feed_resources,
    snapshot_count,
    tally,
    webhook,
)
from tests.alerts.receiver import Receiver
from tests.support.fixtures import TEST_KEY
from tests.support.simulator import SIM_START, RunningSimulator, running_simulator

TIMEOUT_S = 1.0
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def ingest_run(sim: RunningSimulator, home: Path, instance: dg.DagsterInstance) -> bool:
    """One run of the tick asset, as the ingest schedule launches it."""
    result = dg.materialize(
        [build_tick_asset(simulated=True)],
        resources={
            "backquant": BackQuantResource(
                api_key=sim.api_key, base_url=sim.base_url, retry_deadline_s=2.0, simulated=True
            ),
            "warehouse": WarehouseResource(home=str(home)),
        },
        instance=instance,
        raise_on_error=False,
    )
    return result.success


def files_holding(root: Path, secret: str) -> list[str]:
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]


def test_a_dead_then_slow_webhook_costs_no_tick_and_gets_each_message_once_when_back(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    token = secrets.token_hex(16)
    receiver = Receiver(path=f"/services/T0000/B0000/{token}")  # bound, not listening: dead
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, receiver.url)
    home = tmp_path / "lake"
    hook = webhook(dg.EnvVar(ALERT_WEBHOOK_ENV), timeout_s=TIMEOUT_S)
    (tmp_path / "dagster").mkdir()
    try:
        with (
            dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance,
            running_simulator(frozen_at=SIM_START) as sim,
        ):
            sensors = AlertSensors(sim, instance, feed_resources(home, hook))
            at_minute(sim, 0)
            assert ingest_run(sim, home, instance)
            at_minute(sim, 7)
            sensors.evaluate()  # the feed is stale; the webhook refuses the connection
            (alert,) = sensors.state().outbox
            assert (alert.key, alert.kind, alert.attempts) == (STALE_FEED, "alert", 1)
            assert alert.last_error.startswith("could not reach the webhook")

            at_minute(sim, 8)
            assert ingest_run(sim, home, instance)  # a dead webhook costs the tick nothing
            assert snapshot_count(home) == 8
            sensors.evaluate()
            assert [m.kind for m in sensors.state().outbox] == ["alert", "recovery"]

            # Slow: it accepts the connection and the post, and holds the answer.
            receiver.slow = True
            receiver.listen()
            at_minute(sim, 9)
            evaluation = threading.Thread(target=sensors.evaluate)
            evaluation.start()
            assert ingest_run(sim, home, instance)  # while the sensor waits on the webhook
            assert snapshot_count(home) == 12
            evaluation.join(timeout=60)
            assert not evaluation.is_alive()
            # The evaluation gave up on its own timeout while the receiver still held the post.
            assert len(receiver.held) == 1 and receiver.posts == []
            alert, recovery = sensors.state().outbox
            assert alert.attempts == 3 and recovery.attempts == 0
            assert alert.last_error == f"the webhook did not answer within {TIMEOUT_S:g} s"

            receiver.release()  # back to normal
            sensors.evaluate()
            sensors.evaluate()
            sensors.evaluate(JOB_SENSOR)
            cursors = dict(sensors.cursors)
            skip_messages = [str(result.skip_reason) for result in sensors.results]
            observations = serialize_value(
                [
                    record.event_log_entry
                    for record in instance.fetch_observations(
                        dg.AssetKey("expiry_ticks"), limit=100
                    ).records
                ]
            )
            instance_files = tmp_path / "dagster"
    finally:
        receiver.close()

    assert tally(receiver) == {(STALE_FEED, "alert"): 1, (STALE_FEED, "recovery"): 1}
    assert [post.body["termstore"]["kind"] for post in receiver.posts] == ["alert", "recovery"]
    assert sensors.state().outbox == []
    # The URL was used (the receiver saw its secret path) and is nowhere else.
    assert all(post.path.endswith(token) for post in [*receiver.posts, *receiver.held])
    assert '"state"' in observations and "expiry_ticks" in observations
    captured_logs = [
        path for path in instance_files.rglob("*") if path.is_file() and FEED_SENSOR in str(path)
    ]
    assert captured_logs, "the sensor's captured logs were not written where expected"
    assert any(b"could not post" in path.read_bytes() for path in captured_logs)
    out, err = capfd.readouterr()
    assert "could not post" in err  # the sensor's console log
    # Python logging at DEBUG: httpx logs each request's URL at INFO, httpcore its connections.
    logged = [record.getMessage() for record in caplog.records]
    assert any(record.name.startswith("httpcore") for record in caplog.records)
    for place, text in {
        "captured stdout/stderr": out + err,
        "python logging": "\n".join(logged),
        "cursors": "\n".join(str(cursor) for cursor in cursors.values()),
        "sensor tick results": "\n".join(skip_messages),
        "asset observations": observations,
    }.items():
        assert token not in text, f"the webhook URL leaked into {place}"
    assert files_holding(tmp_path, token) == []


def test_the_ui_is_sent_the_webhook_variables_name_never_the_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = secrets.token_hex(16)
    for name in list(os.environ):
        if name.startswith(("BACKQUANT_", "TERMSTORE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BACKQUANT_API_KEY", TEST_KEY)
    monkeypatch.setenv("TERMSTORE_HOME", str(tmp_path / "wh"))
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, f"https://hooks.slack.com/services/T0/B0/{token}")
    module = importlib.import_module("pipelines.definitions")
    definitions: dg.Definitions = module.build_definitions()
    snapshot = RepositorySnap.from_def(definitions.get_repository_def())
    (resource,) = [r for r in snapshot.resources or () if r.name == "alert_webhook"]
    assert resource.configured_values["url"] == ResourceConfigEnvVarSnap(name=ALERT_WEBHOOK_ENV)
    assert token not in serialize_value(snapshot)
    sensors = {sensor.name for sensor in definitions.get_repository_def().sensor_defs}
    assert {FEED_SENSOR, JOB_SENSOR} <= sensors
