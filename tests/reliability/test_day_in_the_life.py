"""Days in the life of termstore: the code location's own schedules and sensors, evaluated at
their times on the simulator's clock across midnights, and what they ask for run in process.

The test plays the Dagster daemon. At every instant a schedule is due, it evaluates each
schedule's latest due tick with ``build_schedule_context(scheduled_execution_time=…)`` (after
the daemon was down, Dagster evaluates only the latest missed tick, at its scheduled time), every
hour it evaluates the sensors (the automation sensor through
``evaluate_automation_conditions``), and it runs every job they request with
``execute_in_process`` on one instance: ticks go through the ingest job and the same asset code
the daemon runs. A person backfills today once, as from the UI.

Time is the simulator's (``bench/day_bench.py``'s approach: a frozen clock moved to each
instant): the code location is built with it (checks, alerts), the client stamps its attempts
with it and BackQuant's ``computed_at`` follows it. Faults: the simulator answers 429, 500 and 503
at low rates, and the client does not retry, so each is one failed attempt (a shadow
``FaultPlan`` says which); on the second day the machine is down for ten minutes (nothing
evaluated, nothing fetched).

Reduced (make test): ``*/15 * * * *`` for two days. Full (make soak): every minute for seven.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import dagster as dg
import pytest

from assets.history import COVERAGE_SETTLE, cron_step, due_ticks
from assets.resources import BackQuantResource
from backquant.config import ClientConfig, RetryPolicy
from backquant.simulator.faults import FaultPlan
from backquant.symbols import SUPPORTED_SYMBOLS
from pipelines.automation import (
    HISTORY_JOB,
    HISTORY_SCHEDULE,
    INGEST_JOB,
    MAINTENANCE_JOB,
    RETENTION_JOB,
)
from storage.archive import archived_keys
from storage.schemas import TIME_COLUMNS
from storage.warehouse import Warehouse
from tests.reliability.sizes import sized
from tests.support.automation import simulated_client_clock
from tests.support.simulator import RunningSimulator, running_simulator

SEED = 5
FAULTS = "burst(1)@1.5%; 500@0.5%; 503@0.5%"
EXPECTED_KIND = {"burst": "rate_limited", "500": "internal_error", "503": "upstream_error"}
NO_RETRIES = RetryPolicy(
    deadline_s=3.0, upstream_backoff_s=(), rate_limit_retries=0, transport_retries=0
)
CRON_FOR_DAYS = {2: "*/15 * * * *", 7: "* * * * *"}
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)
"""Monday 2 March 2026, 00:00 UTC: the first simulated day."""
RUN_DELAY = timedelta(seconds=5)
"""A launched run fetches a few seconds after its tick."""
SENSORS_CRON = "0 * * * *"
"""When the sensors are evaluated. The daemon does it every minute; hourly keeps the run short and
still follows every nightly build (the sensors only read state)."""
OUTAGE = (MIDNIGHT + timedelta(days=1, hours=9, minutes=58), timedelta(minutes=10))
USER_BACKFILL = MIDNIGHT + timedelta(days=1, hours=12, minutes=40)
PROBE = timedelta(hours=12)
"""The tick of 12:00 every day is the one whose cost is compared from day to day."""
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
FULL_DAY_TABLES = ("responses", "snapshots", "expiry_rows", "venue_oi", "ingest_log")


class NoRetryBackQuant(BackQuantResource):
    """The code location's BackQuant resource, without retries: an injected fault is one failed
    attempt instead of a wait of seconds."""

    def client_config(self) -> ClientConfig:
        return replace(super().client_config(), retry=NO_RETRIES)


class DaemonScheduleContext(dg.ScheduleEvaluationContext):
    """A schedule's evaluation context holding the daemon's instance itself:
    ``build_schedule_context`` keeps a reference only (none at all for an in-memory instance)
    and opens another instance from it at every evaluation."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        scheduled: datetime,
        repository: dg.RepositoryDefinition,
    ) -> None:
        super().__init__(
            instance_ref=None, scheduled_execution_time=scheduled, repository_def=repository
        )
        self._daemon_instance = instance

    @property
    def instance(self) -> dg.DagsterInstance:
        return self._daemon_instance


@dataclass
class Launch:
    by: str
    scheduled: datetime
    at: datetime
    job: str
    partition: str | None
    result: dg.ExecuteInProcessResult
    seconds: float


