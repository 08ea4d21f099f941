"""The BackQuant client against a scripted BackQuant on loopback (real HTTP)."""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

import orjson
import pytest

from backquant.client import BackQuantClient, FetchOutcome, FetchResult, fetch_health
from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.errors import (
    EnvelopeError,
    FetchConnectionError,
    FetchError,
    FetchTimeoutError,
    ForbiddenError,
    InternalServerError,
    NotFoundError,
    NotJSONError,
    QuotaExhaustedError,
    RateLimitError,
    RequestValidationError,
    SchemaViolationError,
    UnauthorizedError,
    UpstreamError,
)
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import IV_AS_FRACTIONS_WARNING
from tests.support.bodies import error_body, summary_body, summary_document
from tests.support.fixtures import FAST_RETRY, TEST_KEY, ScriptedAPI
from tests.support.scripted_server import Reply

QUOTA_OK = {"X-Quota-Limit": "250000", "X-Quota-Used": "1200", "X-Quota-Remaining": "248800"}


def fetch(api: ScriptedAPI, symbol: str = "BTCUSDT", **overrides: Any) -> FetchResult:
    async def run() -> FetchResult:
        async with BackQuantClient(api.config(**overrides)) as client:
            return await client.fetch_expiry_summary(symbol)

    return asyncio.run(run())


def fetch_error(api: ScriptedAPI, symbol: str = "BTCUSDT", **overrides: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(api, symbol, **overrides)
    return caught.value


def fetch_all(api: ScriptedAPI, **overrides: Any) -> dict[str, FetchOutcome]:
    async def run() -> dict[str, FetchOutcome]:
        async with BackQuantClient(api.config(**overrides)) as client:
            return await client.fetch_all()

    return asyncio.run(run())


def gaps(api: ScriptedAPI, symbol: str) -> list[float]:
    times = [request.at for request in api.fake.requests if request.symbol == symbol]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_success_carries_typed_response_raw_bytes_headers_and_timing(
    scripted_api: ScriptedAPI,
) -> None:
    body = summary_body("ETHUSDT")
    headers = {
        "X-RateLimit-Limit": "120",
        "X-RateLimit-Remaining": "117",
        "X-RateLimit-Reset": "1772452860",
        "X-Request-ID": "req_test0001",
        **QUOTA_OK,
        "X-Quota-Period": "202603",
    }
    scripted_api.fake.script("ETHUSDT", Reply(200, body, headers))
    result = fetch(scripted_api, "ETHUSDT")
    assert result.raw == body
    assert result.status == 200
    assert result.response.meta.symbol == "ETHUSDT"
    assert len(result.response.data.expiries) == 4
    assert result.headers.ratelimit_remaining == 117
    assert result.headers.quota_remaining == 248_800
    assert result.headers.quota_period == "202603"
    assert result.headers.request_id == "req_test0001"
    assert result.started_at < result.finished_at
    assert result.latency_s > 0
    assert result.attempts == 1
    assert result.parsed.drift == ()


def test_key_is_sent_as_x_api_key_and_nowhere_else(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script("BTCUSDT", Reply(200, summary_body()))
    fetch(scripted_api)
    (request,) = scripted_api.fake.requests
    assert request.headers["x-api-key"] == TEST_KEY
    others = {name: value for name, value in request.headers.items() if name != "x-api-key"}
    assert TEST_KEY not in repr(others)


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (401, "UNAUTHORIZED", UnauthorizedError),
        (403, "FORBIDDEN", ForbiddenError),
        (404, "NOT_FOUND", NotFoundError),
        (422, "VALIDATION_ERROR", RequestValidationError),
        (400, "VALIDATION_ERROR", RequestValidationError),
    ],
)
def test_client_errors_are_typed_and_never_retried(
    scripted_api: ScriptedAPI, status: int, code: str, error_class: type[FetchError]
) -> None:
    scripted_api.fake.script(
        "SOLUSDT", Reply(status, error_body(code, "server says no", request_id="req_abc123"))
    )
    error = fetch_error(scripted_api, "SOLUSDT")
    assert type(error) is error_class
    assert error.status == status
    assert error.request_id == "req_abc123"
    assert error.symbol == "SOLUSDT"
    assert "server says no" in str(error)
    assert scripted_api.fake.count("SOLUSDT") == 1


