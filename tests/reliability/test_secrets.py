"""Secrets: run the whole system with canary secrets, then look for them everywhere.

The API key, the PostgreSQL password in TERMSTORE_CATALOG and the S3 secret key must appear
nowhere: not in captured logs or output, not in error messages (the CLI's and Dagster's, for
wrong settings too), not in ``termstore doctor``, not in any table of the lake or of its catalog
database, not in any file under TERMSTORE_HOME (Parquet decoded, not just raw bytes), and not in
the Dagster instance (event log, run storage, compute logs, metadata).
"""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
import pytest
from moto.core.authorization import enable_iam_authentication

from assets.ingest import build_tick_asset
from assets.maintenance import build_maintenance_asset
from assets.resources import BackQuantResource, WarehouseResource
from storage import LakeConfig, StorageError, Warehouse, ingest_once, rebuild_day
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, HOME_ENV
from storage.maintenance import maintain
from storage.schemas import TABLE_SCHEMAS
from tests.reliability.team_lake import TeamLake
from tests.storage.helpers import open_local
from tests.support.simulator import SIM_START, RunningSimulator, running_simulator

CANARY = "bq_live_CANARYsecret0123456789abcdefXYZ"
WRONG_PASSWORD = "CANARYwrongpassword0123456789abc"
WRONG_S3_SECRET = "CANARYwrongs3secret0123456789abc"
ROOT = Path(__file__).resolve().parents[2]
TERMSTORE = Path(sys.executable).parent / "termstore"
FAULTS = "401@20%; 500@10%; truncate@10%; drift-wrong-type@5%; drift-unknown@10%"


def _readable_views(path: Path) -> list[bytes]:
    """The raw bytes of a file plus its decoded contents where compression would hide text."""
    data = path.read_bytes()
    views = [data]
    if path.name.endswith(".gz"):
        views.append(gzip.decompress(data))
    if path.suffix == ".parquet":
        views.append(repr(pl.read_parquet(path).to_dicts()).encode())
    return views


def occurrences(root: Path, needle: str) -> list[str]:
    """Files under ``root`` whose bytes or decoded contents contain ``needle``."""
    wanted = needle.encode()
    return [
        str(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and any(wanted in view for view in _readable_views(path))
    ]


def _lake_tables(warehouse: Warehouse) -> str:
    """Every row of every table of the lake, as text (blobs included)."""
    return "\n".join(
        repr(warehouse.sql(f"SELECT * FROM {table}").to_dicts()) for table in TABLE_SCHEMAS
    )


def _catalog_tables(lake: TeamLake) -> str:
    """Every row of every table in the lake's PostgreSQL catalog database, as text."""
    texts = []
    with psycopg.connect(lake.postgres.dsn()) as connection:
        tables = connection.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            rows = connection.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            texts.append(f"{table}: {rows!r}")
    assert len(texts) > 10, "the catalog database holds no DuckLake tables"
    return "\n".join(texts)


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(TERMSTORE), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    return done.stdout + done.stderr


def _backquant(sim: RunningSimulator) -> BackQuantResource:
    return BackQuantResource(
        api_key=CANARY,
        base_url=sim.base_url,
        retry_deadline_s=2.0,
        read_timeout_s=1.0,
        simulated=True,
    )


def _materialize(
    instance: dg.DagsterInstance, sim: RunningSimulator, warehouse: WarehouseResource
) -> list[str]:
    """One tick and one maintenance run in Dagster; the events, as text."""
    result = dg.materialize(
        [build_tick_asset(simulated=True), build_maintenance_asset(simulated=True)],
        resources={"backquant": _backquant(sim), "warehouse": warehouse},
        instance=instance,
        raise_on_error=False,
    )
    return [repr(event) for event in result.all_events]


def _assert_nowhere(needles: dict[str, str], texts: dict[str, str], roots: list[Path]) -> None:
    assert sum(len(text) for text in texts.values()) > 1000, "the scan would prove nothing"
    for what, needle in needles.items():
        for name, text in texts.items():
            assert needle not in text, f"the {what} leaked into {name}"
        for root in roots:
            assert occurrences(root, needle) == [], f"the {what} leaked into files"


def test_the_api_key_appears_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    dagster_dir = tmp_path / "dagster"
    dagster_dir.mkdir()
    outputs: list[str] = []
    with running_simulator(frozen_at=SIM_START, api_key=CANARY, faults=FAULTS, seed=5) as sim:
        warehouse = open_local(home)
        config = sim.client_config()
        for minute in range(6):
            sim.clock.set(SIM_START + timedelta(minutes=minute))
            report = ingest_once(warehouse, config)
            outputs.append(repr(report.as_dict()))
            outputs.extend(str(line) for line in report.table_rows())
        rebuild_day(warehouse, SIM_START.date())
        outputs.append(repr(maintain(warehouse).as_dict()))
        outputs.append(repr(warehouse.sql("SELECT * FROM ingest_gaps").to_dicts()))
        assert warehouse.sql("SELECT count(*) FROM quarantine").item() > 0, "nothing quarantined"
        tables = _lake_tables(warehouse)
        warehouse.close()

        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path / "user"),
            "BACKQUANT_API_KEY": CANARY,
            "BACKQUANT_BASE_URL": sim.base_url,
            HOME_ENV: str(home),
        }
        sim.clock.set(SIM_START + timedelta(minutes=7))
        outputs.append(_cli(env, "ingest", "--once"))
        outputs.append(_cli({**env, "BACKQUANT_API_KEY": CANARY + " "}, "ingest", "--once"))
        outputs.append(_cli(env, "sql", "SELECT * FROM ingest_log"))
        outputs.append(_cli(env, "doctor"))

        with dg.instance_for_test(temp_dir=str(dagster_dir)) as instance:
            for minute in range(8, 10):
                sim.clock.set(SIM_START + timedelta(minutes=minute))
                outputs += _materialize(instance, sim, WarehouseResource(home=str(home)))

    captured = capfd.readouterr()
    texts = {
        "captured log records": "\n".join(record.getMessage() for record in caplog.records),
        "stdout/stderr": captured.out + captured.err,
        "reports and CLI output": "\n".join(outputs),
        "lake tables": tables,
    }
    assert len(list(home.rglob("*.parquet"))) > 10
    assert list(dagster_dir.rglob("*.db")), "the Dagster instance should have written storage"
    _assert_nowhere({"API key": CANARY}, texts, [home, dagster_dir])


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in os.environ meanwhile: Dagster resolves EnvVar settings from there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _wrong_settings(lake: TeamLake) -> dict[str, dict[str, str]]:
    """Settings that fail, each holding a secret the failure must not repeat."""
    wrong_catalog = lake.catalog.replace(lake.postgres.password, WRONG_PASSWORD)
    assert wrong_catalog != lake.catalog
    return {
        "wrong password": {**lake.env(), CATALOG_ENV: wrong_catalog},
        "wrong S3 secret": {
            **lake.env(),
            "AWS_ACCESS_KEY_ID": f"AKIA{uuid.uuid4().hex[:16].upper()}",
            "AWS_SECRET_ACCESS_KEY": WRONG_S3_SECRET,
        },
    }


