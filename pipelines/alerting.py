"""Alert sensors: the feed (stale, failing symbol, quota) and the nightly/maintenance jobs.

Two sensors in the daemon, never a step of an ingest run, so a webhook that is down or slow
costs an alert evaluation a few seconds at most and the ingest nothing. Each keeps its open
incidents and undelivered messages in its cursor (``assets.alerts``): one message per incident,
one on recovery, and a message the webhook did not take is retried at the next evaluation.

The job alerts read the finished runs of ``history`` and ``maintenance`` (and the UI's or a
backfill's runs of their assets) from the instance, in the order they finished, rather than being
run-status sensors: a run-status sensor's cursor belongs to Dagster (it advances even when the
sensor fails), so it cannot keep an undelivered message for a retry, nor the incident a later
success closes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import dagster as dg
from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME

from assets.alert_conditions import DEFAULT_STALE_MINUTES, FEED_SCOPES, Thresholds, feed_checks
from assets.alert_webhook import (
    ALERT_WEBHOOK_ENV,
    AlertWebhookResource,
    redact,
    webhook_problem,
)
from assets.alerts import (
    ALERT,
    MAX_QUEUED,
    AlertState,
    Check,
    Finding,
    Transition,
    advance,
    deliver,
    enqueue,
    payload_fields,
)
from assets.history import HISTORY_ASSET, cron_interval
from assets.maintenance import MAINTENANCE_ASSET
from assets.resources import WarehouseResource
from pipelines.automation import HISTORY_JOB, MAINTENANCE_JOB
from pipelines.settings import SettingsError, bad_cron_message, ingest_cron

if TYPE_CHECKING:
    from storage.lake_config import LakeConfig

ALERT_STALE_MINUTES_ENV: Final[str] = "TERMSTORE_ALERT_STALE_MINUTES"
ALERT_FAILED_ATTEMPTS_ENV: Final[str] = "TERMSTORE_ALERT_FAILED_ATTEMPTS"
FEED_SENSOR: Final[str] = "feed_alerts"
JOB_SENSOR: Final[str] = "job_alerts"
JOB_FAILED: Final[str] = "job_failed"
WATCHED_JOBS: Final[dict[str, str]] = {
    HISTORY_JOB: HISTORY_ASSET,
    MAINTENANCE_JOB: MAINTENANCE_ASSET,
}
FINISHED: Final[list[dg.DagsterRunStatus]] = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
]
ASSET_JOB: Final[str] = IMPLICIT_ASSET_JOB_NAME
"""The job of the runs Dagster launches for selected assets: the UI's *Materialize*, a backfill."""
ASSET_JOB_LOOKBACK: Final[int] = 100
"""How many of the asset job's newest runs a first look searches for one of a watched asset."""
REWIND: Final[timedelta] = timedelta(minutes=5)
"""Runs finished this long before the watermark are read again (and skipped when seen), so a
run whose update lands late is not missed."""
ERROR_CHARS: Final[int] = 300

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    thresholds: Thresholds
    webhook_set: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlertSettings:
        """The thresholds and whether a webhook is set; a bad value fails at load time with
        what to set (a bad URL is never repeated: it is a secret)."""
        source = os.environ if env is None else env
        url = source.get(ALERT_WEBHOOK_ENV, "").strip()
        problem = webhook_problem(url) if url else None
        if problem is not None:
            raise SettingsError(problem)
        return cls(
            thresholds=Thresholds(
                stale_minutes=_stale_minutes(source),
                failed_attempts=_positive_int(source, ALERT_FAILED_ATTEMPTS_ENV, 5),
            ),
            webhook_set=bool(url),
        )

    def webhook(self) -> AlertWebhookResource:
        """The resource, its URL as ``EnvVar``: the UI shows the variable's name only."""
        return AlertWebhookResource(url=dg.EnvVar(ALERT_WEBHOOK_ENV) if self.webhook_set else "")


def stale_minutes_for(interval: timedelta) -> int:
    """Twice the ingest schedule's longest interval, at least the default: a slower schedule's
    feed is stale once a tick is missed, not between two ticks."""
    return max(DEFAULT_STALE_MINUTES, math.ceil(2 * interval / timedelta(minutes=1)))


def _stale_minutes(source: Mapping[str, str]) -> int:
    """``TERMSTORE_ALERT_STALE_MINUTES`` when set, else ``stale_minutes_for`` the schedule."""
    cron = ingest_cron(source)
    try:
        interval = cron_interval(cron)
    except ValueError:
        raise SettingsError(bad_cron_message(cron)) from None
    return _positive_int(source, ALERT_STALE_MINUTES_ENV, stale_minutes_for(interval))


