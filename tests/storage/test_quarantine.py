"""Quarantine keeps every refused body byte for byte next to its reason, names it by an id the
ingest log points at, and never takes one body for another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import Warehouse, ingest_outcomes
from storage.bulk import FetchedBody, bulk_ingest
from storage.quarantine import Refusal, quarantine_frame
from storage.schemas import QUARANTINE_SCHEMA
from tests.storage.helpers import BASE_TIME, body, count, fetched, outcome, tick

AT = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)
RAW = b"{truncated \xff\x00 not utf-8"


def _refusal(raw: bytes = RAW, suffix: str = "") -> Refusal:
    return Refusal(
        symbol="SOLUSDT",
        received_at=AT,
        raw=raw,
        kind="not_json",
        reason="response body is not valid JSON",
        field_path=None,
        http_status=200,
        request_id="req_1",
        suffix=suffix,
    )


def test_a_refusal_becomes_a_row_with_its_body_and_a_readable_id() -> None:
    first, second = _refusal(), _refusal(b"<html>", suffix="-2")
    assert first.quarantine_id == "SOLUSDT/20260302T120005.000000Z-not_json"
    assert second.quarantine_id == f"{first.quarantine_id}-2"
    frame = quarantine_frame([first, second])
    assert frame.schema == QUARANTINE_SCHEMA
    assert frame["body"].to_list() == [RAW, b"<html>"]
    assert frame.row(0, named=True) | {"body": None} == {
        "quarantine_id": first.quarantine_id,
        "symbol": "SOLUSDT",
        "received_at": AT,
        "kind": "not_json",
        "reason": "response body is not valid JSON",
        "field_path": None,
        "http_status": 200,
        "request_id": "req_1",
        "body": None,
    }


def _same_fetch(raw: bytes) -> FetchedBody:
    return FetchedBody(fetched("SOLUSDT", BASE_TIME).fetch, raw)


def test_different_bodies_refused_for_the_same_fetch_both_stay(warehouse: Warehouse) -> None:
    first = bulk_ingest(warehouse, [_same_fetch(RAW)]).outcomes[0]
    second = bulk_ingest(warehouse, [_same_fetch(b"<html>")]).outcomes[0]
    assert first.quarantine_id and second.quarantine_id == f"{first.quarantine_id}-2"
    kept = warehouse.sql("SELECT quarantine_id, body FROM quarantine ORDER BY 1").rows()
    assert kept == [(first.quarantine_id, RAW), (second.quarantine_id, b"<html>")]


def test_the_same_body_again_is_kept_once(warehouse: Warehouse) -> None:
    ids = {bulk_ingest(warehouse, [_same_fetch(RAW)]).outcomes[0].quarantine_id for _ in range(2)}
    assert len(ids) == 1
    assert count(warehouse, "SELECT count(*) FROM quarantine") == 1
    assert count(warehouse, "SELECT count(*) FROM ingest_log") == 1


def test_every_quarantine_id_in_the_log_names_its_row(warehouse: Warehouse) -> None:
    for minute in range(3):
        at = BASE_TIME + timedelta(minutes=minute)
        refused = body("HYPEUSDT", at, **{"data.expiries.1.put_oi": -1.0})
        ingest_outcomes(
            warehouse, tick(at, ("BTCUSDT",)) | {"HYPEUSDT": outcome("HYPEUSDT", at, refused)}
        )
    joined = warehouse.sql(
        "SELECT l.symbol = q.symbol AS same_symbol, l.outcome = q.kind AS same_kind, "
        "l.reason = q.reason AS same_reason, q.body "
        "FROM ingest_log AS l JOIN quarantine AS q USING (quarantine_id)"
    )
    assert joined.height == 3 == count(warehouse, "SELECT count(*) FROM quarantine")
    assert joined.select("same_symbol", "same_kind", "same_reason").to_numpy().all()
    assert len(set(joined["body"])) == 3