@dataclass
class Daemon:
    """What the Dagster daemon does, on the simulator's clock, in this process."""

    definitions: dg.Definitions
    instance: dg.DagsterInstance
    sim: RunningSimulator
    last_iteration: datetime
    launches: list[Launch] = field(default_factory=list)
    cursors: dict[str, str | None] = field(default_factory=dict)
    automation_cursor: Any = None
    sensor_evaluations: Counter[str] = field(default_factory=Counter)
    skips: list[tuple[str, datetime, str]] = field(default_factory=list)

    @property
    def repository(self) -> dg.RepositoryDefinition:
        return self.definitions.get_repository_def()

    def schedules(self, at: datetime) -> list[Launch]:
        """Each schedule's latest tick due since the last iteration, evaluated at its time."""
        launched = []
        after = self.last_iteration + timedelta(seconds=1)
        for schedule in self.repository.schedule_defs:
            cron = schedule.cron_schedule
            assert isinstance(cron, str)
            due = due_ticks(cron, after, at + timedelta(seconds=1))
            if not due:
                continue
            context = DaemonScheduleContext(self.instance, due[-1], self.repository)
            data = schedule.evaluate_tick(context)
            if data.skip_message:
                self.skips.append((schedule.name, due[-1], data.skip_message))
            for request in data.run_requests or []:
                launched.append(self.launch(schedule.name, due[-1], at, request, schedule.job_name))
        self.last_iteration = at
        return launched

    def sensors(self, at: datetime) -> list[Launch]:
        launched: list[Launch] = []
        for sensor in self.repository.sensor_defs:
            self.sensor_evaluations[sensor.name] += 1
            if isinstance(sensor, dg.AutomationConditionSensorDefinition):
                result = dg.evaluate_automation_conditions(
                    defs=self.definitions,
                    instance=self.instance,
                    asset_selection=sensor.asset_selection,
                    evaluation_time=at,
                    cursor=self.automation_cursor,
                )
                self.automation_cursor = result.cursor
                requests = [
                    dg.RunRequest(asset_selection=[key], partition_key=partition)
                    for key in sensor.asset_selection.resolve(self.repository.asset_graph)
                    for partition in sorted(result.get_requested_partitions(key), key=str)
                ]
            else:
                with dg.build_sensor_context(
                    instance=self.instance,
                    cursor=self.cursors.get(sensor.name),
                    repository_def=self.repository,
                    sensor_name=sensor.name,
                    resources=self.definitions.resources,
                ) as context:
                    data = sensor.evaluate_tick(context)
                self.cursors[sensor.name] = data.cursor
                requests = list(data.run_requests or [])
            launched.extend(self.launch(sensor.name, at, at, request, None) for request in requests)
        return launched

    def launch(
        self, by: str, scheduled: datetime, at: datetime, request: dg.RunRequest, job: str | None
    ) -> Launch:
        self.sim.clock.set(at + RUN_DELAY)
        config = dict(request.run_config or {})
        config.update(QUIET)
        began = time.perf_counter()
        if request.asset_selection is not None:
            job_def = self.definitions.resolve_implicit_global_asset_job_def()
            result = job_def.execute_in_process(
                instance=self.instance,
                asset_selection=list(request.asset_selection),
                partition_key=request.partition_key,
                tags=request.tags,
                run_config=config,
                raise_on_error=False,
            )
            name = "+".join(key.to_user_string() for key in request.asset_selection)
        else:
            name = request.job_name or job or ""
            result = self.definitions.resolve_job_def(name).execute_in_process(
                instance=self.instance,
                partition_key=request.partition_key,
                tags=request.tags,
                run_config=config,
                raise_on_error=False,
            )
        launch = Launch(
            by, scheduled, at, name, request.partition_key, result, time.perf_counter() - began
        )
        self.launches.append(launch)
        return launch

    def of(self, job: str, by: str | None = None) -> list[Launch]:
        return [x for x in self.launches if x.job == job and (by is None or x.by == by)]


