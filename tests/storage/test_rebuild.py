"""Rebuilds: a day from the raw archive equals the ticks that stored it, twice is the same,
ticks around a rebuild stay visible, refused archived bodies are reported and kept, and the
day's hourly sample follows its rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_outcomes, rebuild_day, rebuild_range
from storage.archive import ArchiveRecord, records_frame
from storage.research.hourly_tier import materialise_days
from storage.writes import insert, transaction
from tests.storage.helpers import (
    BASE_TIME,
    SUMMARY_TABLES,
    body,
    count,
    duplicate_keys,
    fetched,
    table,
    tables,
    tick,
)

DAY = BASE_TIME.date()


def _ingest_minutes(warehouse: Warehouse, minutes: Sequence[int]) -> None:
    for minute in minutes:
        ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minute)))


def _execute(warehouse: Warehouse, statement: str) -> None:
    """A change the tests make behind termstore's back (lost rows, a foreign archive)."""
    with warehouse.writer() as connection, transaction(connection, warehouse.config, "a test"):
        connection.execute(statement)


def _archive(warehouse: Warehouse, symbol: str, computed_at: datetime, raw: bytes) -> None:
    """Archive ``raw`` as earlier code would have, with no rows and no log row."""
    record = ArchiveRecord(symbol, computed_at, fetched(symbol, computed_at).fetch, raw)
    with warehouse.writer() as connection, transaction(connection, warehouse.config, "a test"):
        insert(connection, "responses", records_frame([record]))


def _keys(warehouse: Warehouse, name: str = "snapshots") -> set[tuple[str, datetime]]:
    return set(warehouse.sql(f"SELECT symbol, computed_at FROM {name}").iter_rows())


def test_a_rebuilt_day_equals_its_ticks_and_rebuilding_twice_changes_nothing(
    warehouse: Warehouse,
) -> None:
    _ingest_minutes(warehouse, range(3))
    ticked = tables(warehouse, (*SUMMARY_TABLES, "ingest_log", "responses"))
    report = rebuild_day(warehouse, DAY)
    assert sorted(report.rebuilt) == sorted((symbol, DAY) for symbol in SUPPORTED_SYMBOLS)
    assert all(day.responses == 3 and day.rejected == () for day in report.days)
    for day in report.days:
        assert day.rows_written["snapshots"] == 3
        assert (
            day.rows_written["expiries"]
            == ticked["expiries"].filter(pl.col("symbol") == day.symbol).height
        )
    for name, frame in ticked.items():
        assert_frame_equal(table(warehouse, name), frame, check_exact=True)
    first = tables(warehouse)
    again = rebuild_day(warehouse, DAY)
    assert again.rebuilt == report.rebuilt
    for name, frame in tables(warehouse).items():
        assert_frame_equal(frame, first[name], check_exact=True)
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)


def test_a_rebuild_restores_rows_lost_from_the_tables(warehouse: Warehouse) -> None:
    _ingest_minutes(warehouse, range(2))
    ticked = tables(warehouse, SUMMARY_TABLES)
    _execute(warehouse, "DELETE FROM expiry_rows WHERE symbol = 'BTCUSDT'")
    _execute(warehouse, "DELETE FROM venue_oi WHERE symbol = 'ETHUSDT'")
    rebuild_day(warehouse, DAY, ["BTCUSDT", "ETHUSDT"])
    for name, frame in ticked.items():
        assert_frame_equal(table(warehouse, name), frame, check_exact=True)


def test_a_key_archived_twice_is_kept_once_by_the_rebuild(warehouse: Warehouse) -> None:
    # A second copy of an archived key, with its rows stored twice (what a missed duplicate
    # lookup left behind): the rebuild keeps the earliest fetch and one set of rows.
    _ingest_minutes(warehouse, range(2))
    ticked = tables(warehouse, (*SUMMARY_TABLES, "responses"))
    _execute(
        warehouse,
        "INSERT INTO responses SELECT symbol, computed_at, "
        'replace(fetch_meta, \'"started_at":"2026\', \'"started_at":"2027\'), body '
        "FROM responses "
        f"WHERE symbol = 'ETHUSDT' AND computed_at = TIMESTAMPTZ '{BASE_TIME.isoformat()}'",
    )
    _execute(warehouse, "INSERT INTO snapshots SELECT * FROM snapshots WHERE symbol = 'ETHUSDT'")
    assert count(warehouse, "SELECT count(*) FROM responses") == 9

    report = rebuild_day(warehouse, DAY)

    (eth,) = [day for day in report.days if day.symbol == "ETHUSDT"]
    assert eth.responses == 2 and eth.message.startswith("1 second copies")
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)
    for name, frame in ticked.items():
        assert_frame_equal(table(warehouse, name), frame, check_exact=True)


