"""The alert webhook: a Slack incoming webhook or any HTTPS endpoint that takes JSON.

The URL is a secret (a Slack webhook URL is its own credential): the code location passes it as
``EnvVar("TERMSTORE_ALERT_WEBHOOK")``, so the UI shows the variable's name, and nothing here
puts it in a message. httpx logs every request's URL at INFO on its ``httpx`` logger; a filter
on that logger drops the records that carry a webhook URL.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final
from urllib.parse import urlsplit

import dagster as dg
import httpx
from pydantic import Field

ALERT_WEBHOOK_ENV: Final[str] = "TERMSTORE_ALERT_WEBHOOK"
LOOPBACK_HOSTS: Final[frozenset[str]] = frozenset({"127.0.0.1", "::1", "localhost"})
SLACK_HOSTS: Final[frozenset[str]] = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


class DeliveryError(RuntimeError):
    """A post that did not get a 2xx answer; the message never holds the URL."""


def webhook_problem(url: str) -> str | None:
    """Why ``url`` cannot be the webhook, without repeating it; None when it can."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return f"{ALERT_WEBHOOK_ENV} is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return None
    scheme = parts.scheme or "no scheme"
    return (
        f"{ALERT_WEBHOOK_ENV} must be an https:// URL (http:// only to 127.0.0.1, ::1 or "
        f"localhost); the value set has {scheme!r} and is not shown because it is a secret"
    )


class _HideSecretUrls(logging.Filter):
    """Drops log records whose text contains a registered secret."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        with self._lock:
            self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = tuple(self._secrets)
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        return not any(secret in text for secret in secrets)


_HIDDEN = _HideSecretUrls()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_HIDDEN)


def redact(text: str, url: str) -> str:
    """``text`` with the URL, and its path on its own, replaced by ``***``."""
    if not url:
        return text
    path = urlsplit(url).path
    for secret in (url, url.rstrip("/"), path if len(path) > 1 else ""):
        if secret:
            text = text.replace(secret, "***")
    return text


class AlertWebhookResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where alerts are posted. Empty ``url``: alerts show in Dagster and ``termstore doctor``
    only. Short timeouts: a webhook that is down or slow costs one evaluation of an alert
    sensor a few seconds at most, and never an ingest run (sensors run in the daemon)."""

    url: str = Field(
        default="",
        description="TERMSTORE_ALERT_WEBHOOK (a secret; set through the variable only).",
    )
    connect_timeout_s: float = 3.0
    timeout_s: float = 5.0

    @property
    def configured(self) -> bool:
        return bool(self.url.strip())

    @property
    def is_slack(self) -> bool:
        return (urlsplit(self.url.strip()).hostname or "") in SLACK_HOSTS

    def payload(self, text: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Slack takes ``text``; any other endpoint also gets the alert's fields."""
        return {"text": text} if self.is_slack else {"text": text, "termstore": fields}

    def post(self, payload: dict[str, Any]) -> None:
        """Post one JSON message; raises ``DeliveryError`` (URL-free) unless answered 2xx."""
        url = self.url.strip()
        problem = webhook_problem(url)
        if problem is not None:
            raise DeliveryError(problem)
        _HIDDEN.add(url)
        timeout = httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False) as client:
                response = client.post(url, json=payload)
        except httpx.TimeoutException:
            raise DeliveryError(f"the webhook did not answer within {self.timeout_s:g} s") from None
        except httpx.HTTPError as error:
            reason = redact(str(error), url) or type(error).__name__
            raise DeliveryError(f"could not reach the webhook: {reason}") from None
        if not response.is_success:
            body = redact(response.text[:200], url).strip()
            raise DeliveryError(
                f"the webhook answered HTTP {response.status_code}" + (f": {body}" if body else "")
            )
