"""``termstore doctor``: the API against a scripted BackQuant on loopback, and the lake's catalog
and data path: the default local lake, a broken catalog file, and PostgreSQL + S3 for real."""

from __future__ import annotations

import dataclasses
import os
import secrets
import sqlite3
import subprocess
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from storage import LakeConfig, Warehouse, ingest_outcomes
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, HOME_ENV
from storage.lake_schema import SCHEMA_VERSION
from tests.storage.helpers import BASE_TIME, tick
from tests.support.dagster_ui import BIN
from tests.support.fixtures import TEST_KEY, ScriptedAPI
from tests.support.services import PostgresServer, S3Server

runner = CliRunner()
WIDE = "300"
"""Terminal width for doctor's tables, so a path or a reason is never folded over two lines."""


@pytest.fixture(autouse=True)
def _wide_local_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A default lake under tmp_path whatever the shell exports, and wide tables."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv(CATALOG_ENV, raising=False)
    monkeypatch.delenv(DATA_PATH_ENV, raising=False)
    monkeypatch.setenv("COLUMNS", WIDE)


def run_doctor() -> tuple[int, str]:
    """Exit code and output with rich's table borders and line wrapping folded away."""
    result = runner.invoke(app, ["doctor"])
    return result.exit_code, fold(result.output)