def load_definitions(monkeypatch: pytest.MonkeyPatch, sim: RunningSimulator, **env: str) -> Any:
    """The code location's definitions as the daemon loads them, from ``env`` only, built with
    the simulator's clock; the BackQuant resource without retries."""
    for name in list(os.environ):
        if name.startswith(("BACKQUANT_", "TERMSTORE_")):
            monkeypatch.delenv(name)
    for name, value in {
        "BACKQUANT_API_KEY": sim.api_key,
        "BACKQUANT_BASE_URL": sim.base_url,
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    built: dg.Definitions = importlib.import_module("pipelines.definitions").build_definitions(
        clock=sim.clock.now
    )
    resources = dict(built.resources or {})
    resources["backquant"] = NoRetryBackQuant(
        api_key=sim.api_key, base_url=sim.base_url, read_timeout_s=2.0, simulated=True
    )
    return dg.Definitions(
        assets=built.assets,
        asset_checks=built.asset_checks,
        jobs=built.jobs,
        schedules=built.schedules,
        sensors=built.sensors,
        executor=built.executor,
        resources=resources,
    )


@contextmanager
def dagster_instance(days: int, directory: Path) -> Iterator[dg.DagsterInstance]:
    """In memory for the reduced run (a run costs about half of the default test instance's);
    on disk for the full one, whose ten thousand runs would not fit in memory, with one event
    database and no captured step logs."""
    if days < max(CRON_FOR_DAYS):
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance
        return
    with dg.instance_for_test(
        temp_dir=str(directory), overrides=lean_overrides(directory)
    ) as instance:
        yield instance


def lean_overrides(directory: Path) -> dict[str, Any]:
    return {
        "event_log_storage": {
            "module": "dagster._core.storage.event_log",
            "class": "ConsolidatedSqliteEventLogStorage",
            "config": {"base_dir": str(directory / "events")},
        },
        "compute_logs": {
            "module": "dagster._core.storage.noop_compute_log_manager",
            "class": "NoOpComputeLogManager",
        },
    }


def check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    [found] = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    return found


def coverage_rows(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, str]]:
    table = check(result, "coverage").metadata["per_symbol_day"].value
    assert isinstance(table, dg.TableMetadataValue)
    rows = [{key: str(value) for key, value in record.data.items()} for record in table.records]
    return {row["symbol"]: row for row in rows}


def read_cost(
    warehouse: Warehouse, keys: list[tuple[str, datetime]], profile: Path
) -> dict[str, int]:
    """Data files the tick's duplicate check (``archived_keys``) reads for ``keys``, and their
    rows. (The profile's own row count is no measure: for a DuckLake scan it counts the rows of
    every file the plan started from, pruned or not.)"""
    connection = warehouse.connect()
    try:
        connection.execute("PRAGMA enable_profiling = 'json'")
        connection.execute(f"PRAGMA profiling_output = '{profile}'")
        archived_keys(connection, keys)
        connection.execute("PRAGMA disable_profiling")
        read: list[str] = []
        pending = [json.loads(profile.read_text())]
        while pending:
            node = pending.pop()
            pending.extend(node.get("children", []))
            if node.get("operator_name") == "DUCKLAKE_SCAN":
                names = node.get("extra_info", {}).get("Filename(s)", "")
                read.extend(name.strip() for name in names.split(",") if name.strip())
        rows = 0
        for name in read:
            counted = connection.execute("SELECT count(*) FROM read_parquet(?)", [name]).fetchone()
            rows += int(counted[0]) if counted else 0
    finally:
        connection.close()
    return {"files_read": len(read), "rows_read": rows}


def lake_state(warehouse: Warehouse) -> dict[str, int]:
    """What a reader's plan of ``responses`` starts from: its live files, and the catalog's
    data-file entries (live or awaiting expiry)."""
    live = warehouse.sql("SELECT count(*) FROM ducklake_list_files('lake', 'responses')")
    entries = warehouse.sql("SELECT count(*) FROM __ducklake_metadata_lake.ducklake_data_file")
    return {"live_files": int(live.item()), "catalog_data_file_rows": int(entries.item())}


def files_per_table_month(warehouse: Warehouse, end: datetime) -> dict[tuple[str, date], int]:
    """Per table and month, the live data files holding rows from before ``end``."""
    found: Counter[tuple[str, date]] = Counter()
    for table in FULL_DAY_TABLES:
        column = TIME_COLUMNS.get(table, "computed_at")
        listed = warehouse.sql(f"SELECT data_file FROM ducklake_list_files('lake', '{table}')")
        for path in listed["data_file"]:
            first = warehouse.sql(
                f"SELECT min({column}) AS first FROM read_parquet('{path}') "
                f"HAVING min({column}) < TIMESTAMPTZ '{end.isoformat()}'"
            )
            if first.height:
                found[(table, first.item().date().replace(day=1))] += 1
    return dict(found)


