"""Concurrency: writers racing each other store every response once and lose none.

A process ticking into a day and another rebuilding that same day, started together: every tick
must be visible afterwards, exactly once, with its expiry rows (a rebuild that read the archive
before a tick committed must not wipe the tick). Run on one machine (the writer lock orders
them) and as two machines sharing a PostgreSQL catalog and an S3 bucket (separate homes, so
separate locks): there DuckLake refuses a rebuild whose day a tick changed meanwhile, the core
retries it, and a rebuild still refused leaves nothing behind and is run again. Overlapping
ticks of one process and overlapping ``termstore ingest --once`` runs store each response once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import LakeConfig, Warehouse, ingest_outcomes
from tests.reliability.sizes import sized
from tests.reliability.team_lake import TeamLake
from tests.storage.helpers import (
    BASE_TIME,
    KEY_COLUMNS,
    duplicate_keys,
    open_local,
    partial_snapshots,
    tick,
)
from tests.support.child_process import read_until, start_ready_child
from tests.support.simulator import SIM_START, running_simulator

ROOT = Path(__file__).resolve().parents[2]
WIDTH = len(SUPPORTED_SYMBOLS)


def _lake_env(deployment: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if deployment == "local":
        return {}
    team_lake: TeamLake = request.getfixturevalue("team_lake")
    return team_lake.env()


@sized(12, 120)
@pytest.mark.parametrize("deployment", ["one-machine", "two-machines-postgres-s3"])
def test_ticks_and_rebuilds_of_the_same_day_racing_in_two_processes_lose_nothing(
    tmp_path: Path, request: pytest.FixtureRequest, deployment: str, size: int
) -> None:
    lake_env = _lake_env("local" if deployment == "one-machine" else deployment, request)
    homes = (
        tmp_path / "home",
        tmp_path / "home" if deployment == "one-machine" else tmp_path / "b",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMSTORE_")} | lake_env
    go = tmp_path / "go"
    children = [
        start_ready_child(
            "tests.reliability.race_child", str(home), mode, str(count), str(go), env=env
        )
        for home, mode, count in ((homes[0], "ticks", size), (homes[1], "rebuilds", size // 2))
    ]
    go.touch()
    refused = []
    for child in children:
        lines = read_until(child, "done")
        assert child.wait(timeout=120) == 0, child.communicate()[1][-2000:]
        refused.append(int(lines[-2].removeprefix("refused ")))
    # One machine: the writer lock orders the two, DuckLake never has to refuse a commit.
    assert deployment != "one-machine" or refused == [0, 0], refused
    print(f"{deployment}: {refused[1]} rebuilds refused after the core's retries")

    with Warehouse.open(config=LakeConfig.from_env(homes[0], env=lake_env)) as warehouse:
        assert warehouse.sql("SELECT count(*) FROM responses").item() == size * WIDTH
        assert warehouse.sql("SELECT count(*) FROM snapshots").item() == size * WIDTH
        assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
        assert partial_snapshots(warehouse) == []


@sized(4, 40)
def test_overlapping_ticks_store_each_response_once(tmp_path: Path, size: int) -> None:
    warehouse = open_local(tmp_path / "home")
    with ThreadPoolExecutor(max_workers=3) as pool:
        for minute in range(size):
            computed_at = BASE_TIME + timedelta(minutes=minute)
            # Three schedulers fire the same tick at once (a slow run overlapping the next one).
            reports = list(
                pool.map(
                    lambda offset, at=computed_at: ingest_outcomes(
                        warehouse,
                        tick(at, started_at=at + timedelta(seconds=5, milliseconds=offset)),
                    ),
                    range(3),
                )
            )
            assert sum(len(report.stored) for report in reports) == WIDTH
            assert sum(report.duplicates_skipped for report in reports) == 2 * WIDTH
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == size * WIDTH
    outcomes = warehouse.sql("SELECT outcome, count(*) AS n FROM ingest_log GROUP BY outcome")
    assert dict(outcomes.iter_rows()) == {"stored": size * WIDTH, "duplicate": 2 * size * WIDTH}
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    warehouse.close()


def test_overlapping_cli_ingests_in_separate_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_simulator(frozen_at=SIM_START, burst_limit_per_minute=10**6) as sim:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path / "user"),
            "BACKQUANT_API_KEY": sim.api_key,
            "BACKQUANT_BASE_URL": sim.base_url,
            "TERMSTORE_HOME": str(home),
        }
        command = [str(Path(sys.executable).parent / "termstore"), "ingest", "--once"]
        runs = [
            subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], results
    with open_local(home) as warehouse:
        assert warehouse.sql("SELECT count(*) FROM snapshots").item() == WIDTH
        logged = dict(
            warehouse.sql("SELECT outcome, count(*) FROM ingest_log GROUP BY outcome").iter_rows()
        )
    assert logged == {"stored": WIDTH, "duplicate": 2 * WIDTH}
