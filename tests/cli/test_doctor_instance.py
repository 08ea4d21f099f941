"""``termstore doctor`` checks Dagster's instance storage: the default SQLite directory, or the
production instance (deploy/dagster.yaml) on a real PostgreSQL server, before and after
``dagster instance migrate``; a missing variable, a wrong password or a stale schema each say
what to fix, and no password is ever shown."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.instance_check import check_instance_storage
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, HOME_ENV
from tests.support.dagster_ui import BIN, ROOT
from tests.support.services import PostgresServer

PROD_INSTANCE = ROOT / "deploy" / "dagster.yaml"
DEV_INSTANCE = ROOT / "dagster-instance.yaml"
CHECK = "Dagster instance storage"


def production_home(tmp_path: Path, server: PostgresServer) -> tuple[Path, dict[str, str]]:
    """A DAGSTER_HOME with deploy/dagster.yaml and the variables it reads, for a new database
    of its own on ``server``."""
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.dsn(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROD_INSTANCE, home / "dagster.yaml")
    return home, {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": server.host,
        "DAGSTER_PG_PORT": str(server.port),
        "DAGSTER_PG_USER": server.user,
        "DAGSTER_PG_PASSWORD": server.password,
        "DAGSTER_PG_DB": name,
    }


def migrate(env: dict[str, str]) -> None:
    """What the compose file's dagster-migrate service runs."""
    done = subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_without_dagster_home_there_is_nothing_to_check() -> None:
    ok, detail = check_instance_storage({})
    assert ok is None
    assert "DAGSTER_HOME" in detail


def test_a_dagster_home_that_does_not_exist_fails_saying_so(tmp_path: Path) -> None:
    ok, detail = check_instance_storage({"DAGSTER_HOME": str(tmp_path / "nowhere")})
    assert ok is False
    assert str(tmp_path / "nowhere") in detail and "termstore dev" in detail


def test_the_default_instance_is_sqlite_under_dagster_home(tmp_path: Path) -> None:
    shutil.copyfile(DEV_INSTANCE, tmp_path / "dagster.yaml")
    ok, detail = check_instance_storage({"DAGSTER_HOME": str(tmp_path)})
    assert ok is True
    assert "SQLite" in detail and str(tmp_path / "storage") in detail
    # Checking created nothing.
    assert [p.name for p in tmp_path.iterdir()] == ["dagster.yaml"]


def test_postgresql_storage_is_checked_for_a_migrated_schema(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    home, env = production_home(tmp_path, postgres_server)
    ok, detail = check_instance_storage(env)
    assert ok is False
    assert "no instance schema" in detail and "dagster instance migrate" in detail
    # Checking created nothing: the database is still empty.
    ok, _ = check_instance_storage(env)
    assert ok is False

    migrate(env)
    ok, detail = check_instance_storage(env)
    assert ok is True, detail
    assert "schema migrated" in detail
    assert f"{postgres_server.host}:{postgres_server.port}/{env['DAGSTER_PG_DB']}" in detail

    # A schema from another Dagster version: says to migrate.
    dsn = postgres_server.dsn().replace(
        f"dbname={postgres_server.dbname}", f"dbname={env['DAGSTER_PG_DB']}"
    )
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'older0revision'")
    ok, detail = check_instance_storage(env)
    assert ok is False
    assert "older0revision" in detail and "dagster instance migrate" in detail
    assert [p.name for p in home.iterdir()] == ["dagster.yaml"]


def test_unreachable_or_unconfigured_postgresql_says_what_to_fix_without_the_password(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    _, env = production_home(tmp_path, postgres_server)
    missing = {k: v for k, v in env.items() if k != "DAGSTER_PG_PASSWORD"}
    ok, detail = check_instance_storage(missing)
    assert ok is False
    assert "DAGSTER_PG_PASSWORD is not set" in detail

    wrong = {**env, "DAGSTER_PG_PASSWORD": "not-the-password-5f2c"}
    ok, detail = check_instance_storage(wrong)
    assert ok is False
    assert "cannot reach Dagster's PostgreSQL" in detail and "DAGSTER_PG_" in detail
    assert "not-the-password-5f2c" not in detail and postgres_server.password not in detail


def test_doctor_shows_the_instance_check(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, env = production_home(tmp_path, postgres_server)
    migrate(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "lake"))
    monkeypatch.delenv(CATALOG_ENV, raising=False)
    monkeypatch.delenv(DATA_PATH_ENV, raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    result = CliRunner().invoke(app, ["doctor"])
    (row,) = [line for line in result.output.splitlines() if f"│ {CHECK} " in line]
    assert " ok " in row and "schema migrated" in row
    assert postgres_server.password not in result.output

    monkeypatch.setenv("DAGSTER_PG_PORT", "1")
    result = CliRunner().invoke(app, ["doctor"])
    (row,) = [line for line in result.output.splitlines() if f"│ {CHECK} " in line]
    assert "FAIL" in row and "cannot reach" in row
    assert result.exit_code == 1
    # The alerts table does not open the instance it could not reach (Dagster would retry).
    (jobs,) = [line for line in result.output.splitlines() if line.startswith("│ jobs ")]
    assert "unknown" in jobs and "cannot be read (see its check above)" in jobs
