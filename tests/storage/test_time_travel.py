"""Time travel: ``Warehouse.sql(…, as_of=instant)`` reads the lake as it was at that instant,
before later ticks and rebuilds, after maintenance too; instants it never had are refused with
what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from backquant.symbols import SUPPORTED_SYMBOLS
from pipelines.cli import app
from storage import QueryError, StorageError, Warehouse, ingest_outcomes, rebuild_day
from storage.archive import ArchiveRecord, records_frame
from storage.errors import SnapshotNotFoundError
from storage.maintenance import maintain
from storage.writes import insert, transaction
from tests.storage.helpers import BASE_TIME, ORDER, SUMMARY_TABLES, count, fetched, tables, tick

SNAPSHOTS_PER_SYMBOL = "SELECT symbol, count(*) AS n FROM snapshots GROUP BY symbol ORDER BY symbol"


def _per_symbol(frame: pl.DataFrame) -> dict[str, int]:
    return dict(frame.iter_rows())


def _instant() -> datetime:
    """Now, strictly after every commit made so far (snapshot times are wall-clock)."""
    return datetime.now(UTC)


def test_as_of_sees_the_lake_before_a_later_tick(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    after_first = _instant()
    first = tables(warehouse, (*SUMMARY_TABLES, "ingest_log", "responses"))
    ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=1)))

    then = warehouse.sql(SNAPSHOTS_PER_SYMBOL, as_of=after_first)
    assert _per_symbol(then) == dict.fromkeys(SUPPORTED_SYMBOLS, 1)
    assert _per_symbol(warehouse.sql(SNAPSHOTS_PER_SYMBOL)) == dict.fromkeys(SUPPORTED_SYMBOLS, 2)
    for name, frame in first.items():
        old = warehouse.sql(f"SELECT * FROM {name} {_ordered(name)}", as_of=after_first)
        assert old.equals(frame), name
    # Views travel too, and a naive instant is read as UTC.
    latest = warehouse.sql(
        "SELECT DISTINCT computed_at FROM latest_term_structure",
        as_of=after_first.replace(tzinfo=None),
    )
    assert latest["computed_at"].to_list() == [BASE_TIME]


def _ordered(name: str) -> str:
    return "ORDER BY " + ", ".join(ORDER[name])


def test_as_of_sees_the_rows_a_rebuild_later_changed(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    # A response archived without rows (as a restore of the archive would leave it): the
    # rebuild adds its rows.
    late_at = BASE_TIME + timedelta(minutes=5)
    late = fetched("ETHUSDT", late_at)
    with warehouse.writer() as connection, transaction(connection, warehouse.config, "a test"):
        insert(
            connection,
            "responses",
            records_frame([ArchiveRecord("ETHUSDT", late_at, late.fetch, late.raw)]),
        )
    before_rebuild = _instant()
    before_rows = tables(warehouse, SUMMARY_TABLES)
    rebuild_day(warehouse, BASE_TIME.date())
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 5

    for name, frame in before_rows.items():
        old = warehouse.sql(f"SELECT * FROM {name} {_ordered(name)}", as_of=before_rebuild)
        assert old.equals(frame), name
    # The reader that stays attached still sees the present.
    assert count(warehouse, "SELECT count(*) FROM snapshots WHERE symbol = 'ETHUSDT'") == 2


def test_an_instant_before_the_lake_existed_is_refused_with_advice(warehouse: Warehouse) -> None:
    before = _instant() - timedelta(seconds=1)
    ingest_outcomes(warehouse, tick(BASE_TIME))
    with pytest.raises(SnapshotNotFoundError) as caught:
        warehouse.sql("SELECT count(*) FROM snapshots", as_of=before)
    assert isinstance(caught.value, QueryError) and isinstance(caught.value, StorageError)
    message = str(caught.value)
    assert before.isoformat() in message
    assert "TERMSTORE_SNAPSHOT_RETENTION_DAYS" in caught.value.advice
    assert "ducklake_snapshots" in caught.value.advice
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 4  # nothing broken


def test_as_of_reads_the_same_rows_after_maintenance_within_retention(
    warehouse: Warehouse,
) -> None:
    instants, seen = [], []
    for minute in range(3):
        ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute)))
        instants.append(_instant())
        seen.append(tables(warehouse, ("snapshots", "expiries", "responses")))
    merged = maintain(warehouse)
    assert merged.files_after < merged.files_before
    # Days later (within the seven days of retention) the merged-away files are deleted.
    later = maintain(warehouse, now=_instant() + timedelta(days=2))
    assert dict((s.name, s.affected) for s in later.steps)["expire_snapshots"] == 0
    for instant, then in zip(instants, seen, strict=True):
        for name, frame in then.items():
            old = warehouse.sql(f"SELECT * FROM {name} {_ordered(name)}", as_of=instant)
            assert old.equals(frame), (instant, name)


def test_termstore_sql_as_of(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    after_first = _instant()
    ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=1)))
    runner = CliRunner()
    query = "SELECT count(*) AS n FROM snapshots"
    home = str(warehouse.home)
    then = runner.invoke(
        app, ["sql", query, "--as-of", after_first.isoformat(), "--format", "json", "--home", home]
    )
    assert then.exit_code == 0, then.output
    assert orjson.loads(then.stdout) == [{"n": 4}]
    now = runner.invoke(app, ["sql", query, "--format", "json", "--home", home])
    assert orjson.loads(now.stdout) == [{"n": 8}]
    bad = runner.invoke(app, ["sql", query, "--as-of", "yesterday", "--home", home])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output