@dataclass
class Days:
    """What the simulated days did, for the assertions."""

    days: int
    cron: str
    end: datetime
    daemon: Daemon
    faulted: dict[tuple[str, datetime], str] = field(default_factory=dict)
    """(symbol, minute) → the outcome of a fetch that met an injected fault."""
    probes: dict[date, dict[str, int]] = field(default_factory=dict)
    visible_after_tick: int = 0

    @property
    def full_days(self) -> list[date]:
        return [MIDNIGHT.date() + timedelta(days=n) for n in range(self.days)]

    @property
    def outage(self) -> list[datetime]:
        """The minutes the ingest schedule was due in while the machine was down."""
        return due_ticks(self.cron, OUTAGE[0], OUTAGE[0] + OUTAGE[1])

    def due_faults(self) -> dict[tuple[str, datetime], str]:
        """Faults met at due minutes (not by the late tick the daemon runs on its return)."""
        due = set(due_ticks(self.cron, MIDNIGHT, self.end))
        return {key: kind for key, kind in self.faulted.items() if key[1] in due}


def verify_tick(days: Days, reader: Warehouse, at: datetime, shadow: FaultPlan) -> None:
    """Right after the ingest run of ``at``: one attempt per symbol, each with the outcome the
    injected faults dictate, and every stored snapshot visible to a reader that stayed attached;
    at ``PROBE`` the tick's read cost."""
    expected = {symbol: shadow.next_fault(symbol) for symbol in SUPPORTED_SYMBOLS}
    seen = reader.sql(
        "SELECT a.symbol, a.outcome, a.computed_at, s.computed_at IS NOT NULL AS visible "
        "FROM ingest_log a LEFT JOIN snapshots s USING (symbol, computed_at) "
        f"WHERE a.started_at >= TIMESTAMPTZ '{(at + RUN_DELAY).isoformat()}'"
    ).to_dicts()
    assert sorted(row["symbol"] for row in seen) == sorted(SUPPORTED_SYMBOLS), seen
    for row in seen:
        fault = expected[row["symbol"]]
        if fault is None:
            assert (row["outcome"], row["visible"]) == ("stored", True), (at, row)
            days.visible_after_tick += 1
        else:
            assert (row["outcome"], row["visible"]) == (EXPECTED_KIND[fault.name], False), row
            days.faulted[(row["symbol"], at)] = row["outcome"]
    if at - bounds(at.date())[0] == PROBE:
        keys = [(row["symbol"], row["computed_at"]) for row in seen if row["visible"]]
        profile = reader.home / "profile.json"
        days.probes[at.date()] = {
            **read_cost(reader, keys, profile),
            **lake_state(reader),
        }


def live(days: Days, home: Path) -> None:
    """The daemon's iterations from the first midnight to ``days.end``: schedules at their
    times, sensors every hour, nothing during the outage, the daemon's catch-up on
    its return, and a person's backfill of today."""
    daemon = days.daemon
    shadow = FaultPlan(SEED, FAULTS)
    restart = OUTAGE[0] + OUTAGE[1]
    instants = {
        tick
        for schedule in daemon.repository.schedule_defs
        for tick in due_ticks(str(schedule.cron_schedule), MIDNIGHT, days.end)
    }
    sensor_times = set(due_ticks(SENSORS_CRON, MIDNIGHT, days.end))
    reader: Warehouse | None = None
    try:
        for at in sorted(instants | sensor_times | {restart, USER_BACKFILL}):
            if OUTAGE[0] <= at < restart:
                continue
            for launch in daemon.schedules(at):
                if launch.job == INGEST_JOB:
                    assert launch.result.success, launch
                    reader = reader or Warehouse.open(home)  # attached once, kept
                    verify_tick(days, reader, at, shadow)
            if at == USER_BACKFILL:
                # A person backfills today from the UI: no schedule asked for it.
                request = dg.RunRequest(partition_key=at.date().isoformat())
                daemon.launch("user", at, at, request, HISTORY_JOB)
            if at in sensor_times or at == restart:
                daemon.sensors(at)
    finally:
        if reader is not None:
            reader.close()


