"""The feed alerts against a real lake written through the ingest path by the simulator, with
the real ``feed_alerts`` sensor evaluated minute by minute on the simulator's clock, posting to a
webhook receiver on 127.0.0.1: each condition fires once per incident and once on recovery."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.alert_conditions import (
    LAKE_UNREADABLE,
    QUOTA,
    STALE_FEED,
    SYMBOL_FAILING,
    Thresholds,
)
from backquant.symbols import SUPPORTED_SYMBOLS
from pipelines.alerting import AlertSettings
from pipelines.settings import INGEST_CRON_ENV
from tests.alerts.helpers import AlertSensors, at_minute, feed_resources, tally, tick, webhook
from tests.alerts.receiver import Receiver
from tests.support.simulator import SIM_START, running_simulator


def test_an_outage_alerts_stale_feed_and_each_failing_symbol_once_then_recovers_once(
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    home = tmp_path / "lake"
    with running_simulator(frozen_at=SIM_START, burst_limit_per_minute=10_000) as sim:
        sensors = AlertSensors(sim, instance, feed_resources(home, webhook(receiver.url)))
        for minute in range(2):
            at_minute(sim, minute)
            assert len(tick(sim, home).stored) == 4
            sensors.evaluate()
        sim.set_faults("503")  # BackQuant answers 503 to everything: no tick can be stored
        for minute in range(2, 9):
            at_minute(sim, minute)
            assert tick(sim, home).stored == ()
            sensors.evaluate()
            if minute == 5:
                # 4 minutes since the newest snapshot and 4 failures each: nothing yet
                assert receiver.posts == []
        opened = tally(receiver)
        sim.set_faults("")
        for minute in range(9, 13):
            at_minute(sim, minute)
            assert len(tick(sim, home).stored) == 4
            sensors.evaluate()

    failing = [f"{SYMBOL_FAILING}:{symbol}" for symbol in SUPPORTED_SYMBOLS]
    assert opened == {(key, "alert"): 1 for key in [STALE_FEED, *failing]}
    assert tally(receiver) == {
        (key, kind): 1 for key in [STALE_FEED, *failing] for kind in ("alert", "recovery")
    }
    texts = receiver.texts()
    (stale,) = [text for text in texts if text.startswith("[termstore] ALERT feed stale")]
    assert "no tick stored for" in stale and "upstream_error" in stale
    (btc,) = [text for text in texts if text.startswith("[termstore] ALERT BTCUSDT failing")]
    assert "BTCUSDT failed 5 fetch attempts in a row" in btc and "503" in btc
    resolved = "[termstore] RESOLVED feed stale: ticks are being stored again"
    assert any(text.startswith(resolved) for text in texts)
    # Recoveries come after their alerts, and nothing is left open or queued.
    kinds = [post.body["termstore"]["kind"] for post in receiver.posts]
    assert kinds == ["alert"] * 5 + ["recovery"] * 5
    assert sensors.state().incidents == {} and sensors.state().outbox == []
    assert sensors.results[-1].skip_reason is not None
    assert "open alerts: none" in str(sensors.results[-1].skip_reason.skip_message)


def test_one_failing_symbol_alerts_once_with_its_reason_and_the_feed_stays_fresh(
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    home = tmp_path / "lake"
    with running_simulator(frozen_at=SIM_START, faults="SOLUSDT:404") as sim:
        sensors = AlertSensors(sim, instance, feed_resources(home, webhook(receiver.url)))
        for minute in range(8):
            at_minute(sim, minute)
            assert tick(sim, home).failed == ("SOLUSDT",)
            sensors.evaluate()
            assert len(receiver.posts) == (0 if minute < 4 else 1)
        sim.set_faults("")
        for minute in range(8, 11):
            at_minute(sim, minute)
            tick(sim, home)
            sensors.evaluate()

    assert tally(receiver) == {
        ("symbol_failing:SOLUSDT", "alert"): 1,
        ("symbol_failing:SOLUSDT", "recovery"): 1,
    }
    alert, recovery = receiver.texts()
    assert "SOLUSDT failed 5 fetch attempts in a row" in alert
    assert "latest: not_found:" in alert
    assert recovery.startswith("[termstore] RESOLVED SOLUSDT failing: SOLUSDT is being fetched")
    # The alert is also a Dagster event on the tick asset, open then resolved.
    observations = [
        event
        for result in sensors.results
        for event in result.asset_events or []
        if isinstance(event, dg.AssetObservation)
    ]
    assert [(o.asset_key.to_user_string(), o.metadata["state"].value) for o in observations] == [
        ("expiry_ticks", "open"),
        ("expiry_ticks", "resolved"),
    ]


def test_a_quota_projected_to_run_out_before_its_reset_alerts_once_naming_the_day(
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    home = tmp_path / "lake"
    # 400 requests a month at 4 a minute: spent about 100 minutes into Monday 2 March.
    with running_simulator(frozen_at=SIM_START, monthly_quota=400) as sim:
        sensors = AlertSensors(sim, instance, feed_resources(home, webhook(receiver.url)))
        for minute in range(12):
            at_minute(sim, minute)
            assert len(tick(sim, home).stored) == 4
            sensors.evaluate()
            # The rate is known after ten minutes of samples, not before.
            assert len(receiver.posts) == (0 if minute < 10 else 1)
        # The plan is upgraded: the same rate now lasts past the reset on 1 April.
        sim.app.state.simulator.limiter.monthly_quota = 1_000_000
        for minute in range(12, 15):
            at_minute(sim, minute)
            tick(sim, home)
            sensors.evaluate()

    assert tally(receiver) == {(QUOTA, "alert"): 1, (QUOTA, "recovery"): 1}
    alert, recovery = receiver.texts()
    assert "projected to run out on Monday 2 March 2026 around 13:" in alert
    assert "before it resets on Wednesday 1 April 2026" in alert
    assert "of 400 requests used" in alert and "5,760 a day" in alert
    assert "no longer projected to run out" in recovery


def test_a_lake_that_cannot_be_read_alerts_once_and_recovers_once(
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    home = tmp_path / "lake"
    home.mkdir()
    catalog = home / "catalog.sqlite"
    catalog.write_bytes(b"not a database, whatever it was " * 64)
    with running_simulator(frozen_at=SIM_START) as sim:
        sensors = AlertSensors(
            sim,
            instance,
            feed_resources(home, webhook(receiver.url)),
            thresholds=Thresholds(unreadable_retry_s=0.0),
        )
        for minute in range(3):
            at_minute(sim, minute)
            sensors.evaluate()
        catalog.unlink()  # the catalog is back: here, a new lake
        for minute in range(3, 5):
            at_minute(sim, minute)
            tick(sim, home)
            sensors.evaluate()

    assert tally(receiver) == {(LAKE_UNREADABLE, "alert"): 1, (LAKE_UNREADABLE, "recovery"): 1}
    alert, _ = receiver.texts()
    assert "cannot read the lake: the catalog file" in alert and "is not a SQLite database" in alert


def test_one_frozen_symbol_alerts_once_by_name_and_stays_open_when_the_whole_feed_stops(
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    """BackQuant stops refreshing HYPEUSDT (each fetch a duplicate) while the others advance;
    SOLUSDT never had data (a cold start): only HYPEUSDT is stale, SOLUSDT is failing. The
    ticks then stop altogether, and later resume with both symbols healthy."""
    home = tmp_path / "lake"
    frozen, failing = f"{STALE_FEED}:HYPEUSDT", f"{SYMBOL_FAILING}:SOLUSDT"
    with running_simulator(frozen_at=SIM_START, faults="HYPEUSDT:frozen; SOLUSDT:404") as sim:
        sensors = AlertSensors(sim, instance, feed_resources(home, webhook(receiver.url)))
        for minute in range(10):
            at_minute(sim, minute)
            report = tick(sim, home)
            assert report.symbol("HYPEUSDT").status == ("stored" if minute == 0 else "duplicate")
            sensors.evaluate()
            # SOLUSDT's fifth failure is at minute 4; HYPEUSDT's summary is `minute` minutes
            # behind the others', over 5 from minute 6.
            opened = {key for key, after in ((failing, 4), (frozen, 6)) if minute >= after}
            assert tally(receiver) == {(key, "alert"): 1 for key in opened}
        for minute in range(10, 17):  # no tick at all: the feed is stale, HYPEUSDT still is
            at_minute(sim, minute)
            sensors.evaluate()
        assert set(sensors.state().incidents) == {STALE_FEED, frozen, failing}
        sim.set_faults("")
        for minute in range(17, 19):
            at_minute(sim, minute)
            assert len(tick(sim, home).stored) == 4
            sensors.evaluate()

    assert tally(receiver) == {
        (key, kind): 1 for key in (STALE_FEED, frozen, failing) for kind in ("alert", "recovery")
    }
    texts = receiver.texts()
    (alert,) = [text for text in texts if text.startswith("[termstore] ALERT HYPEUSDT stale")]
    assert "BackQuant keeps serving HYPEUSDT's summary computed at 2026-03-02 12:00 UTC" in alert
    assert "6 min behind the rest of the feed (newest 2026-03-02 12:06 UTC)" in alert
    assert "(duplicate)" in alert
    recovered = "[termstore] RESOLVED HYPEUSDT stale: HYPEUSDT's data is advancing again"
    assert any(text.startswith(recovered) for text in texts)
    assert sensors.state().incidents == {}


def test_a_symbol_that_had_data_then_fails_is_failing_not_stale(
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    """SOLUSDT is stored for two minutes, then BackQuant answers 404: its data falls behind the
    others', but a failing fetch is ``symbol_failing``'s alert, not a second one."""
    home = tmp_path / "lake"
    with running_simulator(frozen_at=SIM_START) as sim:
        sensors = AlertSensors(sim, instance, feed_resources(home, webhook(receiver.url)))
        for minute in range(13):
            if minute == 2:
                sim.set_faults("SOLUSDT:404")
            at_minute(sim, minute)
            tick(sim, home)
            sensors.evaluate()

    assert tally(receiver) == {(f"{SYMBOL_FAILING}:SOLUSDT", "alert"): 1}


def test_a_slower_schedule_raises_the_stale_threshold_so_a_healthy_feed_stays_quiet(
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    """A tick every 10 minutes, the sensor every minute as the daemon runs it, with the
    thresholds the code location reads from that environment."""
    thresholds = AlertSettings.from_env({INGEST_CRON_ENV: "*/10 * * * *"}).thresholds
    assert thresholds.stale_minutes == 20
    home = tmp_path / "lake"
    with running_simulator(frozen_at=SIM_START) as sim:
        sensors = AlertSensors(
            sim, instance, feed_resources(home, webhook(receiver.url)), thresholds=thresholds
        )
        for minute in range(31):
            at_minute(sim, minute)
            if minute % 10 == 0:
                assert len(tick(sim, home).stored) == 4
            sensors.evaluate()
        assert receiver.posts == []
        for minute in (40, 49, 50):  # the ticks stop after 12:30: two missed, then stale
            at_minute(sim, minute)
            sensors.evaluate()
            assert len(receiver.posts) == (1 if minute == 50 else 0)

    (alert,) = receiver.texts()
    assert alert.startswith("[termstore] ALERT feed stale: no tick stored for 20 min")
