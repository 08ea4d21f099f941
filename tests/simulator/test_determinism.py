"""Same seed, symbol and instant → the same body, byte for byte, across processes and over HTTP."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import orjson

from backquant.simulator.market import Market
from tests.support.simulator import running_simulator

INSTANTS = ["2025-07-04T09:13:27+00:00", "2026-03-27T07:59:59+00:00", "2027-01-15T23:59:45+00:00"]
SCRIPT = """
import hashlib, sys
from datetime import datetime
import httpx
from backquant.simulator.market import Market
from tests.support.simulator import running_simulator
instants = sys.argv[1].split(",")
market = Market(11)
for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "HYPEUSDT"):
    for text in instants:
        body = market.expiry_summary_bytes(symbol, datetime.fromisoformat(text))
        print(symbol, text, hashlib.sha256(body).hexdigest())
with running_simulator(seed=11, frozen_at=datetime.fromisoformat(instants[0])) as sim:
    raw = httpx.get(sim.base_url + "/v2/options/expiry-summary", params={"symbol": "ETHUSDT"},
                    headers={"X-API-Key": sim.api_key}).content
    print("http", hashlib.sha256(raw).hexdigest())
"""


def _run_child() -> list[str]:
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(INSTANTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return completed.stdout.splitlines()


def test_two_processes_produce_identical_bodies():
    first, second = _run_child(), _run_child()
    assert len(first) == 13
    assert first == second
    market = Market(11)
    here = [
        f"{symbol} {text} "
        + hashlib.sha256(
            market.expiry_summary_bytes(symbol, datetime.fromisoformat(text))
        ).hexdigest()
        for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "HYPEUSDT")
        for text in INSTANTS
    ]
    assert first[:-1] == here
    http_hash = first[-1].split()[1]
    expected = Market(11).expiry_summary_bytes("ETHUSDT", datetime.fromisoformat(INSTANTS[0]))
    assert http_hash == hashlib.sha256(expected).hexdigest()


def test_first_http_answer_equals_the_market_body_and_repeats_differ_only_in_request_id():
    at = datetime(2026, 5, 5, 10, 0, 10, tzinfo=UTC)
    with running_simulator(seed=5, frozen_at=at) as sim:

        def get() -> bytes:
            return httpx.get(
                sim.base_url + "/v2/options/expiry-summary",
                params={"symbol": "BTCUSDT"},
                headers={"X-API-Key": sim.api_key},
            ).content

        first, second = get(), get()
    assert first == Market(5).expiry_summary_bytes("BTCUSDT", at)
    one, two = orjson.loads(first), orjson.loads(second)
    assert one["meta"].pop("request_id") != two["meta"].pop("request_id")
    assert one == two


def test_seeds_and_buckets_change_the_market():
    at = datetime(2026, 5, 5, 10, 0, 10, tzinfo=UTC)
    later = datetime(2026, 5, 5, 10, 0, 40, tzinfo=UTC)
    same_bucket = datetime(2026, 5, 5, 10, 0, 29, tzinfo=UTC)
    a, b = Market(1), Market(2)
    assert a.expiry_summary("BTCUSDT", at)["data"] != b.expiry_summary("BTCUSDT", at)["data"]
    assert a.expiry_summary("BTCUSDT", at)["data"] != a.expiry_summary("BTCUSDT", later)["data"]
    assert (
        a.expiry_summary("BTCUSDT", at)["data"] == a.expiry_summary("BTCUSDT", same_bucket)["data"]
    )