@sized(2, 7, full_timeout_s=4 * 3600)
def test_days_of_automation_across_midnight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    cron = CRON_FOR_DAYS[size]
    home = tmp_path / "home"
    with (
        running_simulator(
            frozen_at=MIDNIGHT, seed=SEED, faults=FAULTS, burst_limit_per_minute=10**9
        ) as sim,
        simulated_client_clock(sim.clock),
        dagster_instance(size, tmp_path) as instance,
    ):
        definitions = load_definitions(
            monkeypatch,
            sim,
            TERMSTORE_HOME=str(home),
            TERMSTORE_SIMULATED="1",
            TERMSTORE_INGEST_CRON=cron,
            TERMSTORE_HISTORY_START=MIDNIGHT.date().isoformat(),
        )
        daemon = Daemon(definitions, instance, sim, last_iteration=MIDNIGHT - timedelta(seconds=1))
        # The last full day is built at 00:20 and merged at 01:07 the day after.
        days = Days(size, cron, MIDNIGHT + timedelta(days=size, hours=1, minutes=10), daemon)
        live(days, home)

        failed = [run for run in daemon.launches if not run.result.success]
        assert not failed, [(run.by, run.job, run.partition, run.at) for run in failed]
        assert set(days.due_faults().values()) == set(EXPECTED_KIND.values()), "each fault met"
        assert_each_day_built_once_and_whole(days)
        assert_today_judged_so_far(days)
        assert_housekeeping_on_schedule(days)
        with Warehouse.open(home) as warehouse:
            assert_gaps_tell_the_story(days, warehouse)
            assert_days_merged(days, warehouse)
    assert_tick_cost_flat(days)
    report(days)


def assert_each_day_built_once_and_whole(days: Days) -> None:
    """history_nightly built each day exactly once, the day after; none before the first
    partition. Each full day's checks pass, the outage counted as minutes with no attempt and
    the faults as failed minutes; research_daily followed each built day."""
    daemon = days.daemon
    nightly = daemon.of(HISTORY_JOB, HISTORY_SCHEDULE)
    assert [run.partition for run in nightly] == [day.isoformat() for day in days.full_days]
    for run in nightly:
        day = date.fromisoformat(str(run.partition))
        assert run.scheduled == bounds(day)[1] + timedelta(minutes=20)
        assert check(run.result, "coverage").passed, coverage_rows(run.result)
        assert check(run.result, "matches_archive").passed
        assert check(run.result, "no_duplicate_keys").passed
        for symbol, row in coverage_rows(run.result).items():
            faults = sum(1 for (s, at) in days.due_faults() if s == symbol and at.date() == day)
            no_attempt = len(days.outage) if day == OUTAGE[0].date() else 0
            assert row["expected"] == str(len(due_ticks(days.cron, *bounds(day)))), row
            assert (row["failed_minutes"], row["no_attempt_minutes"]) == (
                str(faults),
                str(no_attempt),
            ), row
    assert [at for name, at, text in daemon.skips if name == HISTORY_SCHEDULE] == [
        MIDNIGHT + timedelta(minutes=20)
    ], daemon.skips
    research = {run.partition for run in daemon.launches if run.by == "research_after_history"}
    assert research == {day.isoformat() for day in days.full_days}


def assert_today_judged_so_far(days: Days) -> None:
    """The backfill of today at 12:40 judges the ticks due up to two minutes before its run
    (which starts ``RUN_DELAY`` after: at 12:40:05 a minutely schedule's 12:38 tick counts)."""
    [backfill] = [run for run in days.daemon.launches if run.by == "user"]
    due_so_far = due_ticks(
        days.cron, bounds(USER_BACKFILL.date())[0], USER_BACKFILL + RUN_DELAY - COVERAGE_SETTLE
    )
    assert check(backfill.result, "coverage").passed, coverage_rows(backfill.result)
    for row in coverage_rows(backfill.result).values():
        assert row["expected"] == str(len(due_so_far)), row
        assert row["no_attempt_minutes"] == str(len(days.outage)), row


