"""The rebuild's parser keeps each refusal as a value and goes on with the rest of the day."""

from __future__ import annotations

import orjson

from backquant.errors import NotJSONError, SchemaViolationError
from backquant.validation import ParsedSummary
from storage.parsing import parse_summaries
from tests.storage.helpers import BASE_TIME, body
from tests.support.bodies import summary_document


def test_refusals_are_kept_in_order_between_valid_bodies() -> None:
    raws = [
        body("BTCUSDT", BASE_TIME),
        b"not json",
        body("BTCUSDT", BASE_TIME, **{"data.expiries.0.atm_iv": "12"}),
        body("ETHUSDT", BASE_TIME),
    ]
    outcomes = parse_summaries(raws)
    assert [type(outcome) for outcome in outcomes] == [
        ParsedSummary,
        NotJSONError,
        SchemaViolationError,
        ParsedSummary,
    ]
    refused = outcomes[2]
    assert isinstance(refused, SchemaViolationError)
    assert refused.field_path == "data.expiries[0].atm_iv"
    assert refused.raw == raws[2]


def test_drift_is_found_at_every_level() -> None:
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
    (parsed,) = parse_summaries([orjson.dumps(document)])
    assert isinstance(parsed, ParsedSummary)
    assert parsed.drift == (
        "data.expiries[].by_venue.*.extra_oi",
        "data.expiries[].by_venue.newdex",
        "data.expiries[].by_venue_unattributed.x",
        "data.expiries[].gamma_flip",
        "data.expiries[].max_pain.pain_curve",
        "data.new_data",
        "data.type_counts.yearly",
        "meta.new_meta",
        "new_top",
    )
