"""Scale-out: a lake on PostgreSQL and S3 is written from one machine and read from another.

Three homes stand for three machines sharing nothing but TERMSTORE_CATALOG, TERMSTORE_DATA_PATH
and the S3 credentials: one ingests and rebuilds in process, one runs ``termstore ingest --once``
against the simulator, and one, with an empty home and a clean environment, reads every row back
with ``termstore sql``. The Parquet files must all land in the bucket under the prefix, and the
homes must hold nothing of the lake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import LakeConfig, Warehouse, ingest_outcomes, rebuild_day
from tests.reliability.team_lake import TeamLake
from tests.storage.helpers import BASE_TIME, tick
from tests.support.simulator import SIM_START, running_simulator

TERMSTORE = Path(sys.executable).parent / "termstore"
TABLES = ("snapshots", "expiry_rows", "venue_oi", "responses", "ingest_log")
ROWS_QUERY = """
SELECT s.symbol, CAST(s.computed_at AS VARCHAR) AS computed_at, s.expiry_count,
       count(e.expiry) AS expiry_rows, (SELECT count(*) FROM responses) AS responses
FROM snapshots AS s LEFT JOIN expiries AS e USING (symbol, computed_at)
GROUP BY ALL ORDER BY symbol, computed_at
"""


def _machine_env(home: Path, team_lake: TeamLake, **extra: str) -> dict[str, str]:
    """What another machine would have: no variable of this process but PATH."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home.with_name(f"{home.name}-user")),
        "TERMSTORE_HOME": str(home),
        **team_lake.env(),
        **extra,
    }


def _termstore(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TERMSTORE), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def _lake_files(home: Path) -> list[str]:
    """Anything under a home but the writer lock: the lake keeps nothing locally."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.name != "writer.lock")


def test_a_lake_on_postgres_and_s3_is_shared_by_machines_with_nothing_else_in_common(
    tmp_path: Path, team_lake: TeamLake
) -> None:
    first = tmp_path / "first"
    with Warehouse.open(config=LakeConfig.from_env(first, env=team_lake.env())) as warehouse:
        for minute in (0, 1, 2, 1440):  # three ticks, and one the next day
            ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute)))
        report = rebuild_day(warehouse, BASE_TIME.date())
        assert len(report.rebuilt) == len(SUPPORTED_SYMBOLS), report

        second = tmp_path / "second"
        with running_simulator(frozen_at=SIM_START + timedelta(minutes=30)) as sim:
            env = _machine_env(
                second, team_lake, BACKQUANT_API_KEY=sim.api_key, BACKQUANT_BASE_URL=sim.base_url
            )
            ingested = _termstore(env, tmp_path, "ingest", "--once")
        assert ingested.returncode == 0, ingested.stdout + ingested.stderr

        expected: list[dict[str, Any]] = warehouse.sql(ROWS_QUERY).to_dicts()
    assert len(expected) == 5 * len(SUPPORTED_SYMBOLS)
    assert all(row["expiry_rows"] == row["expiry_count"] > 0 for row in expected)

    keys = team_lake.keys()
    assert all(key.startswith(f"{team_lake.prefix}/") for key in keys), keys
    parquet = [key for key in keys if key.endswith(".parquet")]
    folders = {key.removeprefix(f"{team_lake.prefix}/").split("/")[1] for key in parquet}
    assert set(TABLES) <= folders, folders
    assert _lake_files(first) == [] and _lake_files(second) == []

    third = tmp_path / "third"
    third.mkdir()
    read = _termstore(
        _machine_env(third, team_lake), tmp_path, "sql", "--format", "json", ROWS_QUERY
    )
    assert read.returncode == 0, read.stdout + read.stderr
    assert orjson.loads(read.stdout) == expected
    assert list(third.iterdir()) == [], "a reader writes nothing to its home"

    # A reader needs no TERMSTORE_DATA_PATH: the catalog names the path, the AWS_* keys open it.
    fourth = tmp_path / "fourth"
    fourth.mkdir()
    env = _machine_env(fourth, team_lake)
    del env["TERMSTORE_DATA_PATH"]
    read = _termstore(env, tmp_path, "sql", "--format", "json", ROWS_QUERY)
    assert read.returncode == 0, read.stdout + read.stderr
    assert orjson.loads(read.stdout) == expected
    assert list(fourth.iterdir()) == [], "a reader writes nothing to its home"
