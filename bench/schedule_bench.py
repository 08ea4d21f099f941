"""Scheduled minute → rows visible in SQL, and what each run costs, under ``termstore dev``.

``termstore dev`` starts what a user runs (simulator on the wall clock, ``dagster dev``: the
webserver, the daemon and the code server) in a throwaway Dagster home and lake; the
``ingest_every_minute`` schedule is switched on through GraphQL, as the UI's toggle does. Then,
for ``--ticks`` whole minutes:

- latency: from each minute boundary (the tick's scheduled instant) a reader polls ``snapshots``
  every 0.2 s until the new rows are visible (polling only then, so the reader's own CPU does
  not slow what it measures);
- CPU: every process under ``termstore dev`` is sampled from /proc every 0.1 s and sorted by
  role (wrapper, simulator, dagster dev, webserver, daemon, code server, run process); each run's
  CPU is that of the processes it starts (the run worker and any step process), the whole tree's
  is divided by the minutes. A process is counted up to its last sample, so run processes are
  under-counted by at most one sampling interval each. A lake_maintenance run (minute 7) falls in
  most windows: ``runs_by_job`` says so, and the median per run is the ingest run's;
- memory: resident set size per role at the end.

Startup is not counted: the window opens at the first minute boundary after the schedule is on.

Run: ``.venv/bin/python -m bench.schedule_bench [--ticks 20]``; writes
bench/results/schedule_bench.json (``--name`` another file). Takes about ``ticks + 2`` minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx

from bench.common import load_average, summarise, write_results
from storage import QueryError, Warehouse
from tests.support.dagster_ui import REPOSITORY, START_SCHEDULE, DagsterUI, free_port

COMMAND = ".venv/bin/python -m bench.schedule_bench --ticks 20"
ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS: Final[int] = os.sysconf("SC_CLK_TCK")
PAGE_BYTES: Final[int] = os.sysconf("SC_PAGE_SIZE")
RUN_ROLES: Final[frozenset[str]] = frozenset({"run worker", "step process"})
ROLES: Final[tuple[tuple[str, str], ...]] = (
    # (a fragment of the command line, the role); the first match wins.
    ("resource_tracker", "multiprocessing helper"),
    ("execute_run", "run worker"),
    ("execute_step", "step process"),
    ("dagster_webserver", "webserver"),
    ("dagster-webserver", "webserver"),
    ("dagster._daemon", "daemon"),
    ("dagster-daemon", "daemon"),
    ("api grpc", "code server"),
    ("code-server", "code server"),
    ("grpc-health", "code server"),
    (" simulator", "simulator"),
    ("dagster dev", "dagster dev"),
    ("-m dagster dev", "dagster dev"),
    (" dev", "termstore dev wrapper"),
)


def role_of(command_line: str, parent_role: str) -> str:
    """A process's role from its command line; a multiprocessing child is a run worker when
    the code server started it (how it launches runs) and a step process under a run worker."""
    for fragment, role in ROLES:
        if fragment in command_line:
            return role
    if "multiprocessing" in command_line:
        return "run worker" if parent_role == "code server" else "step process"
    return "other"


@dataclass
class Seen:
    role: str
    parent: int
    cpu_s: float = 0.0
    rss_bytes: int = 0
    alive: bool = True


@dataclass
class TreeSampler:
    """Every process under ``root``: its role, CPU seconds (user + system) and RSS, from /proc."""

    root: int
    interval_s: float = 0.1
    seen: dict[tuple[int, int], Seen] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _scan(self) -> None:
        stats: dict[int, list[str]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                text = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            stats[int(entry.name)] = text[text.rfind(")") + 2 :].split()
        children: dict[int, list[int]] = defaultdict(list)
        for pid, fields in stats.items():
            children[int(fields[1])].append(pid)
        tree, stack = [], [self.root]
        while stack:
            pid = stack.pop()
            if pid in stats:
                tree.append(pid)
                stack.extend(children.get(pid, ()))
        roles: dict[int, str] = {}
        with self._lock:
            for item in self.seen.values():
                item.alive = False
            for pid in tree:  # parents before their children
                fields = stats[pid]
                key = (pid, int(fields[19]))
                found = self.seen.get(key)
                if found is None:
                    parent = int(fields[1])
                    found = Seen(_role(pid, roles.get(parent, "")), parent)
                    self.seen[key] = found
                item = found
                roles[pid] = item.role
                item.cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
                item.rss_bytes = int(fields[21]) * PAGE_BYTES if fields[0] != "Z" else 0
                item.alive = fields[0] != "Z"

    def cpu_by_process(self) -> dict[tuple[int, int], Sample]:
        with self._lock:
            return {
                key: Sample(item.role, item.cpu_s, item.parent) for key, item in self.seen.items()
            }

    def rss_by_role(self) -> dict[str, float]:
        with self._lock:
            totals: dict[str, float] = defaultdict(float)
            for item in self.seen.values():
                if item.alive:
                    totals[item.role] += item.rss_bytes / 2**20
        return {role: round(mb, 1) for role, mb in sorted(totals.items())}

    def run(self) -> None:
        while not self._stop.is_set():
            self._scan()
            self._stop.wait(self.interval_s)

    @contextmanager
    def sampling(self) -> Iterator[TreeSampler]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def _role(pid: int, parent_role: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "other"
    return role_of(" " + raw.replace(b"\0", b" ").decode(errors="replace"), parent_role)


@dataclass(frozen=True)
class Sample:
    role: str
    cpu_s: float
    parent: int


def cpu_between(
    start: dict[tuple[int, int], Sample], end: dict[tuple[int, int], Sample]
) -> tuple[dict[str, float], list[float]]:
    """CPU seconds per role between two samples, and the CPU of each run started between
    (its run worker and the step processes under it)."""
    by_role: dict[str, float] = defaultdict(float)
    per_run: dict[int, float] = {}
    for key, sample in end.items():
        before = start[key].cpu_s if key in start else 0.0
        by_role[sample.role] += sample.cpu_s - before
        if sample.role == "run worker" and key not in start:
            per_run[key[0]] = per_run.get(key[0], 0.0) + sample.cpu_s
    for key, sample in end.items():
        if sample.role == "step process" and key not in start and sample.parent in per_run:
            per_run[sample.parent] += sample.cpu_s
    rounded = {role: round(seconds, 2) for role, seconds in sorted(by_role.items())}
    return rounded, [round(seconds, 2) for seconds in per_run.values()]


def _visible(warehouse: Warehouse) -> int:
    try:
        return int(warehouse.sql("SELECT count(DISTINCT computed_at) FROM snapshots").item())
    except QueryError:
        return 0


def _next_boundary() -> float:
    return (int(time.time()) // 60 + 1) * 60.0


@contextmanager
def running_dev(root: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``termstore dev`` in its own session with a throwaway DAGSTER_HOME and lake."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TERMSTORE_", "BACKQUANT_", "DAGSTER_"))
    }
    env.update(TERMSTORE_HOME=str(root / "warehouse"), DAGSTER_HOME=str(root / "dagster_home"))
    with (root / "dev.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "dev", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)
        # Whatever outlived the wrapper (it should be nothing) goes with its session.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _start_schedule(ui: DagsterUI, dev: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while True:
        if dev.poll() is not None:
            raise RuntimeError(f"termstore dev exited:\n{log.read_text()[-4000:]}")
        try:
            result = ui.graphql(
                START_SCHEDULE, selector={**REPOSITORY, "scheduleName": "ingest_every_minute"}
            )["startSchedule"]
            if result["__typename"] == "ScheduleStateResult":
                return
        except (httpx.HTTPError, AssertionError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"could not start the schedule:\n{log.read_text()[-4000:]}")
        time.sleep(1)


RUNS = """
query Runs {
  runsOrError { ... on Runs { results { pipelineName startTime } } }
}"""


def _runs_by_job(ui: DagsterUI, start: float, end: float) -> dict[str, int]:
    """How many runs of each job started in the window (the CPU per run counts them all)."""
    runs = ui.graphql(RUNS)["runsOrError"]["results"]
    started = [run["pipelineName"] for run in runs if start <= (run["startTime"] or 0) < end]
    return {job: started.count(job) for job in sorted(set(started))}


def _latency(warehouse: Warehouse, boundary: float, seen: int) -> tuple[float | None, int]:
    """Seconds from ``boundary`` to the first poll that sees a new snapshot (None: within 55 s
    none was seen), and the count then."""
    while time.time() < boundary + 55:
        now_visible = _visible(warehouse)
        if now_visible > seen:
            return time.time() - boundary, now_visible
        time.sleep(0.2)
    return None, seen


def run(ticks: int, root: Path) -> dict[str, Any]:
    port = free_port()
    load_before = load_average()
    latencies: list[float] = []
    with running_dev(root, port) as dev:
        sampler = TreeSampler(dev.pid)
        with sampler.sampling():
            ui = DagsterUI(f"http://127.0.0.1:{port}", root)
            _start_schedule(ui, dev, root / "dev.log")
            warehouse = Warehouse.open(root / "warehouse")
            boundary = _next_boundary()
            time.sleep(max(0.0, boundary - time.time()))
            start = sampler.cpu_by_process()
            seen = _visible(warehouse)
            misses = 0
            for minute in range(ticks):
                latency, seen = _latency(warehouse, boundary + 60 * minute, seen)
                if latency is None:
                    misses += 1
                else:
                    latencies.append(latency)
                stamp = datetime.fromtimestamp(boundary + 60 * minute, UTC)
                shown = "not seen" if latency is None else f"visible after {latency:.2f} s"
                print(f"{stamp:%H:%M} {shown}", flush=True)
                time.sleep(max(0.0, boundary + 60 * (minute + 1) - time.time()))
            end = sampler.cpu_by_process()
            memory = sampler.rss_by_role()
            warehouse.close()
            jobs = _runs_by_job(ui, boundary, boundary + 60 * ticks)
    if not latencies:
        raise RuntimeError(f"no scheduled tick became visible:\n{(root / 'dev.log').read_text()}")
    cpu, per_run = cpu_between(start, end)
    runs = len(per_run)
    run_cpu = sum(seconds for role, seconds in cpu.items() if role in RUN_ROLES)
    return {
        "minutes": ticks,
        "ticks_observed": len(latencies),
        "ticks_not_seen": misses,
        "schedule_boundary_to_visible": summarise(latencies),
        "seconds": [round(value, 2) for value in latencies],
        "runs_started": runs,
        "runs_by_job": jobs,
        "cpu_s_per_run_run_processes": round(run_cpu / runs, 2) if runs else None,
        "cpu_s_per_run_median": round(statistics.median(per_run), 2) if per_run else None,
        "cpu_s_of_each_run": per_run,
        "cpu_s_per_minute_all_processes": round(sum(cpu.values()) / ticks, 2),
        "cpu_s_by_role": cpu,
        "rss_mb_by_role_at_end": memory,
        "rss_mb_total_at_end": round(sum(memory.values()), 1),
        "load_average_before_after": [load_before, load_average()],
        "note": "termstore dev (simulator, dagster dev: webserver, daemon, code server); latency "
        "from the cron minute boundary: daemon tick evaluation, run launch, the fetch and the "
        "tick's commit to the lake. CPU per run: the processes each run starts; the mean counts "
        "every run started in the window (runs_by_job), the median is an ingest run's",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--name", default="schedule_bench", help="results file name")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="termstore-schedule-bench-") as temp:
        results = run(args.ticks, Path(temp))
    path = write_results(args.name, COMMAND, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
