"""The incident bookkeeping and the settings: what opens, what closes, what a check that cannot
tell does (a condition that raises, no lake yet), how the queue is bounded and posted, and what
a bad setting says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assets import alert_conditions
from assets.alert_conditions import Thresholds
from assets.alert_webhook import ALERT_WEBHOOK_ENV, AlertWebhookResource
from assets.alerts import (
    MAX_QUEUED,
    AlertState,
    Check,
    Finding,
    Message,
    Transition,
    advance,
    deliver,
    enqueue,
)
from pipelines.alerting import (
    ALERT_FAILED_ATTEMPTS_ENV,
    ALERT_STALE_MINUTES_ENV,
    AlertSettings,
)
from pipelines.settings import INGEST_CRON_ENV, SettingsError
from storage.lake_config import LakeConfig
from storage.warehouse import Warehouse

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def failing(*symbols: str) -> Check:
    return Check(
        "symbol_failing",
        tuple(
            Finding(
                key=f"symbol_failing:{symbol}",
                title=f"{symbol} failing",
                summary=f"{symbol} failed",
                recovery=f"{symbol} is back",
                asset="expiry_ticks",
            )
            for symbol in symbols
        ),
    )


def kinds(transitions: list[Transition]) -> list[tuple[str, str]]:
    return [(t.incident.key, t.kind) for t in transitions]


def test_an_incident_opens_once_stays_quiet_and_closes_once() -> None:
    state = AlertState()
    assert kinds(advance(state, [failing("SOLUSDT")], NOW)) == [("symbol_failing:SOLUSDT", "alert")]
    for minute in range(1, 30):
        assert advance(state, [failing("SOLUSDT")], NOW + timedelta(minutes=minute)) == []
    (recovery,) = advance(state, [failing()], NOW + timedelta(minutes=30))
    assert recovery.kind == "recovery"
    assert recovery.message.text == (
        "[termstore] RESOLVED SOLUSDT failing: SOLUSDT is back (after 30 min)"
    )
    assert state.incidents == {}


def test_a_check_that_cannot_tell_keeps_its_incidents_and_scopes_do_not_overlap() -> None:
    state = AlertState()
    advance(state, [failing("SOLUSDT", "HYPEUSDT")], NOW)
    assert advance(state, [Check("symbol_failing", None, "the lake could not be read")], NOW) == []
    assert set(state.incidents) == {"symbol_failing:SOLUSDT", "symbol_failing:HYPEUSDT"}
    # Another scope's all-clear closes nothing here.
    assert advance(state, [Check("symbol", ()), Check("stale_feed", ())], NOW) == []
    assert kinds(advance(state, [failing("HYPEUSDT")], NOW)) == [
        ("symbol_failing:SOLUSDT", "recovery")
    ]


def test_the_cursor_round_trips_and_a_foreign_cursor_is_refused() -> None:
    state = AlertState(extra={"jobs": {"history": {"at": 1.5, "seen": ["r1"]}}})
    enqueue(state, [t.message for t in advance(state, [failing("BTCUSDT")], NOW)])
    again = AlertState.from_cursor(state.to_cursor())
    assert again == state
    with pytest.raises(ValueError):
        AlertState.from_cursor('{"v": 99}')


def test_the_queue_is_bounded_and_posted_oldest_first_until_the_first_failure() -> None:
    state = AlertState()
    messages = [Message(f"m{i}", "k", "alert", f"text {i}", NOW.isoformat()) for i in range(105)]
    dropped = enqueue(state, messages)
    assert [m.id for m in dropped] == [f"m{i}" for i in range(5)]
    assert len(state.outbox) == MAX_QUEUED
    sent: list[str] = []

    def send(message: Message) -> None:
        if len(sent) == 2:
            raise RuntimeError("the webhook answered HTTP 503")
        sent.append(message.id)

    attempts = deliver(state, send)
    assert [(a.message.id, a.error) for a in attempts] == [
        ("m5", None),
        ("m6", None),
        ("m7", "the webhook answered HTTP 503"),
    ]
    assert state.outbox[0].id == "m7" and state.outbox[0].attempts == 1
    assert len(state.outbox) == MAX_QUEUED - 2


def test_settings_defaults_and_bad_values_say_what_to_set() -> None:
    settings = AlertSettings.from_env({})
    assert (settings.thresholds.stale_minutes, settings.thresholds.failed_attempts) == (5, 5)
    assert not settings.webhook_set
    assert AlertSettings.from_env({ALERT_STALE_MINUTES_ENV: "15"}).thresholds.stale_minutes == 15
    with pytest.raises(SettingsError, match="must be a positive whole number"):
        AlertSettings.from_env({ALERT_FAILED_ATTEMPTS_ENV: "0"})
    secret = "T0/B0/abcdefabcdef"
    for url in (f"http://hooks.example.com/{secret}", f"ftp://x/{secret}", f"hooks/{secret}"):
        with pytest.raises(SettingsError, match="must be an https:// URL") as raised:
            AlertSettings.from_env({ALERT_WEBHOOK_ENV: url})
        assert secret not in str(raised.value)
    assert AlertSettings.from_env({ALERT_WEBHOOK_ENV: "http://127.0.0.1:9/hook"}).webhook_set


@pytest.mark.parametrize(
    ("cron", "minutes"),
    [
        ("* * * * *", 5),
        ("*/2 * * * *", 5),
        ("*/5 * * * *", 10),
        ("*/10 * * * *", 20),
        # Fires at :00, :07 … :56: its longest gap is 7 minutes.
        ("*/7 * * * *", 14),
        # Weekdays 09:00–17:00: the weekend, Friday 17:00 to Monday 09:00, is its longest gap.
        ("0 9-17 * * 1-5", 2 * 64 * 60),
    ],
)
def test_the_stale_threshold_follows_the_ingest_schedule(cron: str, minutes: int) -> None:
    assert AlertSettings.from_env({INGEST_CRON_ENV: cron}).thresholds.stale_minutes == minutes


def test_a_stale_threshold_set_explicitly_wins_and_a_bad_cron_says_what_to_set() -> None:
    env = {INGEST_CRON_ENV: "*/10 * * * *", ALERT_STALE_MINUTES_ENV: "7"}
    assert AlertSettings.from_env(env).thresholds.stale_minutes == 7
    with pytest.raises(SettingsError, match=r"\(default 20\)"):
        AlertSettings.from_env({**env, ALERT_STALE_MINUTES_ENV: "soon"})
    with pytest.raises(SettingsError, match=r"'61 \* \* \* \*' is not a valid five-field"):
        AlertSettings.from_env({INGEST_CRON_ENV: "61 * * * *"})


def test_slack_gets_text_only_and_other_endpoints_the_fields_too() -> None:
    slack = AlertWebhookResource(url="https://hooks.slack.com/services/T/B/x")
    other = AlertWebhookResource(url="https://alerts.example.com/termstore")
    assert slack.payload("hi", {"id": "a"}) == {"text": "hi"}
    assert other.payload("hi", {"id": "a"}) == {"text": "hi", "termstore": {"id": "a"}}


def test_a_condition_that_raises_cannot_tell_and_the_others_still_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Warehouse.open(tmp_path) as warehouse:
        warehouse.initialise()
        config = warehouse.config

    def broken(*args: object) -> Check:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(alert_conditions, "quota_outlook", broken)
    evaluated = alert_conditions.feed_checks(config, NOW, Thresholds())
    checks = {check.scope: check for check in evaluated}
    assert checks["quota"].findings is None and checks["quota"].failed
    assert checks["quota"].note == "the check failed: ZeroDivisionError: a bug"
    # An empty lake: nothing stale (nothing ever arrived), nothing failing, lake readable.
    assert [checks[s].findings for s in ("lake_unreadable", "stale_feed", "symbol_failing")] == [
        (),
        (),
        (),
    ]


def test_no_lake_yet_is_not_an_alert_and_creates_nothing(tmp_path: Path) -> None:
    config = LakeConfig.from_env(tmp_path / "none", env={})
    checks = alert_conditions.feed_checks(config, NOW, Thresholds())
    assert [(c.scope, c.findings) for c in checks] == [
        ("lake_unreadable", ()),
        ("stale_feed", None),
        ("symbol_failing", None),
        ("quota", None),
    ]
    assert not (tmp_path / "none").exists()


def test_a_round_of_posts_stops_at_its_time_budget() -> None:
    state = AlertState()
    enqueue(state, [Message(f"m{i}", "k", "alert", "t", NOW.isoformat()) for i in range(5)])
    ticks = iter(range(0, 1000, 6))  # each reading of the clock: 6 s later
    attempts = deliver(state, lambda message: None, budget_s=15.0, clock=lambda: next(ticks))
    assert [a.message.id for a in attempts] == ["m0", "m1"]
    assert [m.id for m in state.outbox] == ["m2", "m3", "m4"]
