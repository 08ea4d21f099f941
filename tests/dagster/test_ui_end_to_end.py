"""End to end: real webserver + daemon, schedule on through GraphQL, ticks land, a backfill runs;
the schedules and sensors the daemon loaded are the README's Automation table (the one the
day-in-the-life test runs), and the UI shows the lake's catalog as a variable's name."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.lake_config import CATALOG_ENV
from storage.warehouse import Warehouse
from tests.support.automation import Automation, readme_automation
from tests.support.dagster_ui import REPOSITORY, DagsterUI, running_dagster, simulated_env
from tests.support.simulator import running_simulator

STOP_SCHEDULE = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) { __typename }
}"""
SCHEDULE_STATE = """
query State($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    ... on Schedule { scheduleState { id status } }
  }
}"""
RUNS = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    ... on Runs { results { runId status } }
  }
}"""
LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
RESOURCE = """
query Resource($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
    __typename
    ... on ResourceDetails { configuredValues { key value type } }
  }
}"""
BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}"""
AUTOMATION = """
query Automation($repository: RepositorySelector!) {
  schedulesOrError(repositorySelector: $repository) {
    __typename
    ... on Schedules {
      results { name cronSchedule pipelineName defaultStatus scheduleState { status } }
    }
  }
  sensorsOrError(repositorySelector: $repository) {
    __typename
    ... on Sensors {
      results {
        name minIntervalSeconds defaultStatus sensorState { status }
        targets { pipelineName } assetSelection { assetKeys { path } }
      }
    }
  }
}"""
PER_DAY = (
    "SELECT CAST(computed_at AT TIME ZONE 'UTC' AS DATE) AS day, symbol, count(*) AS n "
    "FROM snapshots GROUP BY ALL"
)


def wait_for(what: str, ui: DagsterUI, timeout_s: float, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"timed out waiting for {what}\n{ui.logs()}")


def successful_runs(ui: DagsterUI, job: str) -> list[dict[str, str]]:
    runs = ui.graphql(RUNS, job=job)["runsOrError"]["results"]
    failed = [run for run in runs if run["status"] == "FAILURE"]
    assert not failed, f"{job} runs failed: {failed}\n{ui.logs()}"
    return [run for run in runs if run["status"] == "SUCCESS"]


def loaded_automation(ui: DagsterUI) -> tuple[dict[str, Automation], dict[str, str]]:
    """The schedules and sensors the daemon loaded, as the README's table states them, and each
    one's current status (retried until the code location has loaded)."""
    data: dict[str, Any] = {}

    def loaded() -> bool:
        nonlocal data
        data = ui.graphql(AUTOMATION, repository=REPOSITORY)
        return all(
            data[key]["__typename"] in ("Schedules", "Sensors")
            for key in ("schedulesOrError", "sensorsOrError")
        )

    wait_for("the code location's schedules and sensors", ui, 60, loaded)
    found: dict[str, Automation] = {}
    status: dict[str, str] = {}
    for schedule in data["schedulesOrError"]["results"]:
        found[schedule["name"]] = Automation(
            kind="schedule",
            when=schedule["cronSchedule"],
            default_on=schedule["defaultStatus"] == "RUNNING",
            launches=schedule["pipelineName"],
        )
        status[schedule["name"]] = schedule["scheduleState"]["status"]
    for sensor in data["sensorsOrError"]["results"]:
        jobs = [
            t["pipelineName"]
            for t in sensor["targets"] or []
            if not t["pipelineName"].startswith("__")
        ]
        keys = (sensor["assetSelection"] or {}).get("assetKeys") or []
        found[sensor["name"]] = Automation(
            kind="sensor",
            when=f"every {sensor['minIntervalSeconds']} s",
            default_on=sensor["defaultStatus"] == "RUNNING",
            launches=next(iter(jobs), None)
            or ("/".join(sorted("/".join(key["path"]) for key in keys)) or None),
        )
        status[sensor["name"]] = sensor["sensorState"]["status"]
    return found, status


@pytest.mark.slow
def test_schedule_ticks_land_rows_and_backfill_rebuilds_days(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    home = tmp_path / "warehouse"
    # The default catalog, named explicitly: the resource then gets it as a variable.
    catalog = f"sqlite:{home}/catalog.sqlite"
    with (
        running_simulator() as sim,
        running_dagster(
            tmp_path, {**simulated_env(sim, home, yesterday), CATALOG_ENV: catalog}
        ) as ui,
    ):
        # What runs in the UI is what the README states and the day-in-the-life test ran, and a
        # fresh instance runs each one as its default says.
        loaded, status = loaded_automation(ui)
        assert loaded == readme_automation()
        assert status == {
            name: "RUNNING" if row.default_on else "STOPPED" for name, row in loaded.items()
        }

        schedule = {**REPOSITORY, "scheduleName": "ingest_every_minute"}
        started = ui.start_schedule("ingest_every_minute")
        assert started.get("scheduleState", {}).get("status") == "RUNNING", started

        # The catalog string may hold a password: the UI shows the variable's name only.
        resource = ui.graphql(RESOURCE, selector={**REPOSITORY, "resourceName": "warehouse"})[
            "topLevelResourceDetailsOrError"
        ]
        shown = {value["key"]: value for value in resource["configuredValues"]}
        assert shown["catalog"]["type"] == "ENV_VAR", resource
        assert shown["catalog"]["value"] == CATALOG_ENV
        assert catalog not in str(resource)

        wait_for(
            "two scheduled ingest runs",
            ui,
            240,
            lambda: len(successful_runs(ui, "ingest")) >= 2,
        )
        state = ui.graphql(SCHEDULE_STATE, selector=schedule)["scheduleOrError"]["scheduleState"]
        ui.graphql(STOP_SCHEDULE, id=state["id"])

        with Warehouse.open(home) as warehouse:
            ticks = warehouse.sql(
                "SELECT symbol, count(DISTINCT computed_at) AS n FROM snapshots GROUP BY symbol"
            )
            before = warehouse.sql(PER_DAY)
        assert ticks.height == 4
        assert min(ticks["n"]) >= 2
        # The days the ticks landed on: a run that crosses midnight UTC has two.
        tick_days = sorted(set(before["day"].to_list()))

        launched = ui.graphql(
            LAUNCH_BACKFILL,
            params={
                "partitionNames": sorted({yesterday.isoformat(), *map(str, tick_days)}),
                "assetSelection": [{"path": ["expiry_history"]}],
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        def finished() -> str | None:
            status = ui.graphql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
            return status["status"] if status["status"].startswith(("COMPLETED", "FAIL")) else None

        final = wait_for("the backfill", ui, 240, finished)
        assert final in {"COMPLETED", "COMPLETED_SUCCESS"}, f"{final}\n{ui.logs()}"
        assert successful_runs(ui, "__ASSET_JOB")

    with Warehouse.open(home) as warehouse:
        rebuilt = warehouse.sql(PER_DAY)
        duplicates = warehouse.sql(
            "SELECT count(*) - count(DISTINCT (symbol, computed_at)) AS d FROM snapshots"
        )
    # Every tick stored before the backfill is still there after its day was rebuilt (a run
    # in flight when the schedule stopped may add one).
    kept = before.join(rebuilt, on=["day", "symbol"], how="left", suffix="_after")
    assert (kept["n_after"].fill_null(0) >= kept["n"]).all(), (before, rebuilt)
    assert duplicates["d"][0] == 0