def _failing(name: str) -> AbstractContextManager[object]:
    """moto checks S3 credentials only while asked to (it accepts any key otherwise)."""
    return enable_iam_authentication() if name == "wrong S3 secret" else nullcontext()


def test_the_catalog_password_and_the_s3_secret_appear_nowhere(
    tmp_path: Path,
    team_lake: TeamLake,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    needles = {
        "PostgreSQL password": team_lake.postgres.password,
        "S3 secret key": team_lake.s3.secret_key,
        "wrong PostgreSQL password": WRONG_PASSWORD,
        "wrong S3 secret key": WRONG_S3_SECRET,
        "API key": CANARY,
    }
    home = tmp_path / "home"
    dagster_dir = tmp_path / "dagster"
    dagster_dir.mkdir()
    lake_env = team_lake.env()
    outputs: list[str] = []
    with running_simulator(frozen_at=SIM_START, api_key=CANARY, faults=FAULTS, seed=5) as sim:
        warehouse = Warehouse.open(config=LakeConfig.from_env(home, env=lake_env))
        outputs.append(repr(warehouse) + repr(warehouse.config) + repr(warehouse.config.s3))
        outputs.append(repr(warehouse.config.describe()))
        for minute in range(3):
            sim.clock.set(SIM_START + timedelta(minutes=minute))
            outputs.append(repr(ingest_once(warehouse, sim.client_config()).as_dict()))
        rebuild_day(warehouse, SIM_START.date())
        outputs.append(repr(maintain(warehouse).as_dict()))
        with pytest.raises(StorageError) as refused:
            warehouse.sql("SELECT * FROM no_such_table")
        outputs.append(str(refused.value))
        for name, settings in _wrong_settings(team_lake).items():
            with _failing(name), pytest.raises(StorageError) as failed:
                Warehouse.open(config=LakeConfig.from_env(home, env=settings)).sql("SELECT 1")
            outputs.append(f"{name}: {failed.value}")
        tables = _lake_tables(warehouse)
        warehouse.close()

        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path / "user"),
            "BACKQUANT_API_KEY": CANARY,
            "BACKQUANT_BASE_URL": sim.base_url,
            HOME_ENV: str(home),
            **lake_env,
        }
        sim.clock.set(SIM_START + timedelta(minutes=4))
        outputs.append(_cli(env, "ingest", "--once"))
        outputs.append(_cli(env, "sql", "SELECT * FROM ingest_log"))
        outputs.append(_cli(env, "sql", "SELECT nope FROM snapshots"))
        outputs.append(_cli(env, "doctor"))
        for name, settings in _wrong_settings(team_lake).items():
            with _failing(name):
                failed_run = _cli({**env, **settings}, "sql", "SELECT 1")
            assert "error:" in failed_run, failed_run
            outputs.append(failed_run)
            with _failing(name):
                outputs.append(_cli({**env, **settings}, "doctor"))

        resource = WarehouseResource(
            home=str(home), catalog=dg.EnvVar(CATALOG_ENV), data_path=dg.EnvVar(DATA_PATH_ENV)
        )
        with dg.instance_for_test(temp_dir=str(dagster_dir)) as instance:
            sim.clock.set(SIM_START + timedelta(minutes=5))
            with _environment(lake_env):
                outputs += _materialize(instance, sim, resource)
            wrong = _wrong_settings(team_lake)["wrong password"]
            with _environment(wrong):
                failed_events = _materialize(instance, sim, resource)
            assert any("password" in event for event in failed_events), "no failure recorded"
            outputs += failed_events

    captured = capfd.readouterr()
    texts = {
        "captured log records": "\n".join(record.getMessage() for record in caplog.records),
        "stdout/stderr": captured.out + captured.err,
        "reports, errors and CLI output": "\n".join(outputs),
        "lake tables": tables,
        "catalog database": _catalog_tables(team_lake),
    }
    assert list(dagster_dir.rglob("*.db")), "the Dagster instance should have written storage"
    _assert_nowhere(needles, texts, [home, dagster_dir])
