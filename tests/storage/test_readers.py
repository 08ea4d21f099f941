"""Readers: a reader attached before ticks, rebuilds and maintenance keeps seeing every commit
without reopening; the lake is read-only to them; a refused query says why, lists what exists,
holds no secret and leaves the reader working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from storage import LakeConfig, QueryError, Warehouse, ingest_outcomes, rebuild_day
from storage.connection import new_connection
from storage.lake_schema import VIEW_NAMES
from storage.maintenance import maintain
from storage.schemas import TABLE_SCHEMAS
from tests.storage.helpers import BASE_TIME, count, open_local, tick

SECRET = "pg-Secret-0451"


def test_a_reader_opened_before_the_ticks_sees_every_commit(tmp_path: Path) -> None:
    writer = open_local(tmp_path / "home")
    reader = open_local(tmp_path / "home")
    writer.initialise()  # a reader never creates the lake
    assert count(reader, "SELECT count(*) FROM snapshots") == 0
    held = reader.connect()
    for minute in range(3):
        ingest_outcomes(writer, tick(BASE_TIME + timedelta(minutes=minute)))
        assert count(reader, "SELECT count(*) FROM snapshots") == 4 * (minute + 1)
        assert held.execute("SELECT count(*) FROM expiries").fetchone() == (16 * (minute + 1),)
    rebuild_day(writer, BASE_TIME.date())
    maintain(writer, now=datetime.now(UTC) + timedelta(days=2))  # merges and deletes files
    ingest_outcomes(writer, tick(BASE_TIME + timedelta(minutes=3)))
    assert count(reader, "SELECT count(*) FROM snapshots") == 16
    assert held.execute("SELECT count(*) FROM venue_oi").fetchone() == (4 * 128,)
    latest = reader.sql("SELECT DISTINCT computed_at FROM latest_term_structure")
    assert latest["computed_at"].to_list() == [BASE_TIME + timedelta(minutes=3)]
    held.close()
    reader.close()
    writer.close()


NOT_QUERIES = (
    "CREATE TABLE x AS SELECT 1",
    "INSERT INTO snapshots (symbol) VALUES ('BTCUSDT')",
    "DELETE FROM expiries",
    "DROP VIEW latest_term_structure",
    "SET threads = 1",
    "BEGIN",
    "BEGIN; SELECT count(*) FROM snapshots",
)


COUNTS = (
    "SELECT (SELECT count(*) FROM snapshots), (SELECT count(*) FROM expiries), "
    "(SELECT count(*) FROM ingest_log WHERE outcome = 'stored'), "
    "(SELECT count(*) FROM (SELECT DISTINCT symbol, computed_at FROM expiries))"
)


def test_a_transaction_begun_before_maintenance_reads_its_snapshot_whole(tmp_path: Path) -> None:
    """Maintenance replaces catalog rows (the merged files' by the merged file's) while a
    reader's transaction is open: the reader still sees every row of its snapshot. On a SQLite
    catalog this holds only with ``sqlite_disable_multithreaded_scans`` (storage/lake.py):
    without it ``ingest_log`` reads as empty here."""
    writer = open_local(tmp_path / "home")
    for minute in range(20):
        ingest_outcomes(writer, tick(BASE_TIME + timedelta(minutes=minute)))
    rebuild_day(writer, BASE_TIME.date())
    reader = open_local(tmp_path / "home").connect()
    reader.execute("BEGIN")
    seen = reader.execute(COUNTS).fetchone()
    assert seen == (80, 320, 80, 80)
    report = maintain(writer)
    assert report.files_after < report.files_before, "maintenance merged nothing"
    assert reader.execute(COUNTS).fetchone() == seen
    reader.execute("COMMIT")
    assert reader.execute(COUNTS).fetchone() == seen
    reader.close()


def test_a_statement_that_is_no_query_is_refused_and_the_reader_goes_on(
    warehouse: Warehouse,
) -> None:
    for minute, statement in enumerate(NOT_QUERIES):
        ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute)))
        ticks = 2 * minute + 1
        assert count(warehouse, "SELECT count(*) FROM snapshots") == 4 * ticks
        with pytest.raises(QueryError) as caught:
            warehouse.sql(statement)
        assert caught.value.advice, statement
        # Nothing changed, and the reader still sees new commits.
        ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(hours=1, minutes=minute)))
        assert count(warehouse, "SELECT count(*) FROM snapshots") == 4 * (ticks + 1), statement
        assert count(warehouse, "SELECT count(*) FROM expiries") == 16 * (ticks + 1), statement
        latest = warehouse.sql("SELECT DISTINCT computed_at FROM latest_term_structure")
        assert latest.item() == BASE_TIME + timedelta(hours=1, minutes=minute), statement


def test_a_read_only_connection_refuses_writes(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    connection = warehouse.connect()
    with pytest.raises(duckdb.Error, match="read-only"):
        connection.execute("CREATE TABLE x AS SELECT 1")
    connection.close()


def test_a_query_error_lists_what_exists_and_holds_no_secret(tmp_path: Path) -> None:
    config = LakeConfig.from_env(tmp_path / "home", env={"PGPASSWORD": SECRET})
    with Warehouse.open(config=config) as warehouse:
        warehouse.initialise()
        with pytest.raises(QueryError) as caught:
            warehouse.sql(f'SELECT * FROM "{SECRET}"')
        message = str(caught.value)
        assert message.startswith("query failed: ") and SECRET not in message
        for name in (*TABLE_SCHEMAS, *VIEW_NAMES):
            assert name in caught.value.advice, name
        assert count(warehouse, "SELECT count(*) FROM snapshots") == 0
        with pytest.raises(QueryError) as caught:
            warehouse.sql("DELETE FROM snapshots")
        assert "only read" in caught.value.advice and "snapshots" not in caught.value.advice


def test_tables_and_views_are_in_the_catalog_for_any_duckdb_from_any_directory(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # A plain DuckDB with the extensions, told only where the catalog is: the data path and
    # the views come from the catalog.
    connection = new_connection(warehouse.config)
    connection.execute(
        f"ATTACH 'ducklake:sqlite:{warehouse.config.catalog_file}' AS other (READ_ONLY)"
    )
    connection.execute("USE other")
    assert connection.execute("SELECT count(*) FROM expiries").fetchone() == (16,)
    latest = connection.execute("SELECT count(DISTINCT symbol) FROM latest_term_structure")
    assert latest.fetchone() == (4,)
    connection.close()
