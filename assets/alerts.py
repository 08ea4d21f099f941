"""Alert incidents: one message when a condition starts, one when it clears, nothing between.

A sensor evaluates its conditions (``Check``: what is wrong now, per scope) and ``advance``
compares them with the incidents it holds open: a new finding opens an incident and queues an
alert, an open incident whose finding is gone closes and queues a recovery. A check that could
not tell (``findings=None``: too little data, a query failed) leaves its incidents as they are,
so a gap in the data never produces a recovery followed by a second alert.

Open incidents and undelivered messages live in the sensor's cursor (``AlertState``), so they
survive daemon restarts; ``deliver`` posts the queue oldest first and stops at the first failure,
which stays queued for the next evaluation. Delivery is at least once: a receiver that took a
message but answered after the timeout gets it again (each payload carries an ``id``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

ALERT: Final = "alert"
RECOVERY: Final = "recovery"
CURSOR_VERSION: Final[int] = 1
MAX_QUEUED: Final[int] = 100
"""Messages kept for a webhook that stays down; older ones are dropped (and logged)."""
DELIVERY_BUDGET_S: Final[float] = 15.0
"""Past this, an evaluation stops posting (well inside Dagster's 60 s sensor timeout)."""

Kind = Literal["alert", "recovery"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong now. ``key`` names the incident (``scope`` or ``scope:subject``)."""

    key: str
    title: str
    summary: str
    recovery: str
    """What the recovery message says once the finding is gone."""
    asset: str
    """The asset whose event log shows the alert."""


@dataclass(frozen=True, slots=True)
class Check:
    """The findings of one condition. ``findings=None``: it could not tell this time."""

    scope: str
    findings: tuple[Finding, ...] | None
    note: str = ""
    failed: bool = False
    """The condition raised (``note`` says what): worth a warning, unlike too little data."""

    def covers(self, key: str) -> bool:
        return key == self.scope or key.startswith(f"{self.scope}:")


@dataclass(slots=True)
class Incident:
    key: str
    title: str
    summary: str
    recovery: str
    asset: str
    opened_at: str
    latest: str = ""
    """The finding's summary at the latest evaluation (shown by doctor; never re-sent)."""


@dataclass(slots=True)
class Message:
    id: str
    key: str
    kind: str
    text: str
    created_at: str
    attempts: int = 0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    kind: Kind
    incident: Incident
    message: Message


@dataclass(slots=True)
class AlertState:
    """What an alert sensor keeps in its cursor."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    outbox: list[Message] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    """Sensor-specific bookkeeping (the job sensor's run watermarks)."""

    @classmethod
    def from_cursor(cls, cursor: str | None) -> AlertState:
        """The state in ``cursor``; an empty state for no cursor. Raises ValueError when the
        cursor is not one of ours."""
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise ValueError("the cursor is not an alert state of this version")
        return cls(
            incidents={key: Incident(**value) for key, value in data["incidents"].items()},
            outbox=[Message(**value) for value in data["outbox"]],
            extra=dict(data.get("extra", {})),
        )

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "incidents": {key: asdict(value) for key, value in self.incidents.items()},
                "outbox": [asdict(message) for message in self.outbox],
                "extra": self.extra,
            },
            sort_keys=True,
        )

    def summary(self) -> str:
        """One line for the sensor's tick: what is open and what waits for delivery."""
        opened = ", ".join(sorted(self.incidents)) or "none"
        waiting = f"; {len(self.outbox)} message(s) waiting for the webhook" if self.outbox else ""
        return f"open alerts: {opened}{waiting}"


def iso(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds")


def duration(seconds: float) -> str:
    """``under a minute``, ``37 min``, ``2 h 05 min``, ``3 d 4 h``: how long an incident lasted."""
    minutes = max(int(seconds // 60), 0)
    if minutes == 0:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _message(kind: Kind, incident: Incident, now: datetime) -> Message:
    if kind == ALERT:
        text = f"[termstore] ALERT {incident.title}: {incident.summary}"
    else:
        lasted = duration((now - datetime.fromisoformat(incident.opened_at)).total_seconds())
        text = f"[termstore] RESOLVED {incident.title}: {incident.recovery} (after {lasted})"
    return Message(
        id=f"{incident.key}@{incident.opened_at}/{kind}",
        key=incident.key,
        kind=kind,
        text=text,
        created_at=iso(now),
    )


def advance(state: AlertState, checks: Iterable[Check], now: datetime) -> list[Transition]:
    """Open an incident per new finding, close those whose finding is gone; checks that could
    not tell change nothing. Returns the transitions, in order."""
    transitions: list[Transition] = []
    for check in checks:
        if check.findings is None:
            continue
        current = {finding.key: finding for finding in check.findings}
        for key in [key for key in state.incidents if check.covers(key) and key not in current]:
            closed = state.incidents.pop(key)
            transitions.append(Transition(RECOVERY, closed, _message(RECOVERY, closed, now)))
        for key, finding in current.items():
            held = state.incidents.get(key)
            if held is not None:
                held.latest = finding.summary
                continue
            opened = Incident(
                key=key,
                title=finding.title,
                summary=finding.summary,
                recovery=finding.recovery,
                asset=finding.asset,
                opened_at=iso(now),
                latest=finding.summary,
            )
            state.incidents[key] = opened
            transitions.append(Transition(ALERT, opened, _message(ALERT, opened, now)))
    return transitions


def enqueue(state: AlertState, messages: Iterable[Message]) -> list[Message]:
    """Queue messages for the webhook; returns the oldest ones dropped past ``MAX_QUEUED``."""
    state.outbox.extend(messages)
    overflow = len(state.outbox) - MAX_QUEUED
    if overflow <= 0:
        return []
    dropped, state.outbox = state.outbox[:overflow], state.outbox[overflow:]
    return dropped


@dataclass(frozen=True, slots=True)
class Attempt:
    message: Message
    error: str | None
    """None: delivered."""


def deliver(
    state: AlertState,
    send: Callable[[Message], None],
    *,
    budget_s: float = DELIVERY_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> list[Attempt]:
    """Post queued messages oldest first. The first failure stops the round (the receiver is
    down or slow: one timeout per evaluation is enough) and stays queued with its error."""
    attempts: list[Attempt] = []
    started = clock()
    while state.outbox and clock() - started < budget_s:
        message = state.outbox[0]
        message.attempts += 1
        try:
            send(message)
        except Exception as error:  # whatever went wrong, the message must stay queued
            message.last_error = str(error)
            attempts.append(Attempt(message, message.last_error))
            break
        state.outbox.pop(0)
        attempts.append(Attempt(message, None))
    return attempts


def payload_fields(message: Message) -> dict[str, Any]:
    """The structured part of a post, for receivers other than Slack."""
    return {
        "id": message.id,
        "alert": message.key,
        "kind": message.kind,
        "created_at": message.created_at,
    }
