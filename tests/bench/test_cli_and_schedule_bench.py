"""bench/cli_bench.py at a reduced size, and the process accounting of bench/schedule_bench.py.

No time is asserted: that the commands run and what the figures are made of."""

from __future__ import annotations

from pathlib import Path

from bench.cli_bench import COMMANDS, GOALS_S
from bench.cli_bench import run as run_cli_bench
from bench.schedule_bench import Sample, cpu_between, role_of


def test_the_cli_bench_times_every_command_against_a_real_lake(tmp_path: Path) -> None:
    results = run_cli_bench(1, tmp_path)
    assert set(results["commands"]) == set(COMMANDS)
    for timing in results["commands"].values():
        assert timing["wall"]["runs"] == 1 and timing["cpu"]["runs"] == 1
    assert set(results["goals"]) == set(GOALS_S)


def test_processes_are_sorted_into_roles_by_command_line_and_parent() -> None:
    python = "/venv/bin/python"
    assert role_of(f"{python} -m pipelines.cli dev --port 3000", "") == "termstore dev wrapper"
    assert role_of(f"{python} -m pipelines.cli simulator --port 1", "x") == "simulator"
    assert role_of(f"{python} -m dagster dev -w w.yaml", "") == "dagster dev"
    assert role_of(f"{python} -m dagster api grpc --lazy-load-user-code", "") == "code server"
    assert role_of(f"{python} -m dagster._daemon run", "") == "daemon"
    assert role_of(f"{python} -m dagster_webserver --port 1", "") == "webserver"
    spawned = f"{python} -B -c from multiprocessing.spawn import spawn_main; spawn_main()"
    assert role_of(spawned, "code server") == "run worker"
    assert role_of(spawned, "run worker") == "step process"
    tracker = f"{python} -c from multiprocessing.resource_tracker import main;main(11)"
    assert role_of(tracker, "code server") == "multiprocessing helper"


def test_a_run_costs_its_worker_and_the_step_processes_under_it() -> None:
    start = {(1, 0): Sample("daemon", 10.0, 0)}
    end = {
        (1, 0): Sample("daemon", 12.5, 0),
        (7, 5): Sample("run worker", 3.0, 2),
        (8, 6): Sample("step process", 4.0, 7),
        (9, 7): Sample("run worker", 2.0, 2),
    }
    by_role, per_run = cpu_between(start, end)
    assert by_role == {"daemon": 2.5, "run worker": 5.0, "step process": 4.0}
    assert sorted(per_run) == [2.0, 7.0]