def test_not_found_is_reported_as_a_cold_start(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script(
        "HYPEUSDT", Reply(404, error_body("NOT_FOUND", "No data for HYPEUSDT"))
    )
    error = fetch_error(scripted_api, "HYPEUSDT")
    assert isinstance(error, NotFoundError)
    assert error.kind == "not_found"
    assert "cold start" in str(error)
    assert "HYPEUSDT" in str(error)


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (500, "INTERNAL_ERROR", InternalServerError),
        (502, "UPSTREAM_ERROR", UpstreamError),
        (503, "UPSTREAM_ERROR", UpstreamError),
        (504, "UPSTREAM_ERROR", UpstreamError),
    ],
)
def test_server_errors_back_off_on_the_advised_schedule_then_give_up(
    scripted_api: ScriptedAPI, status: int, code: str, error_class: type[FetchError]
) -> None:
    scripted_api.fake.script("BTCUSDT", Reply(status, error_body(code, "redis unreachable")))
    error = fetch_error(scripted_api)
    assert type(error) is error_class
    assert error.attempts == 4  # the first try and one retry per advised backoff step
    observed = gaps(scripted_api, "BTCUSDT")
    for gap, advised in zip(observed, (0.05, 0.1, 0.2), strict=True):
        assert gap >= advised * 0.9


