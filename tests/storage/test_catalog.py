"""The catalog refresh: only changed views are recreated, and every fallback still yields views."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.catalog import cold_view, hot_view, refresh_catalog_report
from storage.catalog_file import write_catalog
from storage.layout import TABLES
from tests.storage.helpers import BASE_TIME, duplicate_keys, table, tick


def _refresh(warehouse: Warehouse) -> tuple[tuple[str, ...], bool]:
    with warehouse.lock():
        report = refresh_catalog_report(warehouse.layout, warehouse.state())
    return report.recreated, report.reused_previous


def test_a_refresh_with_nothing_new_recreates_no_view(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    before = warehouse.layout.catalog.stat().st_ino
    assert _refresh(warehouse) == ((), True)
    # Still a new file (readers of the old one keep it), with the same views.
    assert warehouse.layout.catalog.stat().st_ino != before
    assert table(warehouse, "snapshots").height == 4
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)


def test_only_hot_and_latest_views_change_between_two_ticks(tmp_path: Path) -> None:
    warehouse = Warehouse.open(tmp_path / "home")
    ingest_outcomes(warehouse, tick(BASE_TIME))
    rebuild_day(warehouse, BASE_TIME.date())
    later = BASE_TIME + timedelta(days=1)
    ingest_outcomes(warehouse, tick(later))
    statements_before = _statements(warehouse)
    ingest_outcomes(warehouse, tick(later + timedelta(minutes=1)))
    changed = {
        name
        for name, statement in _statements(warehouse).items()
        if statements_before.get(name) != statement
    }
    assert {hot_view(name) for name in TABLES} <= changed
    assert not {cold_view(name) for name in TABLES} & changed
    assert not set(TABLES) & changed
    assert "latest_term_structure" in changed
    assert table(warehouse, "snapshots").height == 12
    warehouse.close()


def _statements(warehouse: Warehouse) -> dict[str, str]:
    connection = warehouse.connect()
    try:
        rows = connection.execute(
            "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal "
            "AND database_name = 'warehouse'"
        ).fetchall()
    finally:
        connection.close()
    return {str(name): str(comment) for name, comment in rows}


def test_a_damaged_catalog_is_replaced_by_a_fresh_one(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    warehouse.close()
    warehouse.layout.catalog.write_bytes(b"this is not a duckdb file" * 100)
    recreated, reused = _refresh(warehouse)
    assert not reused and set(TABLES) <= set(recreated)
    assert table(warehouse, "snapshots").height == 4


def test_stale_temp_catalogs_of_a_killed_writer_are_removed(warehouse: Warehouse) -> None:
    home = warehouse.home
    stale = [home / ".warehouse.duckdb.123-abcd.tmp", home / ".warehouse.duckdb.123-abcd.tmp.wal"]
    for path in stale:
        path.write_bytes(b"partial")
    _refresh(warehouse)
    assert not any(path.exists() for path in stale)
    assert warehouse.layout.catalog.exists()


def test_a_changed_query_shape_recreates_every_view(tmp_path: Path) -> None:
    target = tmp_path / "catalog.duckdb"
    first = ["CREATE VIEW base AS SELECT 1 AS x", "CREATE VIEW top AS SELECT x FROM base"]
    assert write_catalog(target, first).recreated == ("base", "top")
    assert write_catalog(target, first).recreated == ()
    # base now yields a string column: top must be rebound even though its text is the same.
    second = ["CREATE VIEW base AS SELECT 'a' AS x", "CREATE VIEW top AS SELECT x FROM base"]
    assert write_catalog(target, second).recreated == ("base", "top")
    assert write_catalog(target, second[:1]).recreated == ("base",)


def test_an_overgrown_catalog_is_written_afresh(tmp_path: Path) -> None:
    target = tmp_path / "catalog.duckdb"
    statements = ["CREATE VIEW base AS SELECT 1 AS x"]
    write_catalog(target, statements)
    assert write_catalog(target, statements).reused_previous
    fresh = write_catalog(target, statements, size_limit=target.stat().st_size - 1)
    assert not fresh.reused_previous and fresh.recreated == ("base",)