def _positive_int(source: Mapping[str, str], name: str, default: int) -> int:
    text = source.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise SettingsError(f"{name}={text!r} must be a positive whole number (default {default})")
    return int(text)


# -- the jobs -------------------------------------------------------------------------------------


def _stamp(instant: datetime) -> float:
    return (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).timestamp()


def _finished_at(record: dg.RunRecord) -> float:
    return _stamp(record.update_timestamp)


def _job_runs(
    instance: dg.DagsterInstance,
    job: str,
    asset: str,
    after: datetime | None = None,
    limits: tuple[int | None, int | None] = (None, None),
) -> list[dg.RunRecord]:
    """The finished runs that count for ``job``, oldest finish first: its own, and the asset
    job's that materialise ``asset``. ``limits``: how many of the newest runs of ``job`` and
    of the asset job are read (``None``: all those updated after ``after``)."""
    key = dg.AssetKey(asset)
    records: list[dg.RunRecord] = []
    for name, limit in zip((job, ASSET_JOB), limits, strict=True):
        read = instance.get_run_records(
            dg.RunsFilter(job_name=name, statuses=FINISHED, updated_after=after),
            limit=limit,
            order_by="update_timestamp",
        )
        # An asset job run counts only when it selected the asset (it may be another's).
        records.extend(
            r for r in read if name == job or key in (r.dagster_run.asset_selection or ())
        )
    return sorted(records, key=_finished_at)


def _finished_runs(
    instance: dg.DagsterInstance, job: str, asset: str, mark: Mapping[str, Any], now: datetime
) -> tuple[list[dg.RunRecord], list[dg.RunRecord]]:
    """The runs to judge, and every run read (all are seen from now on)."""
    if "at" in mark:
        after = datetime.fromtimestamp(float(mark["at"]), UTC) - REWIND
        seen = mark.get("seen", {})
        records = [
            record
            for record in _job_runs(instance, job, asset, after)
            if record.dagster_run.run_id not in seen
        ]
        return records, records
    # First look: the newest finished run alone says whether the job is failing now. Every run
    # the next look reads again (within REWIND) is seen, or a failure the job has since
    # recovered from would be told then as new.
    recent = _job_runs(instance, job, asset, now - REWIND)
    newest = recent[-1:] or _job_runs(instance, job, asset, limits=(1, ASSET_JOB_LOOKBACK))[-1:]
    return newest, recent + newest


def job_checks(instance: dg.DagsterInstance, marks: dict[str, Any], now: datetime) -> list[Check]:
    """One check per run of a watched job finished since the last evaluation, in the order
    they finished: a failure opens the job's incident, a success closes it. A run of the asset
    job that materialises the job's asset (the UI's *Materialize*, a backfill) counts as the
    job's. ``marks`` (per job: the newest finish read, and the runs read within ``REWIND`` of
    it) is updated in place."""
    checks: list[Check] = []
    for job, asset in WATCHED_JOBS.items():
        mark = marks.setdefault(job, {})
        judged, read = _finished_runs(instance, job, asset, mark, now)
        for record in judged:
            run = record.dagster_run
            failed = run.status == dg.DagsterRunStatus.FAILURE
            findings = (_job_finding(instance, job, asset, run),) if failed else ()
            checks.append(Check(f"{JOB_FAILED}:{job}", findings))
        seen: dict[str, float] = {
            **mark.get("seen", {}),
            **{r.dagster_run.run_id: _finished_at(r) for r in read},
        }
        at = max([float(mark.get("at", now.timestamp())), *seen.values()])
        horizon = at - REWIND.total_seconds()
        mark["at"] = at
        mark["seen"] = {run_id: stamp for run_id, stamp in seen.items() if stamp >= horizon}
    return checks


def _job_finding(instance: dg.DagsterInstance, job: str, asset: str, run: dg.DagsterRun) -> Finding:
    tags = run.tags
    partition = tags.get("dagster/partition") or "–".join(
        value
        for value in (
            tags.get("dagster/asset_partition_range_start"),
            tags.get("dagster/asset_partition_range_end"),
        )
        if value
    )
    where = f" (partition {partition})" if partition else ""
    return Finding(
        key=f"{JOB_FAILED}:{job}",
        title=f"{job} job failed",
        summary=f"run {run.run_id}{where} failed: {_failure_reason(instance, run.run_id)}",
        recovery=f"the {job} job succeeded again",
        asset=asset,
    )


