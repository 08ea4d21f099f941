"""Real burst limit and quota, the controllable clock and its admin route, and the fault spec."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from backquant.client import BackQuantClient
from backquant.errors import QuotaExhaustedError
from backquant.simulator import SimulatorConfig
from backquant.simulator.clock import SimClock
from backquant.simulator.config import SimulatorConfigError
from backquant.simulator.faults import FaultPlan, FaultSpecError, parse_fault_spec
from backquant.simulator.limits import Limiter
from backquant.simulator.listing import live_expiries
from tests.support.simulator import SIM_START

SUMMARY = "/v2/options/expiry-summary"


def _get(sim, symbol="BTCUSDT"):
    return httpx.get(
        sim.base_url + SUMMARY, params={"symbol": symbol}, headers={"X-API-Key": sim.api_key}
    )


def test_burst_limit_is_enforced_per_wall_minute():
    limiter = Limiter(burst_per_minute=3, monthly_quota=100)
    wall = 1_800_000_010.0
    verdicts = [limiter.check("k", SIM_START, wall_now=wall) for _ in range(4)]
    assert [v.rejected for v in verdicts] == [None, None, None, "burst"]
    assert verdicts[2].headers["X-RateLimit-Remaining"] == "0"
    assert verdicts[3].retry_after_s == 50
    assert verdicts[3].headers["X-RateLimit-Reset"] == str(1_800_000_060)
    assert limiter.check("k", SIM_START, wall_now=wall + 60).rejected is None
    assert limiter.check("other", SIM_START, wall_now=wall).rejected is None


def test_quota_is_per_simulated_month():
    limiter = Limiter(burst_per_minute=100, monthly_quota=2)
    assert [limiter.check("k", SIM_START).rejected for _ in range(3)] == [None, None, "quota"]
    spent = limiter.check("k", SIM_START)
    assert spent.headers["X-Quota-Remaining"] == "0"
    assert spent.headers["X-Quota-Period"] == "202603"
    assert spent.retry_after_s == int(
        (datetime(2026, 4, 1, tzinfo=UTC) - SIM_START).total_seconds()
    )
    assert limiter.check("k", datetime(2026, 4, 1, tzinfo=UTC)).rejected is None


def test_burst_limit_over_http(simulator_factory):
    sim = simulator_factory(burst_limit_per_minute=3)
    for _ in range(2):  # a second round only if the first straddled a wall-clock minute
        responses = [_get(sim) for _ in range(4)]
        if responses[0].headers["x-ratelimit-reset"] == responses[-1].headers["x-ratelimit-reset"]:
            break
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    limited = responses[-1]
    assert int(limited.headers["retry-after"]) >= 1
    assert int(limited.headers["x-quota-remaining"]) > 0
    assert limited.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"


def test_spent_quota_over_http_and_the_client_message(simulator_factory):
    sim = simulator_factory(monthly_quota=2)
    assert [_get(sim).status_code for _ in range(2)] == [200, 200]

    async def run():
        async with BackQuantClient(sim.client_config()) as client:
            return await client.fetch_all(["BTCUSDT"])

    outcome = asyncio.run(run())["BTCUSDT"]
    assert isinstance(outcome.error, QuotaExhaustedError) and outcome.error.attempts == 1
    sim.clock.set(datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC))
    assert _get(sim).status_code == 200


def test_clock_modes():
    clock = SimClock(datetime(2026, 1, 1, tzinfo=UTC), speed=3600.0)
    first = clock.now()
    assert first >= datetime(2026, 1, 1, tzinfo=UTC)
    clock.set(SIM_START)
    assert clock.now() == SIM_START and clock.fixed
    assert clock.advance(90) == SIM_START + timedelta(seconds=90)
    clock.run(speed=10.0)
    assert not clock.fixed and clock.now() >= SIM_START + timedelta(seconds=90)
    with pytest.raises(ValueError, match="positive"):
        SimClock(speed=0)
    wall = SimClock()
    assert abs((wall.now() - datetime.now(UTC)).total_seconds()) < 1


def test_admin_route_moves_the_clock_and_faults(simulator):
    admin = simulator.base_url + "/_simulator"
    later = "2026-06-01T09:00:00Z"
    assert (
        httpx.post(admin + "/clock", json={"at": later}).json()["now"] == "2026-06-01T09:00:00.000Z"
    )
    body = _get(simulator).json()
    assert body["meta"]["computed_at"] == "2026-06-01T09:00:00.000Z"
    assert body["meta"]["freshness_seconds"] == 0.0
    assert (
        httpx.post(admin + "/clock", json={"advance_s": 45}).json()["now"].endswith("09:00:45.000Z")
    )
    assert _get(simulator).json()["meta"]["freshness_seconds"] == 15.0
    bad = httpx.post(admin + "/clock", json={"at": "yesterday"})
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]
    assert httpx.post(admin + "/faults", json={"spec": "BTCUSDT:503"}).status_code == 200
    assert _get(simulator).status_code == 503
    assert httpx.post(admin + "/faults", json={"spec": "nope"}).status_code == 400
    state = httpx.get(admin + "/state").json()
    assert state["requests"] == {"BTCUSDT": 1}
    assert simulator.api_key not in httpx.get(admin + "/state").text


def test_fast_clock_serves_a_new_bucket_each_time(simulator_factory):
    sim = simulator_factory(start=SIM_START, speed=3600.0, frozen_at=None)
    stamps = {_get(sim).json()["meta"]["computed_at"] for _ in range(5)}
    assert len(stamps) == 5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("boom", "unknown fault 'boom'"),
        ("BTC:500", "unknown target 'BTC'"),
        ("500@150%", "outside 0–1"),
        ("500@often", "bad rate"),
        ("404(3)", "takes no argument"),
        ("latency(x)", "must be a number"),
        ("seq=500,,ok", "empty step"),
    ],
)
def test_bad_fault_specs_say_what_to_fix(spec, message):
    with pytest.raises(FaultSpecError, match=message):
        parse_fault_spec(spec)
    with pytest.raises(FaultSpecError):
        SimulatorConfig(faults=spec)


def test_fault_spec_grammar():
    rules = parse_fault_spec(" ETHUSDT : seq=burst(2), ok ,503 ; 500@25% ; HYPEUSDT:hang(999)")
    assert rules[0].target == "ETHUSDT" and [str(s) for s in rules[0].sequence] == [
        "burst(2)",
        "None",
        "503",
    ]
    assert rules[1].target == "*" and rules[1].rate == 0.25
    assert rules[2].fault is not None and rules[2].fault.arg == 120.0  # hangs are bounded


def test_rates_are_deterministic_and_close_to_the_requested_share():
    def run(seed):
        plan = FaultPlan(seed, "500@20%")
        return [plan.next_fault("BTCUSDT") for _ in range(2000)]

    first, again, other = run(3), run(3), run(4)
    assert first == again and first != other
    assert 0.17 <= sum(f is not None for f in first) / 2000 <= 0.23


def test_sequences_run_per_symbol_then_stop():
    plan = FaultPlan(1, "seq=404,ok,502")
    names = [str(plan.next_fault("SOLUSDT")) for _ in range(4)]
    assert names == ["404", "None", "502", "None"]
    assert str(plan.next_fault("BTCUSDT")) == "404"


def test_bad_simulator_settings_are_rejected():
    with pytest.raises(SimulatorConfigError, match="API key"):
        SimulatorConfig(api_key="")
    with pytest.raises(SimulatorConfigError, match="speed"):
        SimulatorConfig(speed=-1)
    with pytest.raises(SimulatorConfigError, match="burst"):
        SimulatorConfig(burst_limit_per_minute=0)


def test_listing_per_symbol_and_settlement_cutoff():
    at = datetime(2026, 3, 27, 7, 59, 59, tzinfo=UTC)
    btc = [e.token for e in live_expiries("BTCUSDT", at)]
    assert btc[0] == "27MAR26" and 10 <= len(btc) <= 12
    after = [e.token for e in live_expiries("BTCUSDT", at + timedelta(seconds=1))]
    assert "27MAR26" not in after
    assert len(live_expiries("SOLUSDT", at)) < len(btc)
    assert len(live_expiries("HYPEUSDT", at)) < len(live_expiries("SOLUSDT", at)) + 1
