"""Moving a local lake to PostgreSQL + S3 with deploy/copy_lake.py, as docs/production.md says:
every row of every table arrives, in one commit, the views answer as before, the source (a copy
of the home at another path) is untouched, a second copy into the now non-empty lake is refused,
and so is a source of an older schema version, which stays as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import LakeConfig, Warehouse, ingest_outcomes
from storage.lake_schema import LAKE_TABLES, META_VIEW, SCHEMA_VERSION
from tests.storage.helpers import body, outcome, tick
from tests.support.compose_loopback import DEPLOY
from tests.support.services import PostgresServer, S3Server

SCRIPT = DEPLOY / "copy_lake.py"
START = datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(minutes=10)
"""Recent ticks: the gap report runs from the first fetch to now."""
GAPS = (
    "SELECT * FROM ingest_gaps WHERE minute <= (SELECT max(started_at) FROM ingest_log) "
    "ORDER BY symbol, minute"
)
ORDERED = {
    "snapshots": "symbol, computed_at",
    "expiry_rows": "symbol, computed_at, expiry",
    "venue_oi": "symbol, computed_at, expiry, venue",
    "ingest_log": "symbol, started_at",
    "responses": "symbol, computed_at",
    "quarantine": "received_at",
    "hourly_sample": "symbol, computed_at, expiry",
}


def team_env(postgres_server: PostgresServer, s3_server: S3Server) -> dict[str, str]:
    name = f"copy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    bucket = f"copy-{uuid.uuid4().hex[:10]}"
    s3_server.create_bucket(bucket)
    catalog = postgres_server.ducklake_catalog().replace(
        f"dbname={postgres_server.dbname}", f"dbname={name}"
    )
    return {
        **s3_server.env(),
        "TERMSTORE_CATALOG": catalog,
        "TERMSTORE_DATA_PATH": f"s3://{bucket}/lake",
    }


def contents(warehouse: Warehouse) -> dict[str, list[dict[str, object]]]:
    return {
        table: warehouse.sql(f"SELECT * FROM {table} ORDER BY {order}").to_dicts()
        for table, order in ORDERED.items()
    }


def copy(source: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--from-home", str(source)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_local_lake_moves_to_postgresql_and_s3_whole(
    tmp_path: Path, postgres_server: PostgresServer, s3_server: S3Server
) -> None:
    assert set(ORDERED) == set(LAKE_TABLES)
    source = tmp_path / "warehouse"
    with Warehouse.open(source) as warehouse:
        for minute in (0, 1, 3):  # and a missed minute
            ingest_outcomes(warehouse, tick(START + timedelta(minutes=minute)))
        # A tick with a refused body: logged, quarantined, nothing of it stored.
        at = START + timedelta(minutes=4)
        refused = body("HYPEUSDT", at, **{"data.expiries.1.put_oi": -1.0})
        ingest_outcomes(
            warehouse,
            tick(at, SUPPORTED_SYMBOLS[:3]) | {"HYPEUSDT": outcome("HYPEUSDT", at, refused)},
        )
        before = contents(warehouse)
        gaps_before = warehouse.sql(GAPS).to_dicts()
    assert before["responses"] and before["ingest_log"] and before["quarantine"]
    # A copy of the home at another path, as docs/production.md mounts it into a container:
    # the catalog recorded the old data path, which no longer exists.
    copied_home = tmp_path / "import"
    source.rename(copied_home)
    catalog_bytes = (copied_home / "catalog.sqlite").read_bytes()

    env = team_env(postgres_server, s3_server)
    machine = tmp_path / "machine"
    machine.mkdir()
    done = copy(copied_home, env, machine)
    assert done.returncode == 0, done.stderr
    for table, rows in before.items():
        assert f"{table}: {len(rows)} rows" in done.stdout, done.stdout

    target = LakeConfig.from_env(env={**env, "TERMSTORE_HOME": str(tmp_path / "reader")})
    with Warehouse.open(config=target) as warehouse:
        assert contents(warehouse) == before
        gaps_after = warehouse.sql(GAPS).to_dicts()
        # One commit: the copy is a single snapshot after the lake's creation.
        snapshots = warehouse.sql("SELECT count(*) AS n FROM ducklake_snapshots('lake')").item()
    assert gaps_after == gaps_before
    assert [row["outcomes"] for row in gaps_before if row["symbol"] == "BTCUSDT"] == ["no_attempt"]
    assert snapshots <= 4, snapshots  # creation, schema, its version, copy
    assert (copied_home / "catalog.sqlite").read_bytes() == catalog_bytes
    keys = s3_server.list_keys(env["TERMSTORE_DATA_PATH"].split("/")[2])
    assert any(key.startswith("lake/main/responses/") for key in keys), keys

    again = copy(copied_home, env, machine)
    assert again.returncode == 2
    assert "already has rows" in again.stderr and "new, empty lake" in again.stderr


def test_a_source_of_an_older_schema_version_is_refused_and_left_as_it_was(
    tmp_path: Path, postgres_server: PostgresServer, s3_server: S3Server
) -> None:
    source = tmp_path / "warehouse"
    with Warehouse.open(source) as warehouse:
        ingest_outcomes(warehouse, tick(START))
        with warehouse.writer() as lake:
            lake.execute(
                f"CREATE OR REPLACE VIEW {META_VIEW} AS "
                "SELECT 'schema_version' AS key, '8' AS value"
            )
    catalog_bytes = (source / "catalog.sqlite").read_bytes()
    machine = tmp_path / "machine"
    machine.mkdir()

    refused = copy(source, team_env(postgres_server, s3_server), machine)

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"schema is version 8, this termstore's is {SCHEMA_VERSION}" in refused.stderr
    assert "termstore maintain" in refused.stderr
    assert (source / "catalog.sqlite").read_bytes() == catalog_bytes