def assert_housekeeping_on_schedule(days: Days) -> None:
    """Maintenance and run pruning ran at every hour; the maintenance of the hour the machine
    was down ran on its return (the daemon evaluates the latest missed tick)."""
    daemon = days.daemon
    for job in (MAINTENANCE_JOB, RETENTION_JOB):
        [schedule] = [s for s in daemon.repository.schedule_defs if s.job_name == job]
        hourly = due_ticks(str(schedule.cron_schedule), MIDNIGHT, days.end)
        assert [run.scheduled for run in daemon.of(job, schedule.name)] == hourly, job
    late = [
        (run.scheduled, run.at) for run in daemon.of(MAINTENANCE_JOB) if run.at != run.scheduled
    ]
    assert late == [(OUTAGE[0] + timedelta(minutes=9), OUTAGE[0] + OUTAGE[1])]


def assert_gaps_tell_the_story(days: Days, warehouse: Warehouse) -> None:
    """Over the full days, at the schedule's minutes: the outage is exactly its minutes with
    "no attempt", the faults exactly theirs with the fault's outcome, nothing else is missing."""
    step = cron_step(days.cron, MIDNIGHT.date())
    assert step is not None
    gaps = warehouse.sql(
        "SELECT symbol, minute, attempts, outcomes, reasons FROM ingest_gaps_between("
        f"TIMESTAMPTZ '{MIDNIGHT.isoformat()}', "
        f"TIMESTAMPTZ '{bounds(days.full_days[-1])[1].isoformat()}', "
        f"every := INTERVAL {int(step.total_seconds())} SECOND)"
    ).to_dicts()
    no_attempt = {(gap["symbol"], gap["minute"]) for gap in gaps if gap["attempts"] == 0}
    assert no_attempt == {(symbol, at) for symbol in SUPPORTED_SYMBOLS for at in days.outage}
    assert {gap["reasons"] for gap in gaps if gap["attempts"] == 0} == {"no attempt"}
    failed = {(gap["symbol"], gap["minute"]): gap["outcomes"] for gap in gaps if gap["attempts"]}
    last = bounds(days.full_days[-1])[1]
    assert failed == {key: kind for key, kind in days.due_faults().items() if key[1] < last}


def assert_days_merged(days: Days, warehouse: Warehouse) -> None:
    """The days that are over end in one or two data files per table and month: the month's
    large file and the run being filled (storage/maintenance.py), however many days."""
    files = files_per_table_month(warehouse, bounds(days.full_days[-1])[1])
    months = {day.replace(day=1) for day in days.full_days}
    assert set(files) == {(table, month) for table in FULL_DAY_TABLES for month in months}
    assert set(files.values()) <= {1, 2}, files


def assert_tick_cost_flat(days: Days) -> None:
    """The 12:00 tick's duplicate check reads one data file (its own tick's) holding at most
    its four rows, on the last day as on the first, and ``responses`` has as many live files,
    plus at most the month's large file: it appears once the month's first run has filled
    (``RUN_BYTES``), a day or two into a month of minute ticks, and then stays one file."""
    assert set(days.probes) == set(days.full_days), days.probes
    first = days.probes[days.full_days[0]]
    for probe in days.probes.values():
        assert probe["files_read"] == 1, days.probes
        assert probe["rows_read"] <= len(SUPPORTED_SYMBOLS), days.probes
        assert first["live_files"] <= probe["live_files"] <= first["live_files"] + 1, days.probes


def report(days: Days) -> None:
    """The figures docs/reliability.md quotes (shown with ``pytest -s``)."""
    ticks = days.daemon.of(INGEST_JOB)
    per_day = {
        day.isoformat(): round(median(run.seconds for run in ticks if run.at.date() == day), 3)
        for day in days.full_days
    }
    seconds: dict[str, float] = {}
    for run in days.daemon.launches:
        seconds[run.job] = seconds.get(run.job, 0.0) + run.seconds
    print(
        f"\nday in the life: {days.days} days of {days.cron!r}: {len(ticks)} ticks, "
        f"{days.visible_after_tick} snapshots visible right after their tick, "
        f"{len(days.faulted)} faulted attempts, {len(days.daemon.launches)} runs, sensor "
        f"evaluations {dict(days.daemon.sensor_evaluations)}\n  tick run median s by day "
        f"{per_day}\n  12:00 probes {days.probes}\n  run seconds by job "
        f"{ {job: round(total, 1) for job, total in seconds.items()} }"
    )


def bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
