"""The README's Automation table as data, and the same facts read from a code location's
definitions, so tests can hold the two (and a running daemon) to each other.

    table = readme_automation()           # name -> Automation, as the README states it
    assert defined_automation(defs) == table

``simulated_client_clock(clock)`` makes the BackQuant client stamp its fetch attempts with a
simulator's clock, for tests that drive simulated days (in production both read the wall clock).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Literal

import dagster as dg
import pytest

import backquant.client
from backquant.simulator.clock import SimClock

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Automation"


@dataclass(frozen=True)
class Automation:
    """One schedule or sensor: its kind, when it runs, whether it runs on a fresh instance and
    what it launches (a job name, an asset name, or None for nothing)."""

    kind: Literal["schedule", "sensor"]
    when: str
    """A cron string, or ``every N s`` for a sensor."""
    default_on: bool
    launches: str | None


def readme_automation(readme: Path = README) -> dict[str, Automation]:
    """The rows of the README's Automation table."""
    text = readme.read_text()
    assert HEADING in text, f"the README has no {HEADING!r} section"
    section = text.split(HEADING, 1)[1]
    rows: dict[str, Automation] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            if rows:
                break
            continue
        name, kind, when, default, launches = (cell.strip() for cell in line.strip("|").split("|"))
        assert kind in ("schedule", "sensor"), line
        assert default in ("on", "off"), line
        cron = re.match(r"`([^`]+)`", when)
        target = re.match(r"(?:job|asset) `([^`]+)`", launches)
        assert target or launches.startswith("nothing"), line
        rows[name.strip("`")] = Automation(
            kind="schedule" if kind == "schedule" else "sensor",
            when=cron.group(1) if cron else when,
            default_on=default == "on",
            launches=target.group(1) if target else None,
        )
    return rows


def defined_automation(definitions: dg.Definitions) -> dict[str, Automation]:
    """The same facts, read from the code location's definitions."""
    repository = definitions.get_repository_def()
    found: dict[str, Automation] = {}
    for schedule in repository.schedule_defs:
        cron = schedule.cron_schedule
        assert isinstance(cron, str)
        found[schedule.name] = Automation(
            kind="schedule",
            when=cron,
            default_on=schedule.default_status == dg.DefaultScheduleStatus.RUNNING,
            launches=schedule.job_name,
        )
    for sensor in repository.sensor_defs:
        assets = (
            sensor.asset_selection.resolve(repository.asset_graph)
            if sensor.asset_selection is not None
            else set()
        )
        # An automation sensor may target the implicit ``__ASSET_JOB``: its assets tell.
        jobs = [t.job_name for t in sensor.targets if not t.job_name.startswith("__")]
        found[sensor.name] = Automation(
            kind="sensor",
            when=f"every {sensor.minimum_interval_seconds} s",
            default_on=sensor.default_status == dg.DefaultSensorStatus.RUNNING,
            launches=next(iter(jobs), None)
            or ("/".join(sorted(key.to_user_string() for key in assets)) or None),
        )
    return found


@contextmanager
def simulated_client_clock(clock: SimClock) -> Iterator[None]:
    """The BackQuant client's ``datetime.now`` reads ``clock``: fetch attempts (and so
    ``ingest_log.started_at``) carry the simulated instant."""

    class SimulatedDatetime(datetime):
        # A plain datetime comes back: the stamps are serialised (orjson refuses subclasses).
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return clock.now() if tz is None else clock.now().astimezone(tz)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backquant.client, "datetime", SimulatedDatetime)
        yield