def test_ticks_before_and_after_a_rebuild_of_their_day_are_visible_at_once(
    warehouse: Warehouse,
) -> None:
    first, second = BASE_TIME, BASE_TIME + timedelta(minutes=1)
    late = BASE_TIME - timedelta(hours=1)  # older than the rebuild's rows, same day
    ingest_outcomes(warehouse, tick(first))
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 4  # the reader is attached
    rebuild_day(warehouse, DAY)
    assert _keys(warehouse) == {(symbol, first) for symbol in SUPPORTED_SYMBOLS}
    ingest_outcomes(warehouse, tick(second))
    ingest_outcomes(warehouse, tick(late, ("SOLUSDT",)))
    expected = {(s, at) for s in SUPPORTED_SYMBOLS for at in (first, second)} | {("SOLUSDT", late)}
    assert _keys(warehouse) == expected
    assert _keys(warehouse, "expiries") == expected
    latest = warehouse.sql("SELECT DISTINCT symbol, computed_at FROM latest_term_structure")
    assert set(latest.iter_rows()) == {(symbol, second) for symbol in SUPPORTED_SYMBOLS}
    # A rebuild after them keeps them too: they are in the archive.
    rebuild_day(warehouse, DAY)
    assert _keys(warehouse) == expected
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)


def test_a_day_without_archive_says_so_and_changes_nothing(warehouse: Warehouse) -> None:
    _ingest_minutes(warehouse, range(1))
    before = tables(warehouse, SUMMARY_TABLES)
    report = rebuild_range(warehouse, DAY + timedelta(days=5), DAY + timedelta(days=6), ["SOLUSDT"])
    assert report.missing == (
        ("SOLUSDT", DAY + timedelta(days=5)),
        ("SOLUSDT", DAY + timedelta(days=6)),
    )
    assert not report.rebuilt and all(day.status == "no_archive" for day in report.days)
    message = report.days[0].message
    assert "no archived responses" in message and str(DAY) in message
    for name, frame in before.items():
        assert table(warehouse, name).equals(frame), name


def test_archived_bodies_todays_code_refuses_are_reported_and_stay_archived(
    warehouse: Warehouse,
) -> None:
    _ingest_minutes(warehouse, range(1))
    absurd_at, garbled_at = BASE_TIME + timedelta(minutes=1), BASE_TIME + timedelta(minutes=2)
    absurd = body("BTCUSDT", absurd_at, **{"data.expiries.0.atm_iv": 5000.0})
    _archive(warehouse, "BTCUSDT", absurd_at, absurd)
    _archive(warehouse, "BTCUSDT", garbled_at, b"{truncated")
    report = rebuild_day(warehouse, DAY)
    btc = next(day for day in report.days if day.symbol == "BTCUSDT")
    assert btc.status == "rebuilt" and btc.responses == 3
    assert btc.rows_written["snapshots"] == 1
    reasons = dict(btc.rejected)
    assert sorted(reasons) == ["20260302T120130.000000Z", "20260302T120230.000000Z"]
    assert reasons["20260302T120130.000000Z"].startswith("rejected_value: ")
    assert "atm_iv" in reasons["20260302T120130.000000Z"]
    assert reasons["20260302T120230.000000Z"].startswith("not_json: ")
    assert all(day.rejected == () for day in report.days if day.symbol != "BTCUSDT")
    # Still archived, byte for byte; no rows from them.
    archived = warehouse.sql(
        "SELECT computed_at, body FROM responses WHERE symbol = 'BTCUSDT' ORDER BY computed_at"
    )
    assert archived.rows() == [
        (BASE_TIME, archived.item(0, "body")),
        (absurd_at, absurd),
        (garbled_at, b"{truncated"),
    ]
    assert _keys(warehouse) == {(symbol, BASE_TIME) for symbol in SUPPORTED_SYMBOLS}


