"""Run the real Dagster webserver and daemon for a test, and talk to them through GraphQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from pipelines.cli.dagster_commands import prepare_dagster_home
from tests.support.simulator import RunningSimulator

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REPOSITORY = {"repositoryLocationName": "termstore", "repositoryName": "__repository__"}
START_SCHEDULE = """
mutation Start($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on Error { message }
  }
}"""


def simulated_env(sim: RunningSimulator, home: Path, history_start: date) -> dict[str, str]:
    """The code location's environment: the simulator as BackQuant, a throwaway lake (the
    default: catalog file and data under ``home``)."""
    return {
        "BACKQUANT_API_KEY": sim.api_key,
        "BACKQUANT_BASE_URL": sim.base_url,
        "TERMSTORE_HOME": str(home),
        "TERMSTORE_SIMULATED": "1",
        "TERMSTORE_HISTORY_START": history_start.isoformat(),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DagsterUI:
    url: str
    log_dir: Path

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return dict(body["data"])

    def start_schedule(self, name: str, timeout_s: float = 60) -> dict[str, Any]:
        """Turn a schedule on, as the UI's toggle does; the mutation's result.

        On a loaded machine the webserver can answer before its code location has loaded, and
        the mutation then returns an error payload (e.g. ScheduleNotFoundError): retry until it
        succeeds, then fail with the last payload.
        """
        selector = {**REPOSITORY, "scheduleName": name}
        deadline = time.monotonic() + timeout_s
        while True:
            result = dict(self.graphql(START_SCHEDULE, selector=selector)["startSchedule"])
            if result["__typename"] == "ScheduleStateResult" or time.monotonic() > deadline:
                return result
            time.sleep(1)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout=10)


@contextmanager
def running_dagster(tmp_path: Path, env: dict[str, str]) -> Iterator[DagsterUI]:
    """Webserver + daemon on a free port with a temporary DAGSTER_HOME; stopped on exit."""
    dagster_home = tmp_path / "dagster_home"
    prepare_dagster_home(dagster_home)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    # Only ``env`` configures the code location: a lake or key exported in the shell must not
    # leak into the test's.
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TERMSTORE_", "BACKQUANT_"))
    }
    full_env = {**inherited, **env, "DAGSTER_HOME": str(dagster_home)}
    port = free_port()
    workspace = str(ROOT / "workspace.yaml")
    commands = {
        "webserver": [
            str(BIN / "dagster-webserver"),
            "-w",
            workspace,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", workspace],
    }
    processes = []
    try:
        for name, command in commands.items():
            with (log_dir / f"{name}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command,
                        env=full_env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        ui = DagsterUI(f"http://127.0.0.1:{port}", log_dir)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{ui.url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"Dagster did not start:\n{ui.logs()}")
            time.sleep(0.5)
        yield ui
    finally:
        codes = [_stop(process) for process in processes]
        assert all(code is not None for code in codes)
