"""Ingest ticks: raw archive, summary rows, ingest log, duplicates, partial failure, quarantine,
and one transaction per tick."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import duckdb
import orjson
import polars as pl
import pytest

from backquant.client import FetchOutcome
from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.errors import NotJSONError
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary
from storage import StorageError, Warehouse, ingest_once, ingest_outcomes
from storage.errors import CommitError
from storage.writes import insert
from tests.storage.helpers import (
    BASE_TIME,
    ORDER,
    SUMMARY_TABLES,
    body,
    count,
    duplicate_keys,
    outcome,
    table,
    tables,
    tick,
)
from tests.support.bodies import error_body
from tests.support.scripted_server import Reply, ScriptedBackQuant

SECRET = "bq_test_0123456789abcdef0123456789abcdef"


def _expected_rows(raws: list[bytes]) -> dict[str, int]:
    """Rows each summary table must get from these bodies: one snapshot per body, one expiry
    row per listed expiry, one venue row per venue entry (the unattributed one included)."""
    rows = [row for raw in raws for row in parse_expiry_summary(raw).response.data.expiries]
    venues = sum(
        len(row.get("by_venue") or {}) + (row.get("by_venue_unattributed") is not None)
        for row in rows
    )
    return {"snapshots": len(raws), "expiries": len(rows), "venue_oi": venues}


def test_a_tick_stores_every_symbol_and_logs_every_attempt(warehouse: Warehouse) -> None:
    outcomes = tick(BASE_TIME)
    report = ingest_outcomes(warehouse, outcomes)
    assert sorted(report.stored) == sorted(SUPPORTED_SYMBOLS)
    expected = _expected_rows([o.result.raw for o in outcomes.values() if o.result])
    assert expected["venue_oi"] > expected["expiries"] > expected["snapshots"] == 4
    for name, rows in expected.items():
        assert report.rows_written[name] == rows, name
        assert count(warehouse, f"SELECT count(*) FROM {name}") == rows, name
        per_symbol = warehouse.sql(f"SELECT symbol, count(*) AS n FROM {name} GROUP BY 1")
        assert per_symbol.height == 4 and per_symbol["n"].n_unique() == 1, name
    assert report.rows_written["ingest_log"] == 4
    assert set(table(warehouse, "snapshots")["computed_at"]) == {BASE_TIME}
    assert table(warehouse, "ingest_log")["outcome"].to_list() == ["stored"] * 4
    assert count(warehouse, "SELECT count(*) FROM responses") == 4
    assert count(warehouse, "SELECT count(*) FROM quarantine") == 0
    btc = report.symbol("BTCUSDT")
    assert btc.http_status == 200 and btc.request_id == "req_BTCUSDT" and btc.expiry_count == 4
    assert btc.as_dict()["computed_at"] == BASE_TIME.isoformat()


def _threads(connection: duckdb.DuckDBPyConnection) -> int:
    row = connection.execute("SELECT current_setting('threads')").fetchone()
    assert row is not None
    return int(row[0])


def test_a_tick_writes_on_one_thread_and_other_writers_get_every_core(
    warehouse: Warehouse,
) -> None:
    with warehouse.writer() as connection:
        every_core = _threads(connection)
    ingest_outcomes(warehouse, tick(BASE_TIME))
    with warehouse.writer(threads=1) as connection:
        assert _threads(connection) == 1
    with warehouse.writer() as connection:
        assert _threads(connection) == every_core
    with warehouse.writer(threads=1) as connection:
        assert _threads(connection) == 1
        connection.execute("SET threads = 3")  # a caller that changed it behind the handle's back
    with warehouse.writer() as connection:
        assert _threads(connection) == every_core


def test_the_archive_holds_the_body_verbatim_with_its_fetch(warehouse: Warehouse) -> None:
    # Key order and spacing a re-serialisation would change: the archive must not.
    raw = body("BTCUSDT", BASE_TIME).replace(b'"success":true', b'"success" :  true')
    assert raw != body("BTCUSDT", BASE_TIME)
    fetched = outcome("BTCUSDT", BASE_TIME, raw)
    ingest_outcomes(warehouse, {"BTCUSDT": fetched})
    (row,) = warehouse.sql("SELECT * FROM responses").to_dicts()
    assert row["body"] == raw
    assert (row["symbol"], row["computed_at"]) == ("BTCUSDT", BASE_TIME)
    fetch = orjson.loads(row["fetch_meta"])
    assert fetch["status"] == 200 and fetch["attempts"] == 1
    assert fetch["headers"]["request_id"] == "req_BTCUSDT"
    assert fetch["started_at"].startswith(fetched.started_at.isoformat()[:19])


def test_duplicates_are_logged_not_stored_and_reingest_is_idempotent(
    warehouse: Warehouse,
) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    before = tables(warehouse, (*SUMMARY_TABLES, "responses"))
    again = ingest_outcomes(
        warehouse, tick(BASE_TIME, started_at=BASE_TIME + timedelta(seconds=60))
    )
    assert again.duplicates_skipped == 4 and again.stored == ()
    assert {report.status for report in again.symbols} == {"duplicate"}
    assert again.rows_written == {"snapshots": 0, "expiries": 0, "venue_oi": 0, "ingest_log": 4}
    for name, frame in before.items():
        assert table(warehouse, name).equals(frame), name
    log = table(warehouse, "ingest_log")
    assert log["outcome"].value_counts().sort("outcome").rows() == [("duplicate", 4), ("stored", 4)]
    duplicates = log.filter(pl.col("outcome") == "duplicate")
    assert all("already archived" in reason for reason in duplicates["reason"])
    assert set(duplicates["computed_at"]) == {BASE_TIME}
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)


def test_a_symbol_not_refreshed_while_another_was_is_a_duplicate(warehouse: Warehouse) -> None:
    # BackQuant refreshed BTCUSDT but still serves ETHUSDT's summary of the minute before: the
    # lookup must span every symbol's instant, not only the first symbol's.
    ingest_outcomes(warehouse, tick(BASE_TIME, ("ETHUSDT",)))
    later = BASE_TIME + timedelta(minutes=1)
    report = ingest_outcomes(
        warehouse,
        {
            "BTCUSDT": outcome("BTCUSDT", later),
            "ETHUSDT": outcome("ETHUSDT", BASE_TIME, started_at=later + timedelta(seconds=5)),
        },
    )
    assert {s.symbol: s.status for s in report.symbols} == {
        "BTCUSDT": "stored",
        "ETHUSDT": "duplicate",
    }
    assert count(warehouse, "SELECT count(*) FROM responses WHERE symbol = 'ETHUSDT'") == 1
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)


def test_latest_term_structure_shows_only_the_newest_snapshot(warehouse: Warehouse) -> None:
    later = BASE_TIME + timedelta(minutes=1)
    ingest_outcomes(warehouse, tick(later))
    ingest_outcomes(warehouse, tick(BASE_TIME))  # a late, older response must not win
    latest = warehouse.sql("SELECT DISTINCT symbol, computed_at FROM latest_term_structure")
    assert latest.height == 4 and set(latest["computed_at"]) == {later}


def test_latest_term_structure_keeps_a_symbol_that_stopped_days_ago(warehouse: Warehouse) -> None:
    # HYPEUSDT's newest snapshot is three days older than the others': the view's
    # one-day window must not hide it.
    stopped = BASE_TIME - timedelta(days=3)
    ingest_outcomes(warehouse, tick(stopped - timedelta(minutes=1), ("HYPEUSDT",)))
    ingest_outcomes(warehouse, tick(stopped, ("HYPEUSDT",)))
    ingest_outcomes(warehouse, tick(BASE_TIME, ("BTCUSDT", "ETHUSDT", "SOLUSDT")))
    latest = warehouse.sql(
        "SELECT symbol, min(computed_at) AS first, max(computed_at) AS last, count(*) AS rows "
        "FROM latest_term_structure GROUP BY symbol ORDER BY symbol"
    )
    newest = dict(zip(latest["symbol"], latest["last"], strict=True))
    assert newest == {
        "BTCUSDT": BASE_TIME,
        "ETHUSDT": BASE_TIME,
        "HYPEUSDT": stopped,
        "SOLUSDT": BASE_TIME,
    }
    assert latest["first"].to_list() == latest["last"].to_list()
    instants = f"'{BASE_TIME.isoformat()}', '{stopped.isoformat()}'"
    counts = warehouse.sql(
        f"SELECT symbol, count(*) AS n FROM expiries WHERE computed_at IN ({instants}) "
        "GROUP BY symbol ORDER BY symbol"
    )
    assert latest["rows"].to_list() == counts["n"].to_list()


def test_latest_term_structure_filters_the_catalog_on_computed_at_only(
    warehouse: Warehouse,
) -> None:
    # Each column DuckLake filters a file list on is one more read of the catalog's whole
    # file-statistics table (SQLite scanner): the view must not push the symbols down too.
    ingest_outcomes(warehouse, tick(BASE_TIME))
    connection = warehouse.connect()
    try:
        connection.execute("CALL enable_logging('DuckLakeMetadata')")
        connection.execute("SELECT * FROM latest_term_structure").fetchall()
        logged = connection.execute(
            "SELECT query FROM duckdb_logs_parsed('DuckLakeMetadata')"
        ).fetchall()
    finally:
        connection.close()
    filtered = [query for (query,) in logged if "_stats AS MATERIALIZED" in query]
    assert len(filtered) == 2  # snapshots and expiries, each bounded by computed_at
    assert all(query.count("_stats AS MATERIALIZED") == 1 for query in filtered), filtered


def test_rejected_values_are_quarantined_byte_for_byte_and_logged(warehouse: Warehouse) -> None:
    raw = body("ETHUSDT", BASE_TIME, **{"data.expiries.0.atm_iv": 5000.0})
    outcomes = tick(BASE_TIME, ("BTCUSDT",)) | {"ETHUSDT": outcome("ETHUSDT", BASE_TIME, raw)}
    report = ingest_outcomes(warehouse, outcomes)
    eth = report.symbol("ETHUSDT")
    assert eth.status == "rejected_value" and "atm_iv" in (eth.reason or "")
    assert report.quarantined == 1 and report.stored == ("BTCUSDT",)
    (kept,) = warehouse.sql("SELECT * FROM quarantine").to_dicts()
    assert kept["body"] == raw
    assert kept["quarantine_id"] == eth.quarantine_id
    assert (kept["symbol"], kept["kind"], kept["reason"]) == (
        "ETHUSDT",
        "rejected_value",
        eth.reason,
    )
    assert kept["field_path"] == "data.expiries[0].atm_iv"
    assert (kept["http_status"], kept["request_id"]) == (200, "req_ETHUSDT")
    log = warehouse.sql(
        "SELECT outcome, reason, quarantine_id FROM ingest_log WHERE symbol = 'ETHUSDT'"
    )
    assert log.rows() == [("rejected_value", eth.reason, eth.quarantine_id)]
    # A refused body is never archived and gives no rows.
    for name in (*SUMMARY_TABLES, "responses"):
        assert count(warehouse, f"SELECT count(*) FROM {name} WHERE symbol = 'ETHUSDT'") == 0
        assert count(warehouse, f"SELECT count(*) FROM {name} WHERE symbol = 'BTCUSDT'") > 0


def test_an_invalid_body_from_the_client_is_quarantined_byte_for_byte(
    warehouse: Warehouse,
) -> None:
    raw = b"<html>\x00gateway \xff timeout</html>"
    good = outcome("SOLUSDT", BASE_TIME)
    failed = FetchOutcome(
        "SOLUSDT",
        good.started_at,
        good.finished_at,
        error=NotJSONError("response body is not valid JSON", raw=raw, status=200),
    )
    report = ingest_outcomes(warehouse, tick(BASE_TIME, ("HYPEUSDT",)) | {"SOLUSDT": failed})
    sol = report.symbol("SOLUSDT")
    assert sol.status == "not_json" and sol.quarantine_id
    assert report.stored == ("HYPEUSDT",) and report.quarantined == 1
    (kept,) = warehouse.sql("SELECT quarantine_id, kind, reason, body FROM quarantine").rows()
    assert kept == (sol.quarantine_id, "not_json", sol.reason, raw)
    log = warehouse.sql("SELECT outcome, quarantine_id FROM ingest_log WHERE symbol = 'SOLUSDT'")
    assert log.rows() == [("not_json", sol.quarantine_id)]


def test_a_symbol_outside_the_four_never_reaches_a_table(warehouse: Warehouse) -> None:
    strays = {
        name: replace(outcome("BTCUSDT", BASE_TIME), symbol=name)
        for name in ("DOGEUSDT", "../BTCUSDT")
    }
    report = ingest_outcomes(warehouse, tick(BASE_TIME, ("ETHUSDT",)) | strays)
    assert report.stored == ("ETHUSDT",)
    for name in strays:
        stray = report.symbol(name)
        assert stray.status == "rejected_value" and "not one of" in (stray.reason or "")
    for name in ORDER:
        symbols = warehouse.sql(f"SELECT DISTINCT symbol FROM {name}")["symbol"].to_list()
        assert set(symbols) <= {"ETHUSDT"}, name


def _config(base_url: str) -> ClientConfig:
    fast = RetryPolicy(
        deadline_s=5, upstream_backoff_s=(), rate_limit_retries=0, transport_retries=0, jitter_s=0
    )
    return ClientConfig(base_url=base_url, api_key=ApiKey(SECRET), retry=fast)


FAILURES = {
    "rate_limited": Reply(
        429,
        error_body("RATE_LIMIT_EXCEEDED", "slow down"),
        {"X-Quota-Remaining": "900", "Retry-After": "0"},
    ),
    "upstream_error": Reply(503, error_body("UPSTREAM_ERROR", "redis down")),
    "not_found": Reply(404, error_body("NOT_FOUND", "No data for HYPEUSDT")),
    "not_json": Reply(200, b"<html>gateway</html>"),
    "schema_violation": Reply(
        200,
        b'{"success": true, "data": {"expiries": 3}, "meta": '
        b'{"version": "2.7", "timestamp": "2026-03-02T12:00:00Z"}}',
    ),
}
QUARANTINED_KINDS = ("not_json", "schema_violation")


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_one_symbol_failing_over_http_never_touches_the_other_three(
    warehouse: Warehouse, kind: str
) -> None:
    server = ScriptedBackQuant()
    for symbol in SUPPORTED_SYMBOLS:
        server.script(symbol, Reply(200, body(symbol, BASE_TIME)))
    server.script("HYPEUSDT", FAILURES[kind])
    with server.running() as running:
        report = ingest_once(warehouse, _config(running.base_url))
    assert sorted(report.stored) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    hype = report.symbol("HYPEUSDT")
    assert hype.status == kind and hype.reason
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 3
    assert count(warehouse, "SELECT count(*) FROM responses") == 3
    log = warehouse.sql(
        "SELECT outcome, reason, quarantine_id FROM ingest_log WHERE symbol='HYPEUSDT'"
    )
    assert log.item(0, "outcome") == kind and log.item(0, "reason") == hype.reason
    quarantined = warehouse.sql("SELECT quarantine_id, body FROM quarantine").rows()
    if kind in QUARANTINED_KINDS:
        assert quarantined == [(hype.quarantine_id, FAILURES[kind].body)]
        assert log.item(0, "quarantine_id") == hype.quarantine_id
    else:
        assert quarantined == [] and log.item(0, "quarantine_id") is None
    _assert_secret_nowhere(warehouse)


def _assert_secret_nowhere(warehouse: Warehouse) -> None:
    """Neither in any table's decoded values nor in any file's bytes (catalog included)."""
    for name in ORDER:
        assert SECRET not in repr(warehouse.sql(f"SELECT * FROM {name}").to_dicts()), name
    for path in warehouse.home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


class InterruptedTickError(RuntimeError):
    pass


def _fail_on(table_name: str, error: Exception, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the tick's insert into ``table_name`` fail after its rows went in (inside the
    tick's transaction); returns the tables whose rows went in, in order."""
    written: list[str] = []

    def insert_then_fail(
        connection: duckdb.DuckDBPyConnection,
        name: str,
        frame: pl.DataFrame,
        *,
        as_published: bool = False,
    ) -> int:
        rows = insert(connection, name, frame, as_published=as_published)
        written.append(name)
        if name == table_name:
            raise error
        return rows

    monkeypatch.setattr("storage.landing.insert", insert_then_fail)
    return written


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (InterruptedTickError("process interrupted mid-tick"), InterruptedTickError),
        (duckdb.TransactionException("conflict on the catalog"), CommitError),
    ],
    ids=["interrupted", "database-error"],
)
def test_a_tick_failing_mid_transaction_leaves_nothing_and_the_next_tick_works(
    warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    raised: type[Exception],
) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME - timedelta(minutes=1)))
    before = tables(warehouse, tuple(ORDER))
    refused = outcome("SOLUSDT", BASE_TIME, body("SOLUSDT", BASE_TIME, **{"meta.spot_price": -1.0}))
    failing_tick = tick(BASE_TIME, ("BTCUSDT", "ETHUSDT", "HYPEUSDT")) | {"SOLUSDT": refused}
    with monkeypatch.context() as patched:
        written = _fail_on("ingest_log", error, patched)
        with pytest.raises(raised) as caught:
            ingest_outcomes(warehouse, failing_tick)
    # Every table of the tick had its rows in before the failure; none of them is visible.
    assert written == ["responses", *SUMMARY_TABLES, "quarantine", "ingest_log"]
    if isinstance(caught.value, StorageError):
        assert "nothing was committed" in str(caught.value)
    for name, frame in tables(warehouse, tuple(ORDER)).items():
        assert frame.equals(before[name]), name

    report = ingest_outcomes(warehouse, failing_tick)
    assert sorted(report.stored) == ["BTCUSDT", "ETHUSDT", "HYPEUSDT"]
    assert report.duplicates_skipped == 0 and report.quarantined == 1
    assert count(warehouse, "SELECT count(*) FROM snapshots") == 4 + 3
    assert count(warehouse, "SELECT count(*) FROM ingest_log") == 4 + 4
    assert count(warehouse, "SELECT count(*) FROM quarantine") == 1
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)