def fold(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def check_line(output: str, check: str) -> str:
    """The one table row of ``check`` in doctor's raw output."""
    (line,) = [line for line in output.splitlines() if f"│ {check} " in line]
    return fold(line)


def use_api(api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKQUANT_API_KEY", TEST_KEY)
    monkeypatch.setenv("BACKQUANT_BASE_URL", api.server.base_url)


def test_doctor_shows_redacted_config_and_passes(
    scripted_api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_api(scripted_api, monkeypatch)
    exit_code, output = run_doctor()
    assert exit_code == 0, output
    assert scripted_api.server.base_url in output
    assert "bq_test_****" in output
    assert TEST_KEY not in output
    assert "status='ok'" in output
    home = tmp_path / "home"
    assert f"catalog sqlite:{home}/catalog.sqlite" in output
    assert f"data path {home}/data/" in output
    assert "lake catalog ok" in output and "not created yet — the first ingest creates it" in output
    assert f"lake data path ok {home}/data does not exist yet" in output
    assert not home.exists(), "doctor created part of a lake"


def test_doctor_fails_without_key_but_still_checks_health(
    scripted_api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKQUANT_API_KEY", raising=False)
    monkeypatch.setenv("BACKQUANT_BASE_URL", scripted_api.server.base_url)
    exit_code, output = run_doctor()
    assert exit_code == 1
    assert "BACKQUANT_API_KEY is not set" in output
    assert "status='ok'" in output


def test_doctor_reports_bad_config_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKQUANT_BASE_URL", "ftp://example.invalid")
    exit_code, output = run_doctor()
    assert exit_code == 2
    assert "must be an http(s) URL" in output


def test_a_bad_catalog_setting_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = secrets.token_hex(8)
    monkeypatch.setenv(CATALOG_ENV, f"mysql:host=db user=lake password={password}")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0, result.output
    assert "configuration error: TERMSTORE_CATALOG=" in result.output
    assert "is not a catalog termstore can use" in result.output
    assert password not in result.output


def test_doctor_reports_unreachable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKQUANT_API_KEY", TEST_KEY)
    monkeypatch.setenv("BACKQUANT_BASE_URL", "http://127.0.0.1:9")
    exit_code, output = run_doctor()
    assert exit_code == 1
    assert "could not reach http://127.0.0.1:9" in output


def test_a_created_local_lake_is_a_termstore_lake_with_a_writable_data_path(
    scripted_api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with Warehouse.open(home) as warehouse:
        warehouse.initialise()
    use_api(scripted_api, monkeypatch)
    exit_code, output = run_doctor()
    assert exit_code == 0, output
    assert (
        "lake catalog ok" in output and f"termstore lake, schema version {SCHEMA_VERSION}" in output
    )
    assert f"lake data path ok {home}/data is readable and writable" in output
    assert not (home / "data" / "_termstore_doctor").exists(), "the probe was left behind"


def test_the_catalog_size_counts_live_files_and_snapshots(
    scripted_api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with Warehouse.open(home) as warehouse:
        for minute in range(3):
            ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute)))
    # Counted from the catalog file itself, with no DuckDB connection open in this process.
    with closing(sqlite3.connect(home / "catalog.sqlite")) as catalog:
        (files,) = catalog.execute(
            "SELECT count(*) FROM ducklake_data_file WHERE end_snapshot IS NULL"
        ).fetchone()
        (snapshots,) = catalog.execute("SELECT count(*) FROM ducklake_snapshot").fetchone()
    assert files >= 15 and snapshots >= 4  # three ticks of five tables, after the creation
    use_api(scripted_api, monkeypatch)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    size_line = check_line(result.output, "lake files and snapshots")
    assert size_line.startswith(
        f"lake files and snapshots ok {files} data files, {snapshots} snapshots"
    )
    assert "Growth of the default SQLite catalog" in size_line


def garbage_file(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 200)


def foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER)")


@pytest.mark.parametrize(
    ("make_file", "reason"),
    [(garbage_file, "is not a SQLite database"), (foreign_sqlite, "is not a DuckLake catalog")],
)
def test_a_catalog_file_that_is_not_a_catalog_fails_naming_the_file(
    scripted_api: ScriptedAPI,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_file: object,
    reason: str,
) -> None:
    catalog = tmp_path / "elsewhere.sqlite"
    assert callable(make_file)
    make_file(catalog)
    before = catalog.read_bytes()
    use_api(scripted_api, monkeypatch)
    monkeypatch.setenv(CATALOG_ENV, f"sqlite:{catalog}")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1, result.output
    line = check_line(result.output, "lake catalog")
    assert line.startswith("lake catalog FAIL"), line
    assert str(catalog) in line and reason in line and CATALOG_ENV in line
    assert catalog.read_bytes() == before, "doctor changed the file"


# --- PostgreSQL catalog and S3 data path, for real on loopback, in a fresh process -------------


def own_database(server: PostgresServer) -> PostgresServer:
    """A database of this test's own on the session's server (tests share the server)."""
    name = f"doctor_{secrets.token_hex(4)}"
    with psycopg.connect(server.dsn(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return dataclasses.replace(server, dbname=name)


def doctor_process(api: ScriptedAPI, env: dict[str, str]) -> tuple[int, str]:
    """``termstore doctor`` in a fresh process with only these settings (and the API's)."""
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BACKQUANT_", "TERMSTORE_", "AWS_"))
    }
    result = subprocess.run(
        [str(BIN / "termstore"), "doctor"],
        env={
            **base,
            "BACKQUANT_API_KEY": TEST_KEY,
            "BACKQUANT_BASE_URL": api.server.base_url,
            "COLUMNS": WIDE,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def team_env(pg: PostgresServer, s3: S3Server, home: Path, data_path: str) -> dict[str, str]:
    return {
        **s3.env(),
        HOME_ENV: str(home),
        CATALOG_ENV: pg.ducklake_catalog(),
        DATA_PATH_ENV: data_path,
    }


def assert_no_secret(output: str, pg: PostgresServer, s3: S3Server) -> None:
    for secret in (pg.password, s3.secret_key, TEST_KEY):
        assert secret not in output


def test_a_postgres_catalog_with_an_s3_data_path_passes(
    scripted_api: ScriptedAPI,
    postgres_server: PostgresServer,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    pg = own_database(postgres_server)
    s3_server.create_bucket("doctor-ok")
    env = team_env(pg, s3_server, tmp_path / "home", "s3://doctor-ok/lake")

    code, output = doctor_process(scripted_api, env)
    assert code == 0, output
    shown = fold(output)
    assert (
        f"catalog postgres:host=127.0.0.1 port={pg.port} dbname={pg.dbname} user={pg.user} "
        "password=***" in shown
    )
    assert "data path s3://doctor-ok/lake/" in shown
    assert f"S3 endpoint {s3_server.host_port}" in shown and "S3 credentials set" in shown
    assert "not created yet — the first ingest creates it" in check_line(output, "lake catalog")
    data_line = check_line(output, "lake data path")
    assert data_line.startswith("lake data path ok s3://doctor-ok/lake/: listed"), data_line
    assert s3_server.list_keys("doctor-ok") == ["lake/_termstore_doctor/probe.parquet"]
    assert_no_secret(output, pg, s3_server)

    with Warehouse.open(config=LakeConfig.from_env(env=env)) as warehouse:
        warehouse.initialise()
    code, output = doctor_process(scripted_api, env)
    assert code == 0, output
    catalog_line = check_line(output, "lake catalog")
    assert catalog_line.startswith(
        f"lake catalog ok termstore lake, schema version {SCHEMA_VERSION}"
    ), catalog_line
    assert catalog_line.endswith(
        f"(postgres:host=127.0.0.1 port={pg.port} dbname={pg.dbname} user={pg.user} password=***)"
    )
    assert "s3://doctor-ok/lake/" in check_line(output, "lake data path")
    size_line = check_line(output, "lake files and snapshots")
    # A new lake: no data file yet; its snapshots are the creation and the schema.
    assert size_line.startswith("lake files and snapshots ok 0 data files, "), size_line
    assert size_line.endswith(" snapshots") and "SQLite" not in size_line
    assert_no_secret(output, pg, s3_server)


def test_a_missing_bucket_fails_naming_the_bucket_and_the_setting(
    scripted_api: ScriptedAPI,
    postgres_server: PostgresServer,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    pg = own_database(postgres_server)
    env = team_env(pg, s3_server, tmp_path / "home", "s3://doctor-no-such-bucket/lake")
    code, output = doctor_process(scripted_api, env)
    assert code == 1, output
    line = check_line(output, "lake data path")
    assert line.startswith("lake data path FAIL cannot list s3://doctor-no-such-bucket/lake/"), line
    assert DATA_PATH_ENV in line
    assert "the bucket 'doctor-no-such-bucket' does not exist" in line
    assert "lake catalog ok" in check_line(output, "lake catalog")
    assert_no_secret(output, pg, s3_server)
