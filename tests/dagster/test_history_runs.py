"""One run materialising ``expiry_history`` at a time, whatever launched it. history_nightly's run
comes from Dagster's scheduler and a backfill's runs from its backfill daemon; iterations of its
run queue, configured as the instance template (``dagster-instance.yaml``) configures it, decide
what starts, as on a deployed instance (a launch is only recorded: no rebuild runs)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster._scheduler.scheduler import launch_scheduled_runs

from assets.history import HISTORY_ASSET, MAX_DAYS_PER_RUN
from pipelines.automation import HISTORY_JOB
from pipelines.dagster_instance import INSTANCE_TEMPLATE, PROJECT_ROOT
from tests.support.fixtures import TEST_KEY, location_env

FIRST_DAY = date(2026, 11, 1)
DAYS = 3 * MAX_DAYS_PER_RUN
LAUNCHED = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}


def instance_overrides() -> dict[str, Any]:
    """The template's queue and limits; launches are only recorded (no run executes)."""
    template = yaml.safe_load(INSTANCE_TEMPLATE.read_text())
    return {
        "concurrency": template["concurrency"],
        "run_coordinator": template["run_coordinator"],
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[WorkspaceProcessContext]:
    """The code location as workspace.yaml loads it, in this process, on an instance
    configured like the template."""
    location_env(
        monkeypatch,
        BACKQUANT_API_KEY=TEST_KEY,
        TERMSTORE_HOME=str(tmp_path / "wh"),
        TERMSTORE_HISTORY_START=FIRST_DAY.isoformat(),
    )
    origin = LoadableTargetOrigin(
        python_file=str(PROJECT_ROOT / "pipelines" / "definitions.py"),
        attribute="defs",
        working_directory=str(PROJECT_ROOT),
    )
    target = InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    with (
        dg.instance_for_test(overrides=instance_overrides()) as instance,
        WorkspaceProcessContext(instance, target) as context,
    ):
        yield context


def backfill_history(context: WorkspaceProcessContext, days: list[str]) -> None:
    """A backfill of those days of expiry_history, as the UI's Materialize submits it, turned
    into runs by the backfill daemon."""
    instance = context.instance
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=context.create_request_context().asset_graph,
        partition_names=days,
        asset_selection=[dg.AssetKey(HISTORY_ASSET)],
        backfill_timestamp=datetime.now(UTC).timestamp(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=None,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    for _ in range(3):
        list(execute_backfill_iteration(context, logging.getLogger("backfill")))


def nightly_run(context: WorkspaceProcessContext, day: date) -> None:
    """history_nightly's run for ``day``, from Dagster's scheduler: its tick at 00:20 UTC of the
    next day."""
    scheduled = datetime.combine(day + timedelta(days=1), time(0, 20), UTC)
    iterations: dict[str, Any] = {}
    for now in (scheduled - timedelta(seconds=10), scheduled + timedelta(seconds=10)):
        with freeze_time(now):
            list(launch_scheduled_runs(context, logging.getLogger("scheduler"), now, iterations))


def dequeue(context: WorkspaceProcessContext) -> None:
    """One iteration of the run queue: it launches what the limits allow."""
    list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(context))


def finish(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name),
        run_id=run.run_id,
    )


def launched(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [run for run in instance.get_runs() if run.status in LAUNCHED]


def test_history_runs_start_one_at_a_time_whatever_launched_them(
    workspace: WorkspaceProcessContext,
) -> None:
    instance = workspace.instance
    nightly_run(workspace, FIRST_DAY + timedelta(days=DAYS))
    dequeue(workspace)
    (nightly,) = launched(instance)
    assert nightly.job_name == HISTORY_JOB

    # A backfill of three weeks while the nightly run is in flight: its runs wait in the queue.
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(DAYS)]
    backfill_history(workspace, [day.isoformat() for day in days])
    backfill_runs = [run for run in instance.get_runs() if run.job_name != HISTORY_JOB]
    assert len(backfill_runs) == DAYS // MAX_DAYS_PER_RUN  # multi_run(7): 3 runs of 7 days
    dequeue(workspace)
    assert [run.job_name for run in launched(instance)] == [HISTORY_JOB]

    # Each finished run lets the next one start, never two.
    for _ in backfill_runs:
        for run in launched(instance):
            finish(instance, run)
        dequeue(workspace)
        (started,) = launched(instance)
        assert started.job_name != HISTORY_JOB
    assert all(run.status != dg.DagsterRunStatus.QUEUED for run in instance.get_runs())
