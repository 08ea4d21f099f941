"""The automation across the day boundary: what ``history_nightly`` asks for and when, that the
README's Automation table is what the code location defines, and that the coverage check judges
today by the ticks due so far and a day that is over by its whole schedule."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.history import HISTORY_ASSET, build_history_asset, due_ticks
from assets.ingest import build_tick_asset
from assets.resources import BackQuantResource, WarehouseResource
from pipelines.automation import HISTORY_SCHEDULE
from tests.support.automation import (
    defined_automation,
    readme_automation,
    simulated_client_clock,
)
from tests.support.fixtures import TEST_KEY, location_env
from tests.support.simulator import running_simulator

FIRST_DAY = date(2026, 1, 1)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def definitions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, instance: dg.DagsterInstance
) -> dg.Definitions:
    """The code location as ``workspace.yaml`` loads it, from a clean environment (resolved
    while a test instance is open: Dagster looks for the current instance when it does)."""
    location_env(
        monkeypatch,
        BACKQUANT_API_KEY=TEST_KEY,
        TERMSTORE_HOME=str(tmp_path / "wh"),
        TERMSTORE_HISTORY_START=FIRST_DAY.isoformat(),
    )
    # Importing the module builds its ``defs`` once, from the environment set above.
    built: dg.Definitions = importlib.import_module("pipelines.definitions").build_definitions()
    built.get_repository_def()
    return built


def test_the_readme_automation_table_is_what_the_location_defines(
    definitions: dg.Definitions,
) -> None:
    table = readme_automation()
    assert defined_automation(definitions) == table
    # Deliberate defaults: only the schedule that spends BackQuant's quota starts off.
    assert [name for name, row in table.items() if not row.default_on] == ["ingest_every_minute"]


@pytest.mark.parametrize(
    ("scheduled", "built"),
    [
        (datetime(2026, 3, 2, 0, 20, tzinfo=UTC), date(2026, 3, 1)),
        (datetime(2026, 3, 1, 0, 20, tzinfo=UTC), date(2026, 2, 28)),  # a month boundary
        (datetime(2028, 3, 1, 0, 20, tzinfo=UTC), date(2028, 2, 29)),  # a leap day
        (datetime(2027, 1, 1, 0, 20, tzinfo=UTC), date(2026, 12, 31)),  # a year boundary
        (datetime(2026, 1, 2, 0, 20, tzinfo=UTC), date(2026, 1, 1)),  # the first partition
    ],
)
def test_history_nightly_asks_for_exactly_the_day_that_just_ended(
    definitions: dg.Definitions, instance: dg.DagsterInstance, scheduled: datetime, built: date
) -> None:
    schedule = definitions.resolve_schedule_def(HISTORY_SCHEDULE)
    assert schedule.cron_schedule == "20 0 * * *"
    assert schedule.execution_timezone == "UTC"
    cron = schedule.cron_schedule
    assert isinstance(cron, str)
    assert due_ticks(cron, scheduled - timedelta(days=1), scheduled + timedelta(seconds=1))[
        -1:
    ] == [scheduled]
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=scheduled,
        repository_def=definitions.get_repository_def(),
    )
    result = schedule.evaluate_tick(context)
    assert result.run_requests is not None
    [request] = result.run_requests
    assert request.partition_key == built.isoformat()
    assert request.run_key == built.isoformat()
    # The partition exists, and it is not the newest one: today is, for a backfill of today.
    partitions = definitions.get_assets_def(HISTORY_ASSET).partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    keys = partitions.get_partition_keys(current_time=scheduled)
    assert built.isoformat() in keys
    assert keys[-1] == scheduled.date().isoformat()


def test_a_late_evaluation_builds_the_scheduled_day_and_none_before_the_first(
    definitions: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    """After the daemon was down, Dagster evaluates the missed 00:20 tick later but with its
    scheduled time; before TERMSTORE_HISTORY_START there is nothing to build."""
    schedule = definitions.resolve_schedule_def(HISTORY_SCHEDULE)
    repository = definitions.get_repository_def()

    def evaluated(at: datetime) -> dg.ScheduleExecutionData:
        return schedule.evaluate_tick(
            dg.build_schedule_context(
                instance=instance, scheduled_execution_time=at, repository_def=repository
            )
        )

    late = evaluated(datetime(2026, 6, 1, 0, 20, tzinfo=UTC))
    before = evaluated(datetime(2026, 1, 1, 0, 20, tzinfo=UTC))
    assert [request.partition_key for request in late.run_requests or []] == ["2026-05-31"]
    assert not before.run_requests
    assert before.skip_message and "2025-12-31 is before the first partition" in before.skip_message


def coverage(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "coverage"]
    return check


def coverage_rows(check: dg.AssetCheckEvaluation) -> list[dict[str, str]]:
    table = check.metadata["per_symbol_day"].value
    assert isinstance(table, dg.TableMetadataValue)
    return [{key: str(value) for key, value in record.data.items()} for record in table.records]


def test_coverage_judges_today_by_the_ticks_due_so_far_and_a_past_day_whole(
    tmp_path: Path,
) -> None:
    """Twenty minutes of a day with the tick of 00:07 missing: at 00:22 that day is 19 of the 20
    ticks due (95 %, passes, one minute without an attempt); judged the next day it is 19 of
    1,440 (fails), the other minutes of the day without an attempt too."""
    day = date(2026, 3, 2)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    partitions = dg.DailyPartitionsDefinition(
        start_date=(day - timedelta(days=1)).isoformat(), timezone="UTC", end_offset=1
    )
    with (
        running_simulator(frozen_at=midnight) as sim,
        simulated_client_clock(sim.clock),
        dg.DagsterInstance.ephemeral() as instance,
    ):
        resources = {
            "backquant": BackQuantResource(
                api_key=sim.api_key, base_url=sim.base_url, retry_deadline_s=2.0, simulated=True
            ),
            "warehouse": WarehouseResource(home=str(tmp_path)),
        }
        ticks = build_tick_asset(simulated=True, clock=sim.clock.now)
        for minute in range(20):
            if minute != 7:
                sim.clock.set(midnight + timedelta(minutes=minute, seconds=5))
                assert dg.materialize([ticks], resources=resources, instance=instance).success

        def judged_at(now: datetime) -> dg.AssetCheckEvaluation:
            history = build_history_asset(
                partitions_def=partitions,
                ingest_cron="* * * * *",
                simulated=True,
                clock=lambda: now,
            )
            result = dg.materialize(
                [history], partition_key=day.isoformat(), resources=resources, instance=instance
            )
            return coverage(result)

        today = judged_at(midnight + timedelta(minutes=22))
        over = judged_at(midnight + timedelta(days=1, hours=1))

    assert today.passed
    assert today.metadata["measured_until"].value == "2026-03-02T00:20:00+00:00"
    for row in coverage_rows(today):
        assert (row["snapshots"], row["expected"], row["coverage"]) == ("19", "20", "95.0%")
        assert (row["no_attempt_minutes"], row["failed_minutes"]) == ("1", "0")
    assert not over.passed
    for row in coverage_rows(over):
        assert (row["snapshots"], row["expected"]) == ("19", "1440")
        assert (row["no_attempt_minutes"], row["failed_minutes"]) == ("1421", "0")
