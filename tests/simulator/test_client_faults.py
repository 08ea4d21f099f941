"""The real BackQuant client against the simulator over loopback HTTP, one fault at a time,
behaving exactly as issue 2 specifies."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from backquant.client import BackQuantClient
from backquant.config import ApiKey
from backquant.errors import (
    FetchConnectionError,
    FetchTimeoutError,
    ForbiddenError,
    InternalServerError,
    NotFoundError,
    NotJSONError,
    QuotaExhaustedError,
    RateLimitError,
    SchemaViolationError,
    UnauthorizedError,
    UpstreamError,
)
from tests.support.simulator import FAST_RETRY, SIM_START


def fetch(sim, symbol="BTCUSDT", **overrides):
    async def run():
        async with BackQuantClient(sim.client_config(**overrides)) as client:
            return await client.fetch_expiry_summary(symbol)

    return asyncio.run(run())


def fetch_all(sim, **overrides):
    async def run():
        async with BackQuantClient(sim.client_config(**overrides)) as client:
            return await client.fetch_all()

    return asyncio.run(run())


def timed(call, *args, **kwargs):
    started = time.monotonic()
    try:
        return call(*args, **kwargs), time.monotonic() - started
    except Exception as error:
        return error, time.monotonic() - started


def test_burst_retry_after_header_is_honoured(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:seq=burst(1),ok")
    result, elapsed = timed(fetch, sim)
    assert result.status == 200 and result.attempts == 2
    assert elapsed >= 0.95


def test_burst_without_header_falls_back_to_details(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:seq=burst-no-header(1),ok")
    result, elapsed = timed(fetch, sim)
    assert result.attempts == 2 and elapsed >= 0.95


def test_burst_without_any_hint_backs_off_then_gives_up(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:seq=burst-bare,ok")
    result, elapsed = timed(fetch, sim)
    assert result.attempts == 2 and elapsed < 0.9
    sim.set_faults("BTCUSDT:burst-bare")
    error, _ = timed(fetch, sim)
    assert isinstance(error, RateLimitError) and not isinstance(error, QuotaExhaustedError)
    assert error.attempts == FAST_RETRY.rate_limit_retries + 1


def test_spent_quota_fails_at_once_with_a_clear_message(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:quota")
    error, elapsed = timed(fetch, sim)
    assert isinstance(error, QuotaExhaustedError)
    assert error.attempts == 1 and elapsed < 0.5
    assert "monthly quota is spent" in str(error) and "2026-04-01" in str(error)


@pytest.mark.parametrize("status", ["502", "503", "504", "500"])
def test_5xx_backs_off_and_recovers(simulator_factory, status):
    sim = simulator_factory(faults=f"BTCUSDT:seq={status},{status},ok")
    result = fetch(sim)
    assert result.attempts == 3


def test_persistent_upstream_error_surfaces_after_the_backoff_ladder(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:502; ETHUSDT:500")
    error = timed(fetch, sim)[0]
    assert isinstance(error, UpstreamError)
    assert error.attempts == len(FAST_RETRY.upstream_backoff_s) + 1
    assert isinstance(timed(fetch, sim, "ETHUSDT")[0], InternalServerError)


def test_hang_past_the_timeout_is_retried(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:seq=hang(1.5),ok")
    result = fetch(sim, read_timeout_s=0.3)
    assert result.attempts == 2


def test_persistent_hang_is_a_timeout_error(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:hang(1.5)")
    error, elapsed = timed(fetch, sim, read_timeout_s=0.2)
    assert isinstance(error, FetchTimeoutError)
    assert error.attempts == FAST_RETRY.transport_retries + 1 and elapsed < 1.5


def test_added_latency_is_seen_as_latency(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:latency(0.25)")
    result = fetch(sim)
    assert result.attempts == 1 and result.latency_s >= 0.25


def test_connection_reset_is_retried_then_reported(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:seq=reset,ok")
    assert fetch(sim).attempts == 2
    sim.set_faults("BTCUSDT:reset")
    error = timed(fetch, sim)[0]
    assert isinstance(error, FetchConnectionError)


@pytest.mark.parametrize("fault", ["truncate", "nonjson"])
def test_malformed_bodies_are_not_json_errors_with_the_raw_bytes(simulator_factory, fault):
    sim = simulator_factory(faults=f"BTCUSDT:{fault}")
    error = timed(fetch, sim)[0]
    assert isinstance(error, NotJSONError)
    assert error.attempts == 1 and error.raw
    assert error.status == 200


def test_unknown_fields_are_kept_and_reported_as_drift(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:drift-unknown")
    result = fetch(sim)
    assert "data.generated_by" in result.parsed.drift
    assert "data.expiries[].vanna_usd" in result.parsed.drift
    assert b"vanna_usd" in result.raw


def test_missing_optional_fields_are_accepted(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:drift-missing-optional")
    result = fetch(sim)
    assert result.parsed.drift == ()
    assert all(row.get("max_pain") is None for row in result.response.data.expiries)


@pytest.mark.parametrize(
    ("fault", "path"),
    [
        ("drift-wrong-type", "data.expiries[0].dte"),
        ("drift-missing-required", "data.expiries[0].type"),
    ],
)
def test_contract_violations_name_the_field(simulator_factory, fault, path):
    sim = simulator_factory(faults=f"BTCUSDT:{fault}")
    error = timed(fetch, sim)[0]
    assert isinstance(error, SchemaViolationError)
    assert error.field_path == path and error.attempts == 1


def test_stale_data_shows_in_freshness(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:stale(900)")
    meta = fetch(sim).response.meta
    assert meta.freshness_seconds is not None and meta.freshness_seconds >= 900


def test_frozen_computed_at_stops_advancing(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:frozen")
    first = fetch(sim).response.meta
    sim.clock.set(SIM_START + timedelta(minutes=5))
    later = fetch(sim).response.meta
    assert later.computed_at == first.computed_at
    assert later.freshness_seconds >= 300 > first.freshness_seconds


def test_cold_start_404_is_reported_as_no_data_without_retry(simulator_factory):
    sim = simulator_factory(faults="HYPEUSDT:404")
    error = timed(fetch, sim, "HYPEUSDT")[0]
    assert isinstance(error, NotFoundError) and error.attempts == 1
    assert "cold start" in str(error)


def test_401_and_403_are_not_retried_and_never_show_the_key(simulator_factory):
    sim = simulator_factory(faults="BTCUSDT:401; ETHUSDT:403")
    error = timed(fetch, sim)[0]
    assert isinstance(error, UnauthorizedError) and error.attempts == 1
    assert sim.api_key not in str(error)
    assert isinstance(timed(fetch, sim, "ETHUSDT")[0], ForbiddenError)
    wrong = "bq_test_not_the_right_key_000"
    error = timed(fetch, sim, "SOLUSDT", api_key=ApiKey(wrong))[0]
    assert isinstance(error, UnauthorizedError) and wrong not in str(error)


def test_one_failing_symbol_never_hides_the_other_three(simulator_factory):
    sim = simulator_factory(faults="ETHUSDT:502; SOLUSDT:seq=burst(0),ok")
    outcomes = fetch_all(sim)
    assert isinstance(outcomes["ETHUSDT"].error, UpstreamError)
    for symbol in ("BTCUSDT", "SOLUSDT", "HYPEUSDT"):
        assert outcomes[symbol].ok, outcomes[symbol].error
    assert outcomes["SOLUSDT"].result.attempts == 2


def test_a_fault_free_simulator_serves_all_four(simulator):
    outcomes = fetch_all(simulator)
    assert all(outcome.ok for outcome in outcomes.values())
    assert {o.result.response.meta.symbol for o in outcomes.values()} == set(outcomes)