def test_server_error_that_clears_returns_the_data(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script(
        "BTCUSDT",
        Reply(502, error_body("UPSTREAM_ERROR", "down")),
        Reply(503, error_body("UPSTREAM_ERROR", "down")),
        Reply(200, summary_body()),
    )
    result = fetch(scripted_api)
    assert result.attempts == 3
    assert result.status == 200


def test_upstream_backoff_stops_at_the_deadline(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script("BTCUSDT", Reply(502, error_body("UPSTREAM_ERROR", "down")))
    policy = RetryPolicy(deadline_s=0.5, upstream_backoff_s=(0.2, 0.4, 0.8), jitter_s=0.0)
    error = fetch_error(scripted_api, retry=policy)
    assert isinstance(error, UpstreamError)
    assert error.attempts == 2  # 0.2 s fits in the deadline, the following 0.4 s does not


def test_burst_429_waits_retry_after_header(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script(
        "BTCUSDT",
        Reply(
            429, error_body("RATE_LIMIT_EXCEEDED", "slow down"), {"Retry-After": "1", **QUOTA_OK}
        ),
        Reply(200, summary_body()),
    )
    result = fetch(scripted_api)
    assert result.attempts == 2
    assert gaps(scripted_api, "BTCUSDT")[0] >= 0.95


def test_burst_429_falls_back_to_details_retry_after_seconds(scripted_api: ScriptedAPI) -> None:
    details = {"retry_after_seconds": 0.4, "limit": "120 per 1 minute"}
    scripted_api.fake.script(
        "BTCUSDT",
        Reply(429, error_body("RATE_LIMIT_EXCEEDED", "slow down", details), QUOTA_OK),
        Reply(200, summary_body()),
    )
    result = fetch(scripted_api)
    assert result.attempts == 2
    assert gaps(scripted_api, "BTCUSDT")[0] >= 0.38


def test_burst_429_without_hints_backs_off_exponentially_then_gives_up(
    scripted_api: ScriptedAPI,
) -> None:
    scripted_api.fake.script(
        "BTCUSDT", Reply(429, error_body("RATE_LIMIT_EXCEEDED", "slow down"), QUOTA_OK)
    )
    policy = RetryPolicy(rate_limit_retries=3, rate_limit_backoff_s=0.1, jitter_s=0.0)
    error = fetch_error(scripted_api, retry=policy)
    assert type(error) is RateLimitError
    assert error.attempts == 4
    observed = gaps(scripted_api, "BTCUSDT")
    for gap, expected in zip(observed, (0.1, 0.2, 0.4), strict=True):
        assert gap >= expected * 0.9
    assert observed[2] > observed[0] * 2.5


def test_spent_quota_is_never_slept_on(scripted_api: ScriptedAPI) -> None:
    headers = {
        "Retry-After": "86400",
        "X-Quota-Limit": "250000",
        "X-Quota-Used": "250000",
        "X-Quota-Remaining": "0",
        "X-Quota-Period": "202611",
    }
    scripted_api.fake.script(
        "BTCUSDT", Reply(429, error_body("RATE_LIMIT_EXCEEDED", "Monthly quota exceeded"), headers)
    )
    error = fetch_error(scripted_api)
    assert isinstance(error, QuotaExhaustedError)
    assert error.kind == "quota_exhausted"
    assert error.attempts == 1
    message = str(error)
    assert "monthly quota is spent" in message
    assert "250000/250000" in message
    assert "2026-12-01T00:00:00+00:00" in message


def test_timeouts_are_retried_a_bounded_number_of_times(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script("BTCUSDT", Reply(200, summary_body(), delay_s=1.0))
    error = fetch_error(scripted_api, read_timeout_s=0.2)
    assert isinstance(error, FetchTimeoutError)
    assert error.attempts == FAST_RETRY.transport_retries + 1
    assert error.kind == "timeout"


def test_slow_first_answer_then_fast_one_succeeds(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script(
        "BTCUSDT", Reply(200, summary_body(), delay_s=1.0), Reply(200, summary_body())
    )
    result = fetch(scripted_api, read_timeout_s=0.2)
    assert result.attempts == 2


def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = ClientConfig(
        base_url=f"http://127.0.0.1:{closed_port}", api_key=ApiKey(TEST_KEY), retry=FAST_RETRY
    )

    async def run() -> None:
        async with BackQuantClient(config) as client:
            await client.fetch_expiry_summary("BTCUSDT")

    with pytest.raises(FetchConnectionError) as caught:
        asyncio.run(run())
    assert caught.value.attempts == FAST_RETRY.transport_retries + 1
    assert f"127.0.0.1:{closed_port}" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "error_class", "field_path"),
    [
        (b'{"success": true, "data": {"expiries": [', NotJSONError, None),
        (b"<html>502 Bad Gateway</html>", NotJSONError, None),
        (b'{"success": true, "data": {}, "meta": {}, "x": NaN}', NotJSONError, None),
        (b"[1, 2, 3]", EnvelopeError, None),
        (b'{"result": {}}', EnvelopeError, None),
        (b'{"success": false, "data": {}, "meta": {}}', EnvelopeError, None),
    ],
)
def test_malformed_bodies_are_rejected_with_the_body_kept(
    scripted_api: ScriptedAPI, body: bytes, error_class: type[FetchError], field_path: str | None
) -> None:
    scripted_api.fake.script("BTCUSDT", Reply(200, body))
    error = fetch_error(scripted_api)
    assert type(error) is error_class
    assert error.raw == body  # type: ignore[attr-defined]
    assert scripted_api.fake.count("BTCUSDT") == 1


@pytest.mark.parametrize(
    ("mutate", "field_path"),
    [
        (lambda doc: doc["data"]["expiries"][1].update(atm_iv="48.5"), "data.expiries[1].atm_iv"),
        (lambda doc: doc["data"]["expiries"][0].pop("type"), "data.expiries[0].type"),
        (lambda doc: doc["data"].pop("anchor_count"), "data.anchor_count"),
        (lambda doc: doc["meta"].pop("timestamp"), "meta.timestamp"),
        (
            lambda doc: doc["data"]["expiries"][2]["by_venue"]["okx"].update(call_oi=None),
            "data.expiries[2].by_venue.okx.call_oi",
        ),
    ],
)
def test_schema_violations_name_the_failing_field(
    scripted_api: ScriptedAPI, mutate: Any, field_path: str
) -> None:
    document = summary_document()
    mutate(document)
    scripted_api.fake.script("BTCUSDT", Reply(200, orjson.dumps(document)))
    error = fetch_error(scripted_api)
    assert isinstance(error, SchemaViolationError)
    assert error.field_path == field_path
    assert field_path in str(error)


def test_unknown_fields_are_kept_and_reported_as_drift(scripted_api: ScriptedAPI) -> None:
    document = summary_document()
    document["data"]["expiries"][0]["gamma_flip"] = 97_500.0
    document["data"]["expiries"][1]["by_venue"]["kraken"] = {
        "call_oi": 1.0,
        "put_oi": 1.0,
        "total_oi": 2.0,
    }
    document["meta"]["cache_tier"] = "hot"
    body = orjson.dumps(document)
    scripted_api.fake.script("BTCUSDT", Reply(200, body))
    result = fetch(scripted_api)
    assert result.parsed.drift == (
        "data.expiries[].by_venue.kraken",
        "data.expiries[].gamma_flip",
        "meta.cache_tier",
    )
    assert result.raw == body
    assert result.response.data.expiries[0]["gamma_flip"] == 97_500.0  # type: ignore[typeddict-item]


def test_missing_optional_fields_and_newer_version_are_fine(scripted_api: ScriptedAPI) -> None:
    document = summary_document()
    for row in document["data"]["expiries"]:
        for name in ("max_pain", "by_venue", "by_venue_unattributed", "net_gex"):
            row.pop(name)
    document["meta"]["version"] = "2.9"
    scripted_api.fake.script("BTCUSDT", Reply(200, orjson.dumps(document)))
    result = fetch(scripted_api)
    assert "max_pain" not in result.response.data.expiries[0]
    assert result.response.meta.version == "2.9"


def test_ivs_that_look_like_fractions_are_flagged(scripted_api: ScriptedAPI) -> None:
    document = summary_document()
    for row in document["data"]["expiries"]:
        row["atm_iv"] = 0.485
    scripted_api.fake.script("BTCUSDT", Reply(200, orjson.dumps(document)))
    assert fetch(scripted_api).parsed.warnings == (IV_AS_FRACTIONS_WARNING,)


def test_four_symbols_are_fetched_concurrently(scripted_api: ScriptedAPI) -> None:
    for symbol in SUPPORTED_SYMBOLS:
        scripted_api.fake.script(symbol, Reply(200, summary_body(symbol), delay_s=0.5))
    outcomes = fetch_all(scripted_api)
    assert all(outcome.ok for outcome in outcomes.values())
    arrivals = [request.at for request in scripted_api.fake.requests]
    assert len(arrivals) == 4
    # every request reached the server before the first answer (0.5 s later) was sent
    assert max(arrivals) - min(arrivals) < 0.4


def test_one_failing_symbol_never_hides_the_others(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script("BTCUSDT", Reply(200, summary_body("BTCUSDT")))
    scripted_api.fake.script("ETHUSDT", Reply(404, error_body("NOT_FOUND", "No data for ETHUSDT")))
    scripted_api.fake.script("SOLUSDT", Reply(200, b"not json"))
    scripted_api.fake.script("HYPEUSDT", Reply(503, error_body("UPSTREAM_ERROR", "down")))
    outcomes = fetch_all(scripted_api)
    assert list(outcomes) == list(SUPPORTED_SYMBOLS)
    assert outcomes["BTCUSDT"].ok
    assert outcomes["BTCUSDT"].result is not None
    assert isinstance(outcomes["ETHUSDT"].error, NotFoundError)
    assert isinstance(outcomes["SOLUSDT"].error, NotJSONError)
    assert isinstance(outcomes["HYPEUSDT"].error, UpstreamError)
    assert all(
        outcome.error.symbol == symbol for symbol, outcome in outcomes.items() if outcome.error
    )


def test_key_echoed_by_the_server_is_scrubbed_from_errors(scripted_api: ScriptedAPI) -> None:
    scripted_api.fake.script(
        "BTCUSDT", Reply(401, error_body("UNAUTHORIZED", f"Invalid API key {TEST_KEY}"))
    )
    error = fetch_error(scripted_api)
    assert TEST_KEY not in str(error)
    assert TEST_KEY not in repr(error)
    assert "Invalid API key ***" in str(error)


def test_health_needs_no_key_and_reads_the_body(scripted_api: ScriptedAPI) -> None:
    body = asyncio.run(fetch_health(scripted_api.config(api_key=None)))
    assert body["data"]["status"] == "ok"