def _failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """The first failed step's reason: a ``dg.Failure``'s description, else the innermost
    error's first line (Dagster wraps the exception the asset raised); else the run's message."""
    entries = instance.all_logs(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    )
    for entry in entries:
        event = entry.dagster_event
        if event is None or not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return _line(data.user_failure_data.description)
        error = data.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None and error.message.strip():
            return _line(error.message)
    for entry in entries:
        if entry.dagster_event is not None and entry.dagster_event.message:
            return _line(entry.dagster_event.message)
    return "no failure message was logged"


def _line(text: str) -> str:
    lines = text.strip().splitlines()
    first = " ".join(lines[0].split()) if lines else ""
    return first if len(first) <= ERROR_CHARS else f"{first[: ERROR_CHARS - 1]}…"


# -- the sensors ----------------------------------------------------------------------------------


def _state(context: dg.SensorEvaluationContext) -> AlertState:
    try:
        return AlertState.from_cursor(context.cursor)
    except (ValueError, KeyError, TypeError):
        context.log.warning("the alert cursor could not be read; starting with no open alerts")
        return AlertState()


def evaluate(
    context: dg.SensorEvaluationContext,
    state: AlertState,
    checks: Sequence[Check],
    webhook: AlertWebhookResource,
    now: datetime,
) -> dg.SensorResult:
    """Advance the incidents, show each transition as a log line and an asset event, queue it
    for the webhook and post what is queued."""
    url = webhook.url.strip()
    transitions = _advance(state, checks, now, url)
    events = []
    for transition in transitions:
        text = transition.message.text
        opened = transition.kind == ALERT
        (context.log.warning if opened else context.log.info)(text)
        events.append(
            dg.AssetObservation(
                asset_key=transition.incident.asset,
                description=text,
                metadata={
                    "alert": transition.incident.key,
                    "state": "open" if opened else "resolved",
                    "since": transition.incident.opened_at,
                },
            )
        )
    for check in checks:
        if check.failed:
            context.log.warning(f"{check.scope}: {check.note}")
        elif check.findings is None and check.note:
            context.log.debug(f"{check.scope}: cannot tell this time ({check.note})")
    if webhook.configured:
        for dropped in enqueue(state, [transition.message for transition in transitions]):
            context.log.warning(
                f"dropped the undelivered message {dropped.id}: over {MAX_QUEUED} are waiting"
            )
        _post(context, state, webhook)
    elif transitions:
        context.log.info(
            f"{ALERT_WEBHOOK_ENV} is not set: alerts show in these logs, as events of the "
            "assets and in `termstore doctor`"
        )
    return dg.SensorResult(
        cursor=state.to_cursor(), asset_events=events, skip_reason=state.summary()
    )


def _advance(
    state: AlertState, checks: Sequence[Check], now: datetime, url: str
) -> list[Transition]:
    transitions = advance(state, checks, now)
    for transition in transitions:
        # Nothing here knows the URL; this keeps it so if a failure message ever quotes it.
        transition.message.text = redact(transition.message.text, url)
    return transitions


def _post(
    context: dg.SensorEvaluationContext, state: AlertState, webhook: AlertWebhookResource
) -> None:
    url = webhook.url.strip()
    for attempt in deliver(
        state,
        lambda message: webhook.post(webhook.payload(message.text, payload_fields(message))),
    ):
        message = attempt.message
        if attempt.error is None:
            context.log.info(f"posted {message.id} to the webhook (attempt {message.attempts})")
        else:
            message.last_error = redact(attempt.error, url)
            context.log.warning(
                f"could not post {message.id} (attempt {message.attempts}): "
                f"{message.last_error}; {len(state.outbox)} message(s) stay queued and are "
                "retried at the next evaluation"
            )


def build_alert_sensors(
    thresholds: Thresholds, *, clock: Clock = utc_now
) -> list[dg.SensorDefinition]:
    """The feed and job alert sensors; ``clock`` is the time they evaluate at."""

    @dg.sensor(
        name=FEED_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Alerts once per incident, and once on recovery, when no tick was stored for "
            f"{thresholds.stale_minutes} min or one symbol's data fell that far behind the "
            f"others', a symbol failed {thresholds.failed_attempts} attempts in a row, "
            "BackQuant's monthly quota is projected to run out before it resets, or the lake "
            f"cannot be read. Posts to {ALERT_WEBHOOK_ENV} when set."
        ),
    )
    def feed_alerts(
        context: dg.SensorEvaluationContext,
        warehouse: WarehouseResource,
        alert_webhook: AlertWebhookResource,
    ) -> dg.SensorResult:
        now = clock()
        state = _state(context)
        checks = feed_checks(warehouse.config(), now, thresholds)
        return evaluate(context, state, checks, alert_webhook, now)

    @dg.sensor(
        name=JOB_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Alerts once when a {HISTORY_JOB} or {MAINTENANCE_JOB} run fails, and once when "
            f"the job next succeeds. Posts to {ALERT_WEBHOOK_ENV} when set."
        ),
    )
    def job_alerts(
        context: dg.SensorEvaluationContext, alert_webhook: AlertWebhookResource
    ) -> dg.SensorResult:
        now = clock()
        state = _state(context)
        marks = state.extra.setdefault("jobs", {})
        checks = job_checks(context.instance, marks, now)
        return evaluate(context, state, checks, alert_webhook, now)

    return [feed_alerts, job_alerts]


