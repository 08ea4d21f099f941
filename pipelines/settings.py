"""Environment variables of the Dagster code location, read and checked in one place.

Misconfiguration fails when the code location loads, with a message that says what to set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

from backquant.config import API_KEY_ENV, ClientConfig
from backquant.errors import ConfigError

INGEST_CRON_ENV: Final[str] = "TERMSTORE_INGEST_CRON"
HISTORY_START_ENV: Final[str] = "TERMSTORE_HISTORY_START"
SIMULATED_ENV: Final[str] = "TERMSTORE_SIMULATED"
RUN_RETENTION_ENV: Final[str] = "TERMSTORE_KEEP_SUCCESSFUL_RUNS_HOURS"
FAILED_RUN_RETENTION_ENV: Final[str] = "TERMSTORE_KEEP_FAILED_RUNS_DAYS"

DEFAULT_INGEST_CRON: Final[str] = "* * * * *"
DEFAULT_HISTORY_START: Final[str] = "2026-01-01"


class SettingsError(ConfigError):
    """The code location's environment is unusable; the message says what to set."""


@dataclass(frozen=True, slots=True)
class Settings:
    ingest_cron: str
    history_start: date
    simulated: bool
    keep_successful_runs_hours: int
    keep_failed_runs_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        cron = ingest_cron(source)
        start_text = source.get(HISTORY_START_ENV, DEFAULT_HISTORY_START)
        try:
            start = date.fromisoformat(start_text)
        except ValueError:
            raise SettingsError(
                f"{HISTORY_START_ENV}={start_text!r} is not a date; use YYYY-MM-DD"
            ) from None
        return cls(
            ingest_cron=cron,
            history_start=start,
            simulated=source.get(SIMULATED_ENV, "").lower() in {"1", "true", "yes"},
            keep_successful_runs_hours=_positive_int(source, RUN_RETENTION_ENV, 24),
            keep_failed_runs_days=_positive_int(source, FAILED_RUN_RETENTION_ENV, 14),
        )


def ingest_cron(source: Mapping[str, str]) -> str:
    """The ingest schedule's cron; the alert thresholds and the tick's freshness policy follow
    it too. Raises SettingsError when it is not five fields."""
    cron = source.get(INGEST_CRON_ENV, DEFAULT_INGEST_CRON).strip()
    if len(cron.split()) != 5:
        raise SettingsError(bad_cron_message(cron))
    return cron


def bad_cron_message(cron: str) -> str:
    return (
        f"{INGEST_CRON_ENV}={cron!r} is not a valid five-field cron expression; "
        f"use e.g. '{DEFAULT_INGEST_CRON}' (every minute) or '*/5 * * * *'"
    )


def _positive_int(source: Mapping[str, str], name: str, default: int) -> int:
    text = source.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise SettingsError(f"{name}={text!r} must be a positive whole number")
    return int(text)


def check_client_environment(env: Mapping[str, str] | None = None) -> ClientConfig:
    """The client settings, failing at load time when the key or base URL is missing or bad."""
    config = ClientConfig.from_env(env)
    if config.api_key is None:
        raise SettingsError(
            f"{API_KEY_ENV} is not set, so the code location cannot reach BackQuant. Export "
            f"your key (export {API_KEY_ENV}=bq_live_...), or run `make dev`, which starts the "
            "simulator and sets it for you."
        )
    return config
