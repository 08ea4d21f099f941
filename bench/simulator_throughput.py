"""How many expiry-summary responses per second the simulator sustains on loopback.

The server runs in its own process (one uvicorn worker, as ``termstore simulator`` runs it);
several concurrent httpx clients in this process hammer ``/v2/options/expiry-summary`` across the
four symbols for a fixed time. Two scenarios:

- ``fixed_clock``: the clock is frozen, so every answer comes from the bucket cache;
- ``fast_clock``: the clock runs at 60,000× so (almost) every request lands in a new 30-second
  bucket and the market is computed afresh.

Run: ``.venv/bin/python -m bench.simulator_throughput [--seconds 8] [--clients 8]``.
Writes bench/results/simulator_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from typing import Any

import httpx

from backquant.simulator.config import DEFAULT_SIMULATOR_KEY
from backquant.symbols import SUPPORTED_SYMBOLS
from bench.common import load_average, write_results

COMMAND = ".venv/bin/python -m bench.simulator_throughput"
SERVER = """
import sys, uvicorn
from datetime import datetime
from backquant.simulator import SimulatorConfig, create_app
port, speed = int(sys.argv[1]), float(sys.argv[2])
config = SimulatorConfig(seed=7, start=datetime.fromisoformat("2026-03-02T12:00:00+00:00"),
                         speed=speed or 1.0, burst_limit_per_minute=10**9, monthly_quota=10**12)
app = create_app(config)
if speed == 0.0:
    app.state.clock.set(config.start)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_up(base_url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + "/v2/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"simulator at {base_url} did not start within {timeout_s} s")


async def _client(base_url: str, stop_at: float, latencies: list[float], index: int) -> int:
    failures = 0
    headers = {"X-API-Key": DEFAULT_SIMULATOR_KEY}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10.0) as client:
        n = index
        while time.monotonic() < stop_at:
            symbol = SUPPORTED_SYMBOLS[n % len(SUPPORTED_SYMBOLS)]
            n += 1
            started = time.perf_counter()
            response = await client.get("/v2/options/expiry-summary", params={"symbol": symbol})
            latencies.append(time.perf_counter() - started)
            failures += response.status_code != 200
    return failures


async def _load(base_url: str, clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    started = time.monotonic()
    stop_at = started + seconds
    errors = await asyncio.gather(
        *(_client(base_url, stop_at, latencies, i) for i in range(clients))
    )
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "responses": len(latencies),
        "non_200": sum(errors),
        "seconds": round(elapsed, 3),
        "responses_per_s": round(len(latencies) / elapsed, 1),
        "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "latency_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
    }


def run_scenario(name: str, speed: float, clients: int, seconds: float) -> dict[str, Any]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(speed)])
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_up(base_url)
        asyncio.run(_load(base_url, clients, 1.0))  # warm-up: imports, caches, connections
        result = asyncio.run(_load(base_url, clients, seconds))
        state = httpx.get(base_url + "/_simulator/state").json()
        result["cached_buckets_after"] = state["cached_buckets"]
    finally:
        server.terminate()
        server.wait(timeout=10)
    result.update({"scenario": name, "clock_speed": speed, "clients": clients})
    print(json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    load_before = load_average()
    results = [
        run_scenario("fixed_clock", 0.0, args.clients, args.seconds),
        run_scenario("fast_clock", 60_000.0, args.clients, args.seconds),
    ]
    command = f"{COMMAND} --seconds {args.seconds:g} --clients {args.clients}"
    path = write_results(
        "simulator_throughput",
        command,
        {
            "note": "server in its own process, one uvicorn worker; clients share the machine",
            "results": results,
            "load_average_before_after": [load_before, load_average()],
        },
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
