"""The schema version: read from the catalog alone, and a lake of an older version brought up
to date by the first handle that attaches it."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from storage import Warehouse, ingest_outcomes, lake_schema, rebuild_day
from storage.derived import (
    EXPIRIES_VIEW_SQL,
    EXPIRY_ROWS,
    SORTED_BY,
    STORED_TABLES,
    create_stored_sql,
)
from storage.errors import NewerLakeError
from storage.lake_schema import (
    INGEST_GAPS_MACRO_SQL,
    LAKE_OPTIONS,
    META_VIEW,
    PARTITIONS,
    SCHEMA_VERSION,
    TABLE_OPTIONS,
    schema_version,
    views,
)
from storage.maintenance import maintain
from storage.schemas import TABLE_SCHEMAS, TIME_COLUMNS, create_table_sql
from tests.storage.helpers import BASE_TIME, tables, tick


def test_reading_the_schema_version_lists_no_data_file(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "home") as warehouse:
        warehouse.initialise()
        connection = warehouse.connect()
        try:
            connection.execute("CALL enable_logging('DuckLakeMetadata')")
            assert schema_version(connection) == SCHEMA_VERSION
            statements = [
                str(query)
                for (query,) in connection.execute(
                    "SELECT query FROM duckdb_logs_parsed('DuckLakeMetadata')"
                ).fetchall()
            ]
        finally:
            connection.close()
    assert not [query for query in statements if "ducklake_data_file" in query], statements


def test_a_lake_whose_version_is_a_table_is_brought_up_to_date_by_its_first_reader(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with Warehouse.open(home) as warehouse:
        warehouse.initialise()
        with warehouse.writer() as lake:
            # Schema version 4 kept its version in a table of that name.
            lake.execute("BEGIN")
            lake.execute(f"DROP VIEW {META_VIEW}")
            lake.execute(f"CREATE TABLE {META_VIEW} (key VARCHAR, value VARCHAR)")
            lake.execute(f"INSERT INTO {META_VIEW} VALUES ('schema_version', '4')")
            lake.execute("COMMIT")
            assert schema_version(lake) == "4"

    with Warehouse.open(home) as warehouse:
        assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 0
        kind = warehouse.sql(
            f"SELECT table_type FROM information_schema.tables WHERE table_name = '{META_VIEW}'"
        ).item()
        version = warehouse.sql(f"SELECT value FROM {META_VIEW}").item()
    assert (kind, version) == ("VIEW", SCHEMA_VERSION)


def test_a_lake_with_day_partitions_keeps_its_days_and_writes_months_after_the_upgrade(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with Warehouse.open(home) as warehouse:
        with warehouse.writer() as lake:
            # Up to schema version 7 every summary table was partitioned by UTC day.
            lake.execute("BEGIN")
            for table in ("snapshots", EXPIRY_ROWS, "venue_oi", "responses", "ingest_log"):
                column = TIME_COLUMNS.get(table, "computed_at")
                lake.execute(
                    f"ALTER TABLE {table} SET PARTITIONED BY "
                    f"(year({column}), month({column}), day({column}))"
                )
            lake.execute(
                f"CREATE OR REPLACE VIEW {META_VIEW} AS "
                "SELECT 'schema_version' AS key, '7' AS value"
            )
            lake.execute("COMMIT")
        ingest_outcomes(warehouse, tick(BASE_TIME))
        before = tables(warehouse)

    with Warehouse.open(home) as warehouse:
        ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(days=1)))
        maintain(warehouse)
        paths = warehouse.sql(f"SELECT data_file FROM ducklake_list_files('lake', '{EXPIRY_ROWS}')")
        after = tables(warehouse)
        version = warehouse.sql(f"SELECT value FROM {META_VIEW}").item()
    assert version == SCHEMA_VERSION
    # The day written before the upgrade stays in its day file; the one after goes to a month.
    assert sorted("/day=" in path for path in paths["data_file"]) == [False, True]
    for name, frame in before.items():
        column = pl.col(TIME_COLUMNS.get(name, "computed_at"))
        assert_frame_equal(after[name].filter(column < BASE_TIME.replace(hour=23)), frame)

    # A rebuild of the old day moves its summary rows into the month's file (the runbook says so).
    with Warehouse.open(home) as warehouse:
        rebuild_day(warehouse, BASE_TIME.date())
        maintain(warehouse)
        paths = warehouse.sql(f"SELECT data_file FROM ducklake_list_files('lake', '{EXPIRY_ROWS}')")
        rebuilt = tables(warehouse)
    assert [path for path in paths["data_file"] if "/day=" in path] == []
    assert_frame_equal(rebuilt["expiries"], after["expiries"])


def test_a_lake_that_kept_expiries_as_a_table_moves_its_rows_to_expiry_rows(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Warehouse.open(home) as warehouse:
        ingest_outcomes(warehouse, tick(BASE_TIME))
        before = tables(warehouse)
        with warehouse.writer() as lake:
            # Up to schema version 8, expiries was a table with every column stored.
            lake.execute("BEGIN")
            lake.execute("CREATE TABLE every_column AS SELECT * FROM expiries")
            lake.execute("DROP VIEW expiries")
            lake.execute("CREATE TABLE expiries AS SELECT * FROM every_column")
            lake.execute(f"DROP TABLE every_column; DROP TABLE {EXPIRY_ROWS}")
            lake.execute(
                f"CREATE OR REPLACE VIEW {META_VIEW} AS "
                "SELECT 'schema_version' AS key, '8' AS value"
            )
            lake.execute("COMMIT")
            assert schema_version(lake) == "8"

    with Warehouse.open(home) as warehouse:
        after = tables(warehouse)
        stored = warehouse.sql(f"SELECT count(*) FROM {EXPIRY_ROWS}").item()
        version = warehouse.sql(f"SELECT value FROM {META_VIEW}").item()
        paths = warehouse.sql(f"SELECT data_file FROM ducklake_list_files('lake', '{EXPIRY_ROWS}')")
    assert (version, stored) == (SCHEMA_VERSION, before["expiries"].height)
    # The moved rows land in their month's partition, as new rows do.
    assert [path for path in paths["data_file"] if "/month=3/" not in path] == []
    for name, frame in before.items():
        assert_frame_equal(after[name], frame, check_exact=True)


def test_a_writer_stopped_before_the_table_options_leaves_the_old_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The table options are set after the schema's transaction commits; were the version
    # recorded first, a writer stopped in between would leave a lake without them for good.
    home = tmp_path / "home"
    failing = {**TABLE_OPTIONS, "responses": {"no_such_option": 1}}
    monkeypatch.setattr(lake_schema, "TABLE_OPTIONS", failing)
    with Warehouse.open(home) as warehouse, pytest.raises(duckdb.Error, match="no_such_option"):
        warehouse.initialise()
    monkeypatch.setattr(lake_schema, "TABLE_OPTIONS", TABLE_OPTIONS)

    with Warehouse.open(home) as warehouse:
        with warehouse.writer() as lake:
            assert schema_version(lake) == SCHEMA_VERSION
        options = warehouse.sql(
            "SELECT scope_entry, option_name, value FROM lake.options() WHERE scope = 'TABLE'"
        )
    stored = {(entry.split(".")[-1], name): value for entry, name, value in options.rows()}
    expected = {
        (table, name): str(value).lower()
        for table, names in TABLE_OPTIONS.items()
        for name, value in names.items()
    }
    assert {key: stored.get(key, "").lower() for key in expected} == expected


def test_a_lake_of_a_newer_version_is_read_but_never_written_by_an_older_termstore(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    newer = str(int(SCHEMA_VERSION) + 1)
    with Warehouse.open(home) as warehouse:
        ingest_outcomes(warehouse, tick(BASE_TIME))
        with warehouse.writer() as lake:
            lake.execute(
                f"CREATE OR REPLACE VIEW {META_VIEW} AS "
                f"SELECT 'schema_version' AS key, '{newer}' AS value"
            )
    with Warehouse.open(home) as warehouse:
        # A reader reads it as it is (and puts no older definitions back).
        assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 4
        assert warehouse.sql(f"SELECT value FROM {META_VIEW}").item() == newer
        with pytest.raises(NewerLakeError, match=f"schema version {newer}, newer than"):
            ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=1)))
        assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 4


DEFINITIONS_DIGEST = {"11": "70612f3b6307e0ea"}
"""What the catalog holds at the current schema version (tables, views, macro, options, layout).
A lake keeps its views until a writer sees a new version: a change to any of them must raise
SCHEMA_VERSION, then record the digest this test prints."""


def _definitions_digest() -> str:
    texts = [
        *(create_table_sql(table) for table in TABLE_SCHEMAS if table not in STORED_TABLES),
        create_stored_sql(),
        EXPIRIES_VIEW_SQL,
        INGEST_GAPS_MACRO_SQL,
        *(f"{name}: {query}" for name, query in views().items()),
        repr(sorted(LAKE_OPTIONS.items())),
        repr(sorted((table, sorted(o.items())) for table, o in TABLE_OPTIONS.items())),
        repr(sorted(PARTITIONS.items())),
        repr(sorted(SORTED_BY.items())),
    ]
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def test_a_change_to_what_the_catalog_holds_comes_with_a_new_schema_version() -> None:
    digest = _definitions_digest()
    assert DEFINITIONS_DIGEST.get(SCHEMA_VERSION) == digest, (
        f"the lake's definitions changed (digest {digest}): raise SCHEMA_VERSION so existing "
        "lakes take them, and record the digest under the new version"
    )
