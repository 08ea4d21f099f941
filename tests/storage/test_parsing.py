"""The rebuild's batch parser agrees with parse_expiry_summary on every outcome."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from backquant.errors import InvalidResponseError
from backquant.simulator.market import Market
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import ParsedSummary, parse_expiry_summary
from storage.parsing import parse_summaries, parse_summary
from tests.storage.helpers import BASE_TIME, body
from tests.support.bodies import summary_document


def _expected(raw: bytes) -> ParsedSummary | InvalidResponseError:
    try:
        return parse_expiry_summary(raw)
    except InvalidResponseError as error:
        return error


def _assert_same(raw: bytes) -> None:
    expected = _expected(raw)
    got = parse_summary(raw)
    if isinstance(expected, InvalidResponseError):
        assert isinstance(got, InvalidResponseError)
        assert (type(got), got.kind, str(got)) == (type(expected), expected.kind, str(expected))
        assert getattr(got, "field_path", None) == getattr(expected, "field_path", None)
    else:
        assert isinstance(got, ParsedSummary)
        assert got == expected


def test_simulator_bodies_parse_exactly_as_at_ingest() -> None:
    market = Market(seed=11)
    raws = [
        market.expiry_summary_bytes(symbol, BASE_TIME + timedelta(minutes=37 * step))
        for symbol in SUPPORTED_SYMBOLS
        for step in range(10)
    ]
    outcomes = parse_summaries(raws)
    assert len(outcomes) == len(raws)
    for raw, outcome in zip(raws, outcomes, strict=True):
        assert outcome == parse_expiry_summary(raw)


def _with_drift() -> bytes:
    document = summary_document("BTCUSDT", computed_at=BASE_TIME)
    document["new_top"] = 1
    document["meta"]["new_meta"] = "x"
    document["meta"]["extra"] = {"free_form": {"nested": 1}}
    document["data"]["new_data"] = []
    document["data"]["type_counts"]["yearly"] = 0
    row = document["data"]["expiries"][0]
    row["gamma_flip"] = 1.0
    row["max_pain"] = {"strike": 1.0, "value": 2.0, "pain_curve": []}
    row["by_venue"]["newdex"] = {"call_oi": 1.0, "put_oi": 1.0, "total_oi": 2.0, "extra_oi": 0}
    row["by_venue_unattributed"] = {"call_oi": 0.0, "put_oi": 0.0, "total_oi": 0.0, "x": 1}
    return orjson.dumps(document)


def test_drift_at_every_level_matches_find_drift() -> None:
    raw = _with_drift()
    parsed = parse_summary(raw)
    assert isinstance(parsed, ParsedSummary)
    assert "data.expiries[].by_venue.newdex" in parsed.drift
    assert "data.expiries[].by_venue.*.extra_oi" in parsed.drift
    assert "meta.extra" not in " ".join(parsed.drift)
    _assert_same(raw)


def test_iv_fraction_warning_matches() -> None:
    document = summary_document("ETHUSDT", computed_at=BASE_TIME)
    for row in document["data"]["expiries"]:
        row["atm_iv"] = 0.55
    _assert_same(orjson.dumps(document))


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"data": {}, "meta": {}}',
        orjson.dumps({**summary_document("BTCUSDT", computed_at=BASE_TIME), "success": False}),
        body("BTCUSDT", BASE_TIME, **{"data.expiries.0.atm_iv": "12"}),
        body("BTCUSDT", BASE_TIME, **{"data.expiries.1.type": "hourly"}),
        body("BTCUSDT", BASE_TIME, **{"meta.version": None}),
        body("BTCUSDT", BASE_TIME, **{"data.anchor_count": 1.5}),
    ],
    ids=[
        "not-json",
        "array",
        "no-success",
        "success-false",
        "string-iv",
        "bad-type",
        "no-version",
        "fractional-count",
    ],
)
def test_invalid_bodies_fail_with_the_ingest_error(raw: bytes) -> None:
    assert isinstance(parse_summary(raw), InvalidResponseError)
    _assert_same(raw)
