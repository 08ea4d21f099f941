"""One symbol's failure, whatever it is, stays that symbol's: a body that does not decode as its
headers say, a nesting deeper than the fast decoder follows, a body that trickles in past the
deadline, a 5xx no table names, a body that echoes the key. Real HTTP on loopback."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import orjson
import pytest

from assets.resources import BackQuantResource, WarehouseResource
from backquant.client import BackQuantClient, FetchOutcome
from backquant.errors import FetchTimeoutError, TransportError
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary, parse_with_models
from tests.support.bodies import summary_body, summary_document
from tests.support.fixtures import FAST_RETRY, TEST_KEY, ScriptedAPI
from tests.support.scripted_server import Reply


def fetch_all(api: ScriptedAPI, **overrides: Any) -> dict[str, FetchOutcome]:
    async def run() -> dict[str, FetchOutcome]:
        async with BackQuantClient(api.config(**overrides)) as client:
            return await client.fetch_all()

    return asyncio.run(run())


def script_valid(api: ScriptedAPI, *, but: str, reply: Reply) -> None:
    for symbol in SUPPORTED_SYMBOLS:
        api.fake.script(symbol, reply if symbol == but else Reply(200, summary_body(symbol)))


def others_fetched(outcomes: dict[str, FetchOutcome], failed: str) -> None:
    assert set(outcomes) == set(SUPPORTED_SYMBOLS)
    for symbol, outcome in outcomes.items():
        if symbol != failed:
            assert outcome.result is not None, (symbol, outcome.error)


def test_a_body_that_does_not_decode_as_its_headers_say_fails_only_its_symbol(
    scripted_api: ScriptedAPI,
) -> None:
    lying = Reply(200, summary_body("HYPEUSDT"), {"Content-Encoding": "gzip"})
    script_valid(scripted_api, but="HYPEUSDT", reply=lying)

    outcomes = fetch_all(scripted_api)

    others_fetched(outcomes, "HYPEUSDT")
    error = outcomes["HYPEUSDT"].error
    assert isinstance(error, TransportError) and "could not be read" in str(error)


@pytest.mark.parametrize("field", ["extra", "rate_limit"])
def test_a_free_form_meta_field_nested_deeply_gets_the_reference_paths_verdict(
    scripted_api: ScriptedAPI, field: str
) -> None:
    document = summary_document("BTCUSDT")
    document["meta"][field] = {"deep": "X"}
    raw = orjson.dumps(document).replace(b'"X"', b"[" * 1000 + b"]" * 1000, 1)
    fast, reference = parse_expiry_summary(raw), parse_with_models(raw)
    assert fast.response.data.expiries == reference.response.data.expiries
    assert (fast.drift, fast.warnings) == (reference.drift, reference.warnings)
    script_valid(scripted_api, but="BTCUSDT", reply=Reply(200, raw))

    outcomes = fetch_all(scripted_api)

    others_fetched(outcomes, "BTCUSDT")
    assert outcomes["BTCUSDT"].result is not None


def test_a_body_that_trickles_in_is_cut_off_at_the_deadline(scripted_api: ScriptedAPI) -> None:
    # Each 64-byte chunk arrives well within the read timeout; the whole never within the
    # deadline.
    slow = Reply(200, summary_body("SOLUSDT"), trickle_s=0.2)
    script_valid(scripted_api, but="SOLUSDT", reply=slow)
    started = time.monotonic()

    outcomes = fetch_all(
        scripted_api, read_timeout_s=1.0, retry=replace(FAST_RETRY, deadline_s=1.5)
    )

    assert time.monotonic() - started < 4.0
    others_fetched(outcomes, "SOLUSDT")
    assert isinstance(outcomes["SOLUSDT"].error, FetchTimeoutError)


@pytest.mark.parametrize("status", [501, 520, 524])
def test_a_5xx_no_table_names_is_retried_like_the_others(
    scripted_api: ScriptedAPI, status: int
) -> None:
    scripted_api.fake.script(
        "ETHUSDT", Reply(status, b"<html>origin error</html>"), Reply(200, summary_body("ETHUSDT"))
    )
    for symbol in ("BTCUSDT", "SOLUSDT", "HYPEUSDT"):
        scripted_api.fake.script(symbol, Reply(200, summary_body(symbol)))

    outcomes = fetch_all(scripted_api)

    result = outcomes["ETHUSDT"].result
    assert result is not None and result.attempts == 2


def test_a_body_echoing_the_key_leaves_no_part_of_it_in_the_reason(
    scripted_api: ScriptedAPI,
) -> None:
    # A proxy page that quotes the request: the key starts inside the 80-byte preview and is
    # cut off by it.
    echo = Reply(200, b"<html><body>request headers: X-API-Key: " + TEST_KEY.encode() + b"</b>")
    script_valid(scripted_api, but="BTCUSDT", reply=echo)

    error = fetch_all(scripted_api)["BTCUSDT"].error

    assert error is not None and error.kind == "not_json"
    assert TEST_KEY[:12] not in str(error) and "***" in str(error)


def test_the_resources_never_show_the_key_or_the_catalog_password() -> None:
    backquant = BackQuantResource(api_key=TEST_KEY)
    lake = WarehouseResource(home="/tmp/h", catalog="postgres:host=db password=s3cr3t-pw user=t")
    for shown in (repr(backquant), str(backquant), repr(lake), str(lake)):
        assert TEST_KEY not in shown and "s3cr3t-pw" not in shown, shown
    assert backquant.api_key == TEST_KEY and "s3cr3t-pw" in lake.catalog
