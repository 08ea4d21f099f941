"""Every endpoint and every fault body against the project's extract of the published contract."""

from __future__ import annotations

import httpx
import orjson
import pytest

from backquant.simulator.faults import FAULT_KINDS
from backquant.symbols import SUPPORTED_SYMBOLS
from tests.contract.schemas import errors

RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-quota-limit",
    "x-quota-used",
    "x-quota-remaining",
    "x-quota-period",
)
SUMMARY = "/v2/options/expiry-summary"

# What each fault must look like on the wire: (status, schema the body must satisfy or None
# for a non-JSON body, whether the body must *violate* the success schema).
EXPECTED: dict[str, tuple[int, str | None]] = {
    "burst": (429, "V2ErrorEnvelope"),
    "burst-no-header": (429, "V2ErrorEnvelope"),
    "burst-bare": (429, "V2ErrorEnvelope"),
    "quota": (429, "V2ErrorEnvelope"),
    "500": (500, "V2ErrorEnvelope"),
    "502": (502, "V2ErrorEnvelope"),
    "503": (503, "V2ErrorEnvelope"),
    "504": (504, "V2ErrorEnvelope"),
    "401": (401, "V2ErrorEnvelope"),
    "403": (403, "V2ErrorEnvelope"),
    "404": (404, "V2ErrorEnvelope"),
    "latency": (200, "ExpirySummaryResponse"),
    "hang": (200, "ExpirySummaryResponse"),
    "truncate": (200, None),
    "nonjson": (200, None),
    "drift-unknown": (200, "ExpirySummaryResponse"),
    "drift-missing-optional": (200, "ExpirySummaryResponse"),
    "drift-wrong-type": (200, "violates"),
    "drift-missing-required": (200, "violates"),
    "stale": (200, "ExpirySummaryResponse"),
    "frozen": (200, "ExpirySummaryResponse"),
}


def _get(sim, path, **params):
    return httpx.get(sim.base_url + path, params=params, headers={"X-API-Key": sim.api_key})


def _assert_envelope(response: httpx.Response, schema: str) -> dict:
    body = orjson.loads(response.content)
    assert errors(schema, body) == []
    assert response.headers["x-request-id"] == body["meta"]["request_id"]
    return body


def test_every_fault_kind_has_an_expectation():
    assert set(FAULT_KINDS) - {"reset"} == set(EXPECTED)


@pytest.mark.parametrize("symbol", SUPPORTED_SYMBOLS)
def test_expiry_summary_success_matches_the_contract(simulator, symbol):
    response = _get(simulator, SUMMARY, symbol=symbol)
    assert response.status_code == 200
    body = _assert_envelope(response, "ExpirySummaryResponse")
    assert body["success"] is True and body["meta"]["symbol"] == symbol
    assert all(name in response.headers for name in RATE_HEADERS)


@pytest.mark.parametrize("path", ["/v2/expiries", "/v2/status", "/v2/meta", "/v2/health"])
def test_discovery_endpoints_use_the_envelope(simulator, path):
    response = _get(simulator, path, symbol="SOLUSDT")
    assert response.status_code == 200
    body = orjson.loads(response.content)
    assert body["success"] is True and isinstance(body["data"], dict)
    assert errors("V2Meta", body["meta"]) == []
    if path != "/v2/health":
        assert all(name in response.headers for name in RATE_HEADERS)


def test_discovery_contents(simulator):
    meta = orjson.loads(_get(simulator, "/v2/meta").content)["data"]
    assert meta["supported_symbols"] == list(SUPPORTED_SYMBOLS)
    assert meta["error_codes"]["UPSTREAM_ERROR"] == [502, 503, 504]
    assert meta["rate_limits"]["this_key"]["burst_per_minute"] == 120
    status = orjson.loads(_get(simulator, "/v2/status").content)["data"]
    assert status["overall_status"] == "healthy"
    assert set(status["symbols"]) == set(SUPPORTED_SYMBOLS)
    expiries = orjson.loads(_get(simulator, "/v2/expiries", symbol="BTCUSDT").content)["data"]
    summary = orjson.loads(_get(simulator, SUMMARY, symbol="BTCUSDT").content)["data"]
    assert [e["expiry"] for e in expiries["expiries"]] == [r["expiry"] for r in summary["expiries"]]


def test_health_is_200_without_a_key(simulator):
    response = httpx.get(simulator.base_url + "/v2/health")
    assert response.status_code == 200
    assert orjson.loads(response.content)["data"]["status"] == "ok"


@pytest.mark.parametrize("path", [SUMMARY, "/v2/expiries", "/v2/status", "/v2/meta"])
@pytest.mark.parametrize("key", [None, "bq_test_wrong_key_00000000"])
def test_wrong_or_missing_key_is_401(simulator, path, key):
    headers = {} if key is None else {"X-API-Key": key}
    response = httpx.get(simulator.base_url + path, headers=headers)
    assert response.status_code == 401
    body = _assert_envelope(response, "V2ErrorEnvelope")
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert simulator.api_key not in response.text


@pytest.mark.parametrize("path", [SUMMARY, "/v2/expiries"])
def test_unsupported_symbol_is_422_with_details(simulator, path):
    response = _get(simulator, path, symbol="BTC")
    assert response.status_code == 422
    body = _assert_envelope(response, "V2ErrorEnvelope")
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert body["error"]["details"]["errors"][0]["loc"] == ["query", "symbol"]
    assert all(name in response.headers for name in RATE_HEADERS)


def test_unknown_route_is_a_404_envelope(simulator):
    response = _get(simulator, "/v2/nowhere")
    assert response.status_code == 404
    assert _assert_envelope(response, "V2ErrorEnvelope")["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_every_fault_body_on_the_wire(simulator, fault):
    arg = {"latency": "(0.05)", "hang": "(0.1)", "burst": "(2)", "burst-no-header": "(2)"}
    simulator.set_faults(f"BTCUSDT:{fault}{arg.get(fault, '')}")
    response = _get(simulator, SUMMARY, symbol="BTCUSDT")
    status, schema = EXPECTED[fault]
    assert response.status_code == status
    assert response.headers["x-request-id"].startswith("req_")
    if fault != "401":
        assert all(name in response.headers for name in RATE_HEADERS)
    if schema is None:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(response.content)
        return
    body = orjson.loads(response.content)
    if schema == "violates":
        assert errors("ExpirySummaryResponse", body) != []
        return
    assert errors(schema, body) == []
    assert response.headers["x-request-id"] == body["meta"]["request_id"]
    if status == 429:
        retry_header = response.headers.get("retry-after")
        hint = body["error"]["details"].get("retry_after_seconds")
        if fault == "burst":
            assert retry_header == "2" and hint == 2
        elif fault == "burst-no-header":
            assert retry_header is None and hint == 2
        elif fault == "burst-bare":
            assert retry_header is None and hint is None
        else:
            assert response.headers["x-quota-remaining"] == "0"
            assert int(retry_header) == hint > 0


def test_other_symbols_are_untouched_by_a_symbol_fault(simulator):
    simulator.set_faults("ETHUSDT:500")
    assert _get(simulator, SUMMARY, symbol="ETHUSDT").status_code == 500
    assert _get(simulator, SUMMARY, symbol="BTCUSDT").status_code == 200
