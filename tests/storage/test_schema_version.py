"""The schema version: read from the catalog alone, and a lake of an older version brought up
to date by the first handle that attaches it."""

from __future__ import annotations

from pathlib import Path

from storage import Warehouse
from storage.lake_schema import META_VIEW, SCHEMA_VERSION, schema_version


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
