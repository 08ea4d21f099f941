"""Response → frames: explicit schemas, derived columns, and refusal of absurd or unsafe values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import polars as pl
import pytest

from backquant.expiry_calendar import (
    SECONDS_PER_YEAR,
    classify,
    settlement_instant,
    years_to_expiry,
)
from backquant.headers import ResponseHeaders
from backquant.simulator.market import Market
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import ParsedSummary, parse_expiry_summary
from storage.normalise import normalise, normalise_batch, normalise_many
from storage.records import (
    FetchMeta,
    IngestLogEntry,
    RejectedValueError,
    SummaryFrames,
    ingest_log_frame,
    parse_instant,
)
from storage.schemas import (
    EXPIRIES_SCHEMA,
    INGEST_LOG_SCHEMA,
    SNAPSHOTS_SCHEMA,
    UTC_US,
    VENUE_OI_SCHEMA,
    create_table_sql,
    utc_series,
)
from tests.storage.helpers import BASE_TIME, body
from tests.support.bodies import summary_document


def _fetch(symbol: str = "BTCUSDT") -> FetchMeta:
    started = BASE_TIME + timedelta(seconds=3)
    return FetchMeta(
        symbol,
        200,
        started,
        started + timedelta(milliseconds=250),
        2,
        ResponseHeaders(quota_remaining=1000, request_id="req_h"),
    )


def test_frames_follow_their_schemas_and_derive_time_to_expiry() -> None:
    frames = normalise(parse_expiry_summary(body("BTCUSDT", BASE_TIME)), _fetch())
    assert frames.snapshots.schema == SNAPSHOTS_SCHEMA
    assert frames.expiries.schema == EXPIRIES_SCHEMA
    assert frames.venue_oi.schema == VENUE_OI_SCHEMA
    snapshot = frames.snapshots.row(0, named=True)
    assert snapshot["computed_at"] == BASE_TIME
    assert snapshot["latency_s"] == pytest.approx(0.25)
    assert snapshot["attempts"] == 2 and snapshot["quota_remaining"] == 1000
    assert snapshot["expiry_count"] == frames.expiries.height
    for row in frames.expiries.iter_rows(named=True):
        assert row["expiry_at"].hour == 8 and row["expiry_at"].tzinfo is not None
        expected = (row["expiry_at"] - BASE_TIME).total_seconds() / SECONDS_PER_YEAR
        assert row["years_to_expiry"] == pytest.approx(expected)
        assert row["max_pain_strike"] == 98_000.0
    # Eight zero-filled venues per expiry, no unattributed remainder in these bodies.
    assert frames.venue_oi.height == 8 * frames.expiries.height


def test_unattributed_remainder_becomes_a_venue_row() -> None:
    document = summary_document("ETHUSDT", computed_at=BASE_TIME)
    document["data"]["expiries"][0]["by_venue_unattributed"] = {
        "call_oi": 1.0,
        "put_oi": 2.0,
        "total_oi": 3.0,
        "notional_oi_usd": None,
    }
    frames = normalise(parse_expiry_summary(orjson.dumps(document)), _fetch("ETHUSDT"))
    remainder = frames.venue_oi.filter(frames.venue_oi["is_unattributed"])
    assert remainder.height == 1 and remainder.item(0, "total_oi") == 3.0


def test_normalising_twice_gives_identical_frames() -> None:
    raw = body("SOLUSDT", BASE_TIME)
    first = normalise(parse_expiry_summary(raw), _fetch("SOLUSDT"))
    second = normalise(parse_expiry_summary(raw), _fetch("SOLUSDT"))
    for name, frame in first.as_tables().items():
        assert frame.equals(second.as_tables()[name])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data.expiries.0.call_oi": -5.0}, "data.expiries[0].call_oi"),
        ({"data.expiries.1.atm_iv": 1500.0}, "data.expiries[1].atm_iv"),
        ({"data.expiries.0.expiry": "../../etc"}, "data.expiries[0].expiry"),
        ({"data.expiries.0.expiry": "28MAR25/x"}, "data.expiries[0].expiry"),
        ({"meta.symbol": "ETHUSDT"}, "meta.symbol"),
        ({"meta.computed_at": None}, "meta.computed_at"),
        ({"meta.spot_price": -1.0}, "meta.spot_price"),
        ({"data.expiries.0.by_venue.deribit.put_oi": -1.0}, "data.expiries[0].by_venue"),
        # The contract's integer has no bound; the dte column is 32-bit (and polars 64-bit).
        ({"data.expiries.1.dte": 2**40}, "data.expiries[1].dte"),
        ({"data.expiries.0.dte": 2**64 - 1}, "data.expiries[0].dte"),
    ],
)
def test_absurd_or_unsafe_values_are_rejected_with_their_field(
    change: dict[str, object], field: str
) -> None:
    raw = body("BTCUSDT", BASE_TIME, **change)
    with pytest.raises(RejectedValueError) as caught:
        normalise(parse_expiry_summary(raw), _fetch())
    assert caught.value.field_path.startswith(field)
    assert field.split("[")[0] in str(caught.value)


def test_a_symbol_outside_the_four_is_refused() -> None:
    raw = body("BTCUSDT", BASE_TIME, **{"meta.symbol": None})
    with pytest.raises(RejectedValueError, match="not one of"):
        normalise(parse_expiry_summary(raw), _fetch("../BTCUSDT"))


def test_naive_and_offset_times_are_read_as_utc() -> None:
    raw = body("BTCUSDT", BASE_TIME, **{"meta.computed_at": "2026-03-02T13:00:30+01:00"})
    frames = normalise(parse_expiry_summary(raw), _fetch())
    assert frames.snapshots.item(0, "computed_at") == datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)


def test_instants_keep_every_microsecond_in_frames() -> None:
    # Instants enter polars as epoch microseconds (utc_micros): the stored values must be the
    # very instants, before 1970 and with a sub-millisecond part too.
    finished = datetime(2026, 3, 2, 23, 59, 59, 999_999, tzinfo=UTC)
    instants = [finished, datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC), None]
    series = utc_series("at", instants)
    assert series.dtype == UTC_US and series.to_list() == instants
    started = finished - timedelta(microseconds=180_001)
    entry = IngestLogEntry(
        symbol="BTCUSDT",
        started_at=started,
        finished_at=finished,
        outcome="stored",
        reason=None,
        http_status=200,
        request_id=None,
        attempts=2,
        computed_at=None,
        quarantine_id="BTCUSDT/20260302T235959.999999Z-not_json",
    )
    frame = ingest_log_frame([entry])
    assert frame.schema == INGEST_LOG_SCHEMA
    row = frame.row(0, named=True)
    assert (row["started_at"], row["finished_at"], row["computed_at"]) == (started, finished, None)
    assert row["latency_s"] == 0.180001 and row["retries"] == 1
    assert row["quarantine_id"] == entry.quarantine_id


def test_fetch_metadata_survives_its_json_form() -> None:
    fetch = _fetch("HYPEUSDT")
    assert FetchMeta.from_json_dict(orjson.loads(orjson.dumps(fetch.to_json_dict()))) == fetch
    naive = {**fetch.to_json_dict(), "started_at": "2026-03-02T12:00:33"}
    assert FetchMeta.from_json_dict(naive).started_at == datetime(2026, 3, 2, 12, 0, 33, tzinfo=UTC)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("snapshots", "source VARCHAR[]"),
        ("expiries", "expiry_at TIMESTAMPTZ"),
        ("responses", "body BLOB"),
        ("quarantine", "http_status INTEGER"),
        ("ingest_log", "quarantine_id VARCHAR"),
    ],
)
def test_lake_tables_are_created_with_the_frames_column_types(table: str, expected: str) -> None:
    assert expected in create_table_sql(table)


def _simulated(count: int) -> list[tuple[ParsedSummary, FetchMeta]]:
    market = Market(seed=5)
    items = []
    for step in range(count):
        symbol = SUPPORTED_SYMBOLS[step % len(SUPPORTED_SYMBOLS)]
        at = BASE_TIME + timedelta(minutes=53 * step)
        items.append(
            (parse_expiry_summary(market.expiry_summary_bytes(symbol, at)), _fetch(symbol))
        )
    return items


def test_a_batch_equals_its_responses_normalised_one_by_one() -> None:
    items = _simulated(24)
    batch = normalise_many(items)
    singles = [normalise(parsed, fetch) for parsed, fetch in items]
    for name, frame in batch.as_tables().items():
        expected = pl.concat([single.as_tables()[name] for single in singles])
        assert frame.equals(expected), name
    assert batch.venue_oi.height == sum(
        len(row.get("by_venue") or {}) + (row.get("by_venue_unattributed") is not None)
        for parsed, _ in items
        for row in parsed.response.data.expiries
    )


def test_columns_match_the_body_and_the_calendar_functions_exactly() -> None:
    items = _simulated(8)
    frames = normalise_many(items)
    rows = frames.expiries.iter_rows(named=True)
    for parsed, _ in items:
        computed_at = parse_instant(parsed.response.meta.computed_at or "", "computed_at")
        for position, source in enumerate(parsed.response.data.expiries):
            row = next(rows)
            assert (row["expiry"], row["position"], row["atm_iv"]) == (
                source["expiry"],
                position,
                source.get("atm_iv"),
            )
            expiry_date = date.fromisoformat(source.get("expiry_date") or "")
            assert row["expiry_date"] == expiry_date
            assert row["expiry_at"] == settlement_instant(expiry_date)
            # Bit-identical, not approximately equal: rebuilds must reproduce ingest's rows.
            assert row["years_to_expiry"] == years_to_expiry(row["expiry_at"], computed_at)
            assert row["calendar_type"] == classify(source["expiry"]).type
            pain = source.get("max_pain")
            assert row["max_pain_strike"] == (pain["strike"] if pain else None)


def test_time_to_expiry_is_bit_identical_for_any_microsecond_of_computed_at() -> None:
    offsets = [0, 1, 999_999, 123_457, 500_000, 86_399_999_999]
    instants = [BASE_TIME + timedelta(microseconds=offset) for offset in offsets]
    items = [(parse_expiry_summary(body("BTCUSDT", instant)), _fetch()) for instant in instants]
    frames = normalise_many(items)
    for row in frames.expiries.iter_rows(named=True):
        expected = years_to_expiry(row["expiry_at"], row["computed_at"])
        assert row["years_to_expiry"] == expected


def test_the_first_refusal_in_document_order_is_reported() -> None:
    good = (parse_expiry_summary(body("BTCUSDT", BASE_TIME)), _fetch())
    # Row 0 has an absurd value and row 1 an unsafe token: row 0 comes first.
    two_problems = body(
        "BTCUSDT",
        BASE_TIME + timedelta(minutes=1),
        **{"data.expiries.0.pcr": -1.0, "data.expiries.1.expiry": "../x"},
    )
    late_spot = body("BTCUSDT", BASE_TIME + timedelta(minutes=2), **{"meta.spot_price": 0.0})
    items = [
        good,
        (parse_expiry_summary(two_problems), _fetch()),
        (parse_expiry_summary(late_spot), _fetch()),
    ]
    with pytest.raises(RejectedValueError) as caught:
        normalise_many(items)
    assert caught.value.field_path == "data.expiries[0].pcr"
    with pytest.raises(RejectedValueError) as caught:
        normalise_many([good, items[2], items[1]])
    assert caught.value.field_path == "meta.spot_price"


def test_a_refused_venue_value_names_the_venue() -> None:
    raw = body("BTCUSDT", BASE_TIME, **{"data.expiries.1.by_venue.okx.total_oi": -2.0})
    with pytest.raises(RejectedValueError) as caught:
        normalise(parse_expiry_summary(raw), _fetch())
    assert caught.value.field_path == "data.expiries[1].by_venue.okx.total_oi"


def test_an_empty_batch_has_the_schemas() -> None:
    frames = normalise_many([])
    assert frames.snapshots.schema == SNAPSHOTS_SCHEMA and frames.snapshots.height == 0
    assert frames.expiries.schema == EXPIRIES_SCHEMA
    assert frames.venue_oi.schema == VENUE_OI_SCHEMA


def test_a_batch_equals_each_body_alone_and_a_refusal_costs_only_its_body() -> None:
    items = _simulated(4)
    frames, refused = normalise_batch(items)
    assert refused == {}
    alone = SummaryFrames.concat([normalise(parsed, fetch) for parsed, fetch in items])
    for name, frame in frames.as_tables().items():
        assert frame.equals(alone.as_tables()[name]), name
    bad = body("BTCUSDT", BASE_TIME, **{"data.expiries.0.put_oi": -3.0})
    mixed, refused = normalise_batch([items[0], (parse_expiry_summary(bad), _fetch()), items[1]])
    assert list(refused) == [1] and isinstance(refused[1], RejectedValueError)
    assert refused[1].field_path == "data.expiries[0].put_oi"
    kept = SummaryFrames.concat([normalise(*items[0]), normalise(*items[1])])
    for name, frame in mixed.as_tables().items():
        assert frame.equals(kept.as_tables()[name]), name
