"""The README's way into the lake from outside termstore: `termstore attach-sql` in a DuckDB CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from storage import Warehouse, ingest_outcomes
from tests.storage.helpers import BASE_TIME, tick

BIN = Path(sys.executable).parent


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TERMSTORE_", "PG", "AWS_"))}
    return {**env, "TERMSTORE_HOME": str(home), **extra}


def test_the_duckdb_cli_reads_the_lake_with_the_printed_script(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Warehouse.open(home) as warehouse:
        ingest_outcomes(warehouse, tick(BASE_TIME))
    script = subprocess.run(
        [BIN / "termstore", "attach-sql"],
        env=_env(home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "READ_ONLY" in script
    assert "INSTALL" not in script  # extensions load from the wheels, never the network
    (tmp_path / "attach.sql").write_text(script)
    answer = subprocess.run(
        [
            BIN / "duckdb",
            "-init",
            str(tmp_path / "attach.sql"),
            "-csv",
            "-c",
            "SELECT count(DISTINCT symbol) AS symbols, count(*) AS rows FROM latest_term_structure",
        ],
        env=_env(home),
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert answer.stdout.strip().splitlines()[-1] == "4,16"


def test_the_script_holds_no_password(tmp_path: Path) -> None:
    env = _env(
        tmp_path / "home",
        TERMSTORE_CATALOG="postgres:host=127.0.0.1 port=1 dbname=lake user=u password=hunter2sec",
        TERMSTORE_DATA_PATH=str(tmp_path / "data"),
    )
    script = subprocess.run(
        [BIN / "termstore", "attach-sql"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "hunter2sec" not in script
    assert "ducklake:postgres:host=127.0.0.1 port=1 dbname=lake user=u" in script
    assert "postgres_scanner" in script
