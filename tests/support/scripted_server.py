"""A loopback HTTP server that answers from a per-symbol script, for client tests.

Each symbol has a queue of ``Reply`` objects; each request pops the next one (the last one repeats).
Requests are recorded so tests can check what the client sent and how often.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from backquant.simulator.runner import RunningServer, serve_in_thread


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    trickle_s: float = 0.0
    """Send the body 64 bytes at a time, this long apart (headers first, at once)."""


async def _trickled(body: bytes, pause_s: float) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 64):
        yield body[start : start + 64]
        await asyncio.sleep(pause_s)


@dataclass
class Recorded:
    symbol: str
    headers: dict[str, str]
    at: float


class ScriptedBackQuant:
    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = defaultdict(list)
        self.requests: list[Recorded] = []
        self.health_body = (
            b'{"success":true,"data":{"status":"ok"},'
            b'"meta":{"version":"2.7","timestamp":"2026-01-01T00:00:00Z"}}'
        )
        self._lock = threading.Lock()

    def script(self, symbol: str, *replies: Reply) -> None:
        with self._lock:
            self.scripts[symbol] = list(replies)

    def count(self, symbol: str) -> int:
        return sum(1 for request in self.requests if request.symbol == symbol)

    async def _summary(self, request: Request) -> Response:
        symbol = request.query_params.get("symbol", "BTCUSDT")
        loop = asyncio.get_running_loop()
        with self._lock:
            self.requests.append(Recorded(symbol, dict(request.headers), loop.time()))
            queue = self.scripts.get(symbol) or [Reply(404, b"{}")]
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.trickle_s:
            return StreamingResponse(
                _trickled(reply.body, reply.trickle_s),
                reply.status,
                reply.headers,
                media_type="application/json",
            )
        return Response(reply.body, reply.status, reply.headers, media_type="application/json")

    async def _health(self, request: Request) -> Response:
        return Response(self.health_body, 200, media_type="application/json")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v2/options/expiry-summary", self._summary),
                Route("/v2/health", self._health),
            ]
        )

    @contextmanager
    def running(self) -> Iterator[RunningServer]:
        with serve_in_thread(self.app()) as server:
            yield server
