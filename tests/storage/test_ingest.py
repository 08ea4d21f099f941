"""Ingest ticks: archive first, hot files, ingest log, duplicates, partial failure, quarantine."""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_once, ingest_outcomes
from tests.storage.helpers import BASE_TIME, body, duplicate_keys, outcome, table, tick
from tests.support.bodies import error_body
from tests.support.scripted_server import Reply, ScriptedBackQuant

SECRET = "bq_test_0123456789abcdef0123456789abcdef"


def test_a_tick_stores_every_symbol_and_logs_every_attempt(warehouse: Warehouse) -> None:
    report = ingest_outcomes(warehouse, tick(BASE_TIME))
    assert sorted(report.stored) == sorted(SUPPORTED_SYMBOLS)
    assert report.rows_written["snapshots"] == 4 and report.rows_written["ingest_log"] == 4
    snapshots = table(warehouse, "snapshots")
    assert snapshots.height == 4
    assert set(snapshots["computed_at"]) == {BASE_TIME}
    expiries = table(warehouse, "expiries")
    assert expiries.height == report.rows_written["expiries"]
    log = table(warehouse, "ingest_log")
    assert log["outcome"].to_list() == ["stored"] * 4
    btc = report.symbol("BTCUSDT")
    assert btc.http_status == 200 and btc.request_id == "req_BTCUSDT" and btc.expiry_count == 4
    assert btc.as_dict()["computed_at"] == BASE_TIME.isoformat()


def test_the_archive_holds_the_body_verbatim(warehouse: Warehouse) -> None:
    raw = body("BTCUSDT", BASE_TIME)
    ingest_outcomes(warehouse, {"BTCUSDT": outcome("BTCUSDT", BASE_TIME, raw)})
    (record,) = (warehouse.home / "archive" / "BTCUSDT" / "2026-03-02").glob("*.rec.gz")
    header, _, archived = gzip.decompress(record.read_bytes()).partition(b"\n")
    assert archived == raw
    assert orjson.loads(header)["fetch"]["status"] == 200


def test_duplicates_are_counted_not_stored_and_reingest_is_idempotent(warehouse: Warehouse) -> None:
    ingest_outcomes(warehouse, tick(BASE_TIME))
    before = {name: table(warehouse, name) for name in ("snapshots", "expiries", "venue_oi")}
    again = ingest_outcomes(
        warehouse, tick(BASE_TIME, started_at=BASE_TIME + timedelta(seconds=60))
    )
    assert again.duplicates_skipped == 4 and again.stored == ()
    assert {report.status for report in again.symbols} == {"duplicate"}
    for name, frame in before.items():
        assert table(warehouse, name).equals(frame)
    log = table(warehouse, "ingest_log")
    assert log["outcome"].value_counts().sort("outcome").rows() == [("duplicate", 4), ("stored", 4)]
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)


def test_latest_term_structure_shows_only_the_newest_snapshot(warehouse: Warehouse) -> None:
    later = BASE_TIME + timedelta(minutes=1)
    ingest_outcomes(warehouse, tick(later))
    ingest_outcomes(warehouse, tick(BASE_TIME))  # a late, older response must not win
    latest = warehouse.sql("SELECT DISTINCT symbol, computed_at FROM latest_term_structure")
    assert latest.height == 4 and set(latest["computed_at"]) == {later}


def test_rejected_values_are_quarantined_and_logged(warehouse: Warehouse) -> None:
    raw = body("ETHUSDT", BASE_TIME, **{"data.expiries.0.atm_iv": 5000.0})
    outcomes = tick(BASE_TIME, ("BTCUSDT",)) | {"ETHUSDT": outcome("ETHUSDT", BASE_TIME, raw)}
    report = ingest_outcomes(warehouse, outcomes)
    eth = report.symbol("ETHUSDT")
    assert eth.status == "rejected_value" and "atm_iv" in (eth.reason or "")
    kept = Path(eth.quarantine_file or "")
    assert kept.read_bytes() == raw
    reason = orjson.loads(kept.with_suffix(".json").read_bytes())
    assert reason["field_path"] == "data.expiries[0].atm_iv"
    assert report.quarantined == 1 and report.stored == ("BTCUSDT",)
    assert not (warehouse.home / "archive" / "ETHUSDT").exists()
    log = warehouse.sql("SELECT outcome, quarantine_file FROM ingest_log WHERE symbol = 'ETHUSDT'")
    assert log.rows() == [("rejected_value", str(kept))]


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
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 3
    log = warehouse.sql(
        "SELECT outcome, reason, http_status FROM ingest_log WHERE symbol='HYPEUSDT'"
    )
    assert log.item(0, "outcome") == kind and log.item(0, "reason") == hype.reason
    quarantined = list((warehouse.home / "quarantine").rglob("*.body"))
    assert len(quarantined) == (1 if kind in ("not_json", "schema_violation") else 0)
    for path in warehouse.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and SECRET.encode() not in gzip_or_none(data)


def gzip_or_none(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except OSError:
        return b""