def test_a_bad_range_or_symbol_is_refused_before_anything_changes(warehouse: Warehouse) -> None:
    _ingest_minutes(warehouse, range(1))
    _execute(warehouse, "DELETE FROM expiry_rows WHERE symbol = 'BTCUSDT'")
    with pytest.raises(ValueError, match="before it starts"):
        rebuild_range(warehouse, DAY, DAY - timedelta(days=1))
    with pytest.raises(ValueError, match="DOGEUSDT"):
        rebuild_range(warehouse, DAY, DAY, ["BTCUSDT", "DOGEUSDT"])
    with pytest.raises(ValueError, match="unsupported symbol"):
        rebuild_day(warehouse, DAY, ["btcusdt"])
    assert count(warehouse, "SELECT count(*) FROM expiries WHERE symbol = 'BTCUSDT'") == 0


def test_a_range_commits_day_by_day_so_a_failure_keeps_the_days_before(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.rebuild

    next_day = BASE_TIME + timedelta(days=1)
    ingest_outcomes(warehouse, tick(BASE_TIME))
    ingest_outcomes(warehouse, tick(next_day))
    _execute(warehouse, "DELETE FROM snapshots WHERE symbol = 'BTCUSDT'")
    real = storage.rebuild.replace_day

    def failing_on_the_second_day(
        connection: duckdb.DuckDBPyConnection,
        day: date,
        symbols: Sequence[str],
        rows: dict[str, pl.DataFrame],
        now: datetime,
    ) -> None:
        real(connection, day, symbols, rows, now)
        if day == next_day.date():
            raise OSError("disk full")

    monkeypatch.setattr(storage.rebuild, "replace_day", failing_on_the_second_day)
    with pytest.raises(OSError, match="disk full"):
        rebuild_range(warehouse, DAY, next_day.date())
    btc = warehouse.sql("SELECT computed_at FROM snapshots WHERE symbol = 'BTCUSDT'")
    assert btc["computed_at"].to_list() == [BASE_TIME]


def _sampled(warehouse: Warehouse, symbol: str) -> list[datetime]:
    frame = warehouse.sql(
        f"SELECT DISTINCT computed_at FROM hourly_sample WHERE symbol = '{symbol}' ORDER BY 1"
    )
    return frame["computed_at"].to_list()


def _sample_of(warehouse: Warehouse, symbol: str, day: date) -> pl.DataFrame:
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    return warehouse.sql(
        f"SELECT * FROM hourly_sample WHERE symbol = '{symbol}' "
        f"AND computed_at >= TIMESTAMPTZ '{start.isoformat()}' "
        f"AND computed_at < TIMESTAMPTZ '{(start + timedelta(days=1)).isoformat()}' "
        "ORDER BY computed_at, expiry"
    )


def test_a_rebuild_replaces_the_days_hourly_sample(warehouse: Warehouse) -> None:
    at = [BASE_TIME + timedelta(minutes=minutes) for minutes in (0, 30, 60)]  # 12:00, 12:30, 13:00
    other_day = BASE_TIME + timedelta(days=1)
    for instant in (*at, other_day):
        ingest_outcomes(warehouse, tick(instant))
    materialise_days(warehouse, [DAY, other_day.date()])
    # A sample that no longer describes the rows (as if written by older code).
    _execute(warehouse, "UPDATE hourly_sample SET atm_iv = -1.0")
    stale = {symbol: _sample_of(warehouse, symbol, DAY) for symbol in SUPPORTED_SYMBOLS}
    assert all(frame.height > 0 for frame in stale.values())
    other_day_sample = _sample_of(warehouse, "ETHUSDT", other_day.date())

    rebuild_day(warehouse, DAY, ["ETHUSDT", "SOLUSDT"])

    # The last snapshot of each hour, rows equal to the expiries rows they sample.
    picked = f"(TIMESTAMPTZ '{at[1].isoformat()}', TIMESTAMPTZ '{at[2].isoformat()}')"
    for symbol in ("ETHUSDT", "SOLUSDT"):
        rows = warehouse.sql(
            f"SELECT * FROM expiries WHERE symbol = '{symbol}' AND computed_at IN {picked} "
            "ORDER BY computed_at, expiry"
        )
        sample = _sample_of(warehouse, symbol, DAY)
        assert_frame_equal(sample.select(rows.columns), rows, check_exact=True)
    # Symbols and days not rebuilt keep their sample as it was.
    for symbol in ("BTCUSDT", "HYPEUSDT"):
        assert _sample_of(warehouse, symbol, DAY).equals(stale[symbol])
    assert _sample_of(warehouse, "ETHUSDT", other_day.date()).equals(other_day_sample)