# -- termstore doctor -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DoctorAlert:
    alert: str
    status: str
    """``open``, ``unknown``, ``ok`` or ``queued``."""
    detail: str


def doctor_alerts(
    lake: LakeConfig,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    *,
    dagster_readable: bool = True,
) -> list[DoctorAlert]:
    """The open alerts as of now, evaluated here (so they show even when the daemon is down),
    and the messages the sensors still hold for the webhook. ``dagster_readable=False``: the
    instance's storage failed its check, so it is not opened (Dagster would retry for seconds,
    logging each attempt)."""
    source = os.environ if env is None else env
    at = now or utc_now()
    try:
        settings = AlertSettings.from_env(source)
    except SettingsError as error:
        return [DoctorAlert("settings", "unknown", str(error))]
    rows = [
        DoctorAlert(
            "webhook",
            "ok",
            f"{ALERT_WEBHOOK_ENV} is set (not shown: it is a secret)"
            if settings.webhook_set
            else f"{ALERT_WEBHOOK_ENV} is not set: alerts show in Dagster and here only",
        )
    ]
    rows.extend(_check_rows(feed_checks(lake, at, settings.thresholds)))
    if dagster_readable:
        rows.extend(_dagster_rows(source, at))
    else:
        reason = "Dagster's instance storage cannot be read (see its check above)"
        rows.append(DoctorAlert("jobs", "unknown", reason))
    url = source.get(ALERT_WEBHOOK_ENV, "").strip()
    return [DoctorAlert(row.alert, row.status, redact(row.detail, url)) for row in rows]


def _check_rows(checks: Sequence[Check]) -> list[DoctorAlert]:
    rows: list[DoctorAlert] = []
    for check in checks:
        if check.findings is None:
            rows.append(DoctorAlert(check.scope, "unknown", check.note or "cannot tell"))
        elif check.findings:
            rows.extend(DoctorAlert(f.key, "open", f.summary) for f in check.findings)
        elif check.scope in FEED_SCOPES:
            rows.append(DoctorAlert(check.scope, "ok", "no alert"))
        else:
            rows.append(DoctorAlert(check.scope, "ok", "the latest run succeeded"))
    return rows


def _dagster_rows(source: Mapping[str, str], now: datetime) -> list[DoctorAlert]:
    """Job failures and queued messages, from the Dagster instance when there is one (doctor
    never creates one)."""
    home = Path(source.get("DAGSTER_HOME", "") or "/nonexistent")
    if not ((home / "dagster.yaml").exists() or (home / "history").exists()):
        return [DoctorAlert("jobs", "unknown", "DAGSTER_HOME names no Dagster instance")]
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            rows = _check_rows(job_checks(instance, {}, now))
            rows.extend(_queued_rows(instance))
    except Exception as error:  # whatever the instance raises, doctor reports it and goes on
        reason = f"cannot read the Dagster instance: {_line(str(error))}"
        return [DoctorAlert("jobs", "unknown", reason)]
    return rows


def _queued_rows(instance: dg.DagsterInstance) -> list[DoctorAlert]:
    from dagster._core.scheduler.instigation import InstigatorType

    rows: list[DoctorAlert] = []
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name not in (FEED_SENSOR, JOB_SENSOR):
            continue
        data = state.instigator_data
        cursor = getattr(data, "cursor", None)
        try:
            held = AlertState.from_cursor(cursor)
        except (ValueError, KeyError, TypeError):
            continue
        if held.outbox:
            oldest = held.outbox[0]
            rows.append(
                DoctorAlert(
                    f"{state.name} queue",
                    "queued",
                    f"{len(held.outbox)} message(s) not yet posted, oldest {oldest.created_at} "
                    f"({oldest.attempts} attempt(s); last error: {oldest.last_error or 'none'})",
                )
            )
    return rows
