"""How long the ``termstore`` command takes from the shell: start-up is most of a small command.

Each command runs as a new process (the installed ``termstore`` script, as a user types it),
``--runs`` times after one untimed run; wall time and the CPU time of the process (user +
system, from the kernel's accounting of the child). The lake is a throwaway home with a few
ticks of the four symbols; ``select 1`` still attaches it, which is what a query costs.

Run: ``.venv/bin/python -m bench.cli_bench [--runs 15]``; writes bench/results/cli_bench.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from bench.common import load_average, summarise, write_results
from storage import Warehouse, ingest_outcomes
from tests.storage.helpers import BASE_TIME, tick

COMMAND = ".venv/bin/python -m bench.cli_bench"
TERMSTORE: Final[Path] = Path(sys.executable).parent / "termstore"
COMMANDS: Final[dict[str, list[str]]] = {
    "termstore --help": ["--help"],
    'termstore sql "select 1"': ["sql", "select 1"],
    'termstore sql "SELECT * FROM latest_term_structure"': [
        "sql",
        "SELECT * FROM latest_term_structure",
    ],
}
GOALS_S: Final[dict[str, float]] = {"termstore --help": 0.3, 'termstore sql "select 1"': 0.5}
TICKS: Final[int] = 3


def build_lake(home: Path) -> None:
    with Warehouse.open(home) as warehouse:
        for minute in range(TICKS):
            ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute)))


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(arguments: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    """Wall and CPU seconds of ``runs`` runs (after one untimed run)."""
    walls: list[float] = []
    cpus: list[float] = []
    for attempt in range(runs + 1):
        cpu_before = _cpu_children()
        began = time.perf_counter()
        done = subprocess.run(
            [str(TERMSTORE), *arguments], env=env, capture_output=True, check=False
        )
        wall = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"termstore {arguments} failed: {done.stderr.decode()[-2000:]}")
        if attempt:
            walls.append(wall)
            cpus.append(_cpu_children() - cpu_before)
    return {"wall": summarise(walls), "cpu": summarise(cpus)}


def run(runs: int, root: Path) -> dict[str, Any]:
    home = root / "warehouse"
    build_lake(home)
    env = {name: value for name, value in os.environ.items() if not name.startswith("TERMSTORE_")}
    env.update(TERMSTORE_HOME=str(home), COLUMNS="120")
    load_before = load_average()
    timings = {name: time_command(arguments, env, runs) for name, arguments in COMMANDS.items()}
    goals = {
        name: {
            "goal_s": goal,
            "p50_s": round(timings[name]["wall"]["p50_ms"] / 1000, 3),
            "met": timings[name]["wall"]["p50_ms"] / 1000 < goal,
        }
        for name, goal in GOALS_S.items()
    }
    return {
        "runs": runs,
        "commands": timings,
        "goals": goals,
        "load_average_before_after": [load_before, load_average()],
        "note": "wall and CPU per run of the installed termstore script, a new process each; "
        "the lake holds 3 ticks of the four symbols",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--name", default="cli_bench", help="results file name")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="termstore-cli-bench-") as temp:
        results = run(args.runs, Path(temp))
    path = write_results(args.name, COMMAND, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
