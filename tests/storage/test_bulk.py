"""Bulk ingest: quarantine, duplicates (in the input and in the archive), merging with live
ticks, idempotent re-import, equality with the live path, one transaction per day, and an
interrupted import finished by running it again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.bulk import FetchedBody, bulk_ingest
from storage.errors import NotInitialisedError
from storage.records import FetchMeta, RejectedValueError
from storage.writes import insert
from tests.storage.helpers import (
    BASE_TIME,
    KEY_COLUMNS,
    ORDER,
    body,
    count,
    duplicate_keys,
    fetched,
    open_local,
    outcome,
    tables,
)

DAY = BASE_TIME.date()


def minutes(
    start: int, stop: int, symbols: tuple[str, ...] = SUPPORTED_SYMBOLS
) -> list[FetchedBody]:
    return [
        fetched(symbol, BASE_TIME + timedelta(minutes=minute))
        for minute in range(start, stop)
        for symbol in symbols
    ]


def refetched(item: FetchedBody, minutes: int, raw: bytes | None = None) -> FetchedBody:
    """The same body (or ``raw``) fetched again ``minutes`` later: another fetch attempt."""
    shift = timedelta(minutes=minutes)
    fetch = replace(
        item.fetch,
        started_at=item.fetch.started_at + shift,
        finished_at=item.fetch.finished_at + shift,
    )
    return FetchedBody(fetch, item.raw if raw is None else raw)


def bad(symbol: str, minute: int, raw: bytes) -> FetchedBody:
    """A refused body fetched at a time no good body uses."""
    return refetched(fetched(symbol, BASE_TIME), minute + 30, raw)


def lake_snapshots(warehouse: Warehouse) -> int:
    """Commits the lake has seen (each transaction is one snapshot)."""
    return count(warehouse, "SELECT count(*) FROM ducklake_snapshots('lake')")


def test_refused_bodies_are_quarantined_with_their_reason_and_the_rest_land(
    warehouse: Warehouse,
) -> None:
    refused = [
        bad("BTCUSDT", 0, b"{not json"),
        bad("BTCUSDT", 1, body("BTCUSDT", BASE_TIME, **{"data.expiries.0.atm_iv": "12"})),
        bad("ETHUSDT", 0, body("ETHUSDT", BASE_TIME, **{"data.expiries.0.call_oi": -5.0})),
        bad("SOLUSDT", 0, body("BTCUSDT", BASE_TIME)),
    ]
    good = minutes(0, 3)
    report = bulk_ingest(warehouse, [*refused, *good])

    assert [o.status for o in report.outcomes] == ["quarantined"] * 4 + ["stored"] * 12
    kinds = [o.logged_as for o in report.outcomes[:4]]
    assert kinds == ["not_json", "schema_violation", "rejected_value", "rejected_value"]
    assert report.outcomes[1].field_path == "data.expiries[0].atm_iv"
    assert "meta.symbol" in (report.outcomes[3].reason or "")
    kept = {
        row["quarantine_id"]: row for row in warehouse.sql("SELECT * FROM quarantine").to_dicts()
    }
    assert len(kept) == 4
    for refusal, item in zip(report.outcomes[:4], refused, strict=True):
        assert refusal.quarantine_id is not None
        row = kept[refusal.quarantine_id]
        assert row["body"] == item.raw and row["symbol"] == item.fetch.symbol
        assert (row["kind"], row["reason"]) == (refusal.logged_as, refusal.reason)
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 12
    log = warehouse.sql("SELECT outcome, count(*) AS n FROM ingest_log GROUP BY 1 ORDER BY 1")
    assert dict(log.iter_rows()) == {
        "not_json": 1,
        "rejected_value": 2,
        "schema_violation": 1,
        "stored": 12,
    }
    logged_ids = warehouse.sql(
        "SELECT quarantine_id FROM ingest_log WHERE quarantine_id IS NOT NULL"
    )
    assert set(logged_ids["quarantine_id"]) == set(kept)
    assert [(day.symbol, day.quarantined) for day in report.days] == [
        ("BTCUSDT", 2),
        ("ETHUSDT", 1),
        ("HYPEUSDT", 0),
        ("SOLUSDT", 1),
    ]
    # Refused bodies are never archived.
    assert count(warehouse, "SELECT count(*) FROM responses") == 12


def test_refusals_of_one_attempt_keep_distinct_quarantine_ids(warehouse: Warehouse) -> None:
    first = bad("HYPEUSDT", 0, b"<html>one</html>")
    second = FetchedBody(first.fetch, b"<html>two</html>")
    report = bulk_ingest(warehouse, [first, second])
    ids = [o.quarantine_id for o in report.outcomes]
    assert ids[0] is not None and ids[1] == f"{ids[0]}-2"
    kept = warehouse.sql("SELECT quarantine_id, body FROM quarantine ORDER BY quarantine_id")
    assert kept.rows() == [(ids[0], first.raw), (ids[1], second.raw)]
    # One fetch attempt, one ingest-log row.
    assert count(warehouse, "SELECT count(*) FROM ingest_log") == 1


def test_a_body_for_an_unsupported_symbol_stops_the_import_before_anything_is_written(
    warehouse: Warehouse,
) -> None:
    stray = fetched("BTCUSDT", BASE_TIME)
    foreign = FetchedBody(
        FetchMeta("DOGEUSDT", 200, BASE_TIME, BASE_TIME, 1, stray.fetch.headers), stray.raw
    )
    with pytest.raises(RejectedValueError, match="DOGEUSDT"):
        bulk_ingest(warehouse, [stray, foreign])
    with pytest.raises(NotInitialisedError):  # not even the lake was created
        warehouse.connect()


def test_duplicates_in_the_input_and_in_the_archive_are_counted_and_logged(
    warehouse: Warehouse,
) -> None:
    ingest_outcomes(warehouse, {"BTCUSDT": outcome("BTCUSDT", BASE_TIME)})
    late_copy = refetched(fetched("BTCUSDT", BASE_TIME), minutes=5)
    second = fetched("BTCUSDT", BASE_TIME + timedelta(minutes=1))
    second_copy = refetched(second, minutes=5)
    report = bulk_ingest(warehouse, [late_copy, second, second_copy])
    assert [o.status for o in report.outcomes] == ["duplicate", "stored", "duplicate"]
    assert (report.days[0].stored, report.days[0].duplicates) == (1, 2)
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    assert count(warehouse, "SELECT count(*) FROM responses") == 2
    log = warehouse.sql("SELECT outcome, reason FROM ingest_log ORDER BY started_at")
    assert log.get_column("outcome").to_list() == ["stored", "stored", "duplicate", "duplicate"]
    assert "already archived" in log.item(2, "reason")


def test_a_refused_body_fixed_and_imported_again_replaces_its_refusal_in_the_log(
    warehouse: Warehouse,
) -> None:
    # The same captured attempt, first with a spot price of 0 (refused), then corrected: the
    # attempt is logged once, as stored, so its minute is no longer a gap.
    refused = fetched("BTCUSDT", BASE_TIME, body("BTCUSDT", BASE_TIME, **{"meta.spot_price": 0.0}))
    assert bulk_ingest(warehouse, [refused]).count("quarantined") == 1
    fixed = fetched("BTCUSDT", BASE_TIME)
    assert fixed.fetch.started_at == refused.fetch.started_at
    assert bulk_ingest(warehouse, [fixed]).count("stored") == 1

    log = warehouse.sql("SELECT outcome, computed_at FROM ingest_log").rows()
    assert log == [("stored", BASE_TIME)]
    since = BASE_TIME.replace(second=0)
    until = since + timedelta(minutes=1)
    gaps = warehouse.sql(
        f"SELECT * FROM ingest_gaps_between(TIMESTAMPTZ '{since.isoformat()}', "
        f"TIMESTAMPTZ '{until.isoformat()}') WHERE symbol = 'BTCUSDT'"
    )
    assert gaps.is_empty()
    assert count(warehouse, "SELECT count(*) FROM quarantine") == 1  # the refused body is kept
    # Importing the corrected body once more changes nothing.
    assert bulk_ingest(warehouse, [fixed]).count("duplicate") == 1
    assert warehouse.sql("SELECT outcome FROM ingest_log").rows() == [("stored",)]


def test_an_import_merges_with_the_archive_of_live_ticks_and_a_rebuilt_day(
    warehouse: Warehouse,
) -> None:
    for minute in range(3):
        ingest_outcomes(
            warehouse, {"BTCUSDT": outcome("BTCUSDT", BASE_TIME + timedelta(minutes=minute))}
        )
    rebuild_day(warehouse, DAY, ["BTCUSDT"])
    for minute in range(3, 5):
        ingest_outcomes(
            warehouse, {"BTCUSDT": outcome("BTCUSDT", BASE_TIME + timedelta(minutes=minute))}
        )

    report = bulk_ingest(warehouse, minutes(0, 8, ("BTCUSDT",)))

    # Minutes 0-4 are archived with this very fetch: duplicates, logged as the stored attempt.
    assert [o.status for o in report.outcomes] == ["duplicate"] * 5 + ["stored"] * 3
    assert [o.logged_as for o in report.outcomes] == ["stored"] * 8
    assert all(o.reason is None for o in report.outcomes)
    expected = [BASE_TIME + timedelta(minutes=minute) for minute in range(8)]
    for name in ("snapshots", "responses"):
        stored = warehouse.sql(f"SELECT computed_at FROM {name} ORDER BY 1")
        assert stored.get_column("computed_at").to_list() == expected, name
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    # Live attempts keep their rows; the imported copies of minutes 0-4 are the same attempts.
    log = warehouse.sql("SELECT outcome, count(*) AS n FROM ingest_log GROUP BY 1")
    assert log.rows() == [("stored", 8)]


def test_the_same_import_twice_changes_no_table(warehouse: Warehouse) -> None:
    bodies = [*minutes(0, 4), bad("ETHUSDT", 0, b"{truncated"), bad("SOLUSDT", 1, b"[]")]
    bulk_ingest(warehouse, bodies)
    first = tables(warehouse)
    commits = lake_snapshots(warehouse)
    report = bulk_ingest(warehouse, bodies)
    assert report.count("duplicate") == 16 and report.count("stored") == 0
    assert report.count("quarantined") == 2  # refused again, but kept once
    for name, frame in tables(warehouse).items():
        assert_frame_equal(frame, first[name], check_exact=True)
    assert first["quarantine"].height == 2 and first["ingest_log"].height == 18
    assert lake_snapshots(warehouse) == commits  # nothing to commit, no snapshot


def test_bulk_gives_the_tables_of_the_live_path_then_a_rebuild(tmp_path: Path) -> None:
    live = open_local(tmp_path / "live")
    bulk = open_local(tmp_path / "bulk")
    for minute in range(6):
        at = BASE_TIME + timedelta(minutes=minute)
        ingest_outcomes(live, {symbol: outcome(symbol, at) for symbol in SUPPORTED_SYMBOLS})
    rebuild_day(live, DAY)
    bulk_ingest(bulk, minutes(0, 6))
    # The live lake's day was rebuilt, so it also holds an hourly sample: compare the view.
    compared = tuple(name for name in ORDER if name != "hourly_sample")
    expected, got = tables(live, compared), tables(bulk, compared)
    for name in compared:
        assert_frame_equal(got[name], expected[name], check_exact=True)
    for view in ("latest_term_structure", "expiries_hourly"):
        query = f"SELECT * FROM {view} ORDER BY ALL"
        assert_frame_equal(bulk.sql(query), live.sql(query), check_exact=True)
    live.close()
    bulk.close()


def test_a_body_is_filed_under_the_day_of_its_own_computed_at(warehouse: Warehouse) -> None:
    document = orjson.loads(body("BTCUSDT", BASE_TIME))
    document["meta"]["extra"] = {"computed_at": "2026-01-01T00:00:00Z"}
    raw = orjson.dumps(document)
    report = bulk_ingest(warehouse, [fetched("BTCUSDT", BASE_TIME, raw)])
    assert [o.status for o in report.outcomes] == ["stored"]
    assert [(day.symbol, day.day, day.stored) for day in report.days] == [("BTCUSDT", DAY, 1)]
    stored = warehouse.sql("SELECT computed_at FROM responses")
    assert stored["computed_at"].to_list() == [BASE_TIME]
    assert count(warehouse, "SELECT count(*) FROM ingest_log") == 1


def _two_days() -> list[FetchedBody]:
    next_day = BASE_TIME + timedelta(days=1)
    return [
        *minutes(0, 2, ("ETHUSDT",)),
        *[fetched("ETHUSDT", next_day + timedelta(minutes=m)) for m in range(2)],
    ]


def test_each_day_is_one_transaction(warehouse: Warehouse) -> None:
    warehouse.initialise()
    commits = lake_snapshots(warehouse)
    bulk_ingest(warehouse, _two_days())
    assert lake_snapshots(warehouse) == commits + 2


def test_an_import_stopped_part_way_keeps_its_committed_days_and_is_finished_by_running_it_again(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _two_days()
    second_day = (BASE_TIME + timedelta(days=1)).date()

    def failing_in_the_second_day(
        connection: duckdb.DuckDBPyConnection,
        name: str,
        frame: pl.DataFrame,
        *,
        as_published: bool = False,
    ) -> int:
        rows = insert(connection, name, frame, as_published=as_published)
        if name == "ingest_log" and frame.item(0, "started_at").date() == second_day:
            raise OSError("simulated crash before the commit")
        return rows

    with monkeypatch.context() as patch:
        patch.setattr("storage.landing.insert", failing_in_the_second_day)
        with pytest.raises(OSError, match="simulated"):
            bulk_ingest(warehouse, bodies)
    stored = warehouse.sql("SELECT computed_at FROM snapshots ORDER BY 1")["computed_at"]
    assert [at.date() for at in stored] == [DAY, DAY]
    assert count(warehouse, "SELECT count(*) FROM ingest_log") == 2

    report = bulk_ingest(warehouse, bodies)
    assert [o.status for o in report.outcomes] == ["duplicate"] * 2 + ["stored"] * 2
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 4
    log = warehouse.sql("SELECT outcome, count(*) AS n FROM ingest_log GROUP BY 1")
    assert log.rows() == [("stored", 4)]
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
