"""The Starlette app: BackQuant v2 routes over the synthetic market, plus admin routes.

Request path for ``/v2/options/expiry-summary``: auth (401) → burst limit and monthly quota
(429, counted for real) → symbol check (422) → fault plan → the market's body. Every authed
answer, errors included, carries the X-RateLimit-* and X-Quota-* headers and X-Request-ID.
Admin routes live outside ``/v2`` under ``/_simulator`` and need no key (loopback tool).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backquant.simulator.admin import admin_routes
from backquant.simulator.clock import SimClock
from backquant.simulator.config import SimulatorConfig
from backquant.simulator.discovery import expiries_data, health_data, meta_data, status_data
from backquant.simulator.envelope import meta, request_id, success_body
from backquant.simulator.faults import Fault, FaultPlan
from backquant.simulator.limits import LimitDecision, Limiter
from backquant.simulator.market import Market
from backquant.simulator.replies import (
    ERROR_MESSAGES,
    PROXY_PAGE,
    DroppedConnection,
    drift,
    error_response,
    json_response,
    silence_simulated_resets,
)
from backquant.simulator.spot import BUCKET_SECONDS, bucket_of
from backquant.symbols import SUPPORTED_SYMBOLS

DEFAULT_SYMBOL = "BTCUSDT"


class Sequencer:
    """Numbers requests per (scope, bucket) so request ids are unique yet reproducible."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def next(self, scope: str, bucket: int) -> int:
        with self._lock:
            last_bucket, count = self._last.get(scope, (bucket, 0))
            number = count if last_bucket == bucket else 0
            self._last[scope] = (bucket, number + 1)
            return number


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of auth + limits for one request."""

    now: datetime
    request_id: str
    sequence: int
    refused: Response | None
    headers: dict[str, str]
    """Limiter headers plus X-Request-ID, for every answer to this request."""


class Simulator:
    """Everything one app instance holds: config, clock, market, limiter, faults."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.clock = SimClock(config.start, config.speed)
        self.market = Market(config.seed)
        self.limiter = Limiter(config.burst_limit_per_minute, config.monthly_quota)
        self.faults = FaultPlan(config.seed, config.faults)
        self.sequencer = Sequencer()
        self.frozen_buckets: dict[str, int] = {}

    def set_faults(self, spec: str) -> None:
        """Replace the fault plan (request counters and sequences restart)."""
        self.faults = FaultPlan(self.config.seed, spec)
        self.frozen_buckets.clear()

    def admit(self, request: Request, scope: str) -> Admission:
        now = self.clock.now()
        bucket = bucket_of(now)
        sequence = self.sequencer.next(scope, bucket)
        rid = request_id(self.config.seed, scope, bucket, sequence)
        sent = request.headers.get("x-api-key")
        if sent is None or not hmac.compare_digest(sent.encode(), self.config.api_key.encode()):
            message = "Missing API key" if sent is None else "Invalid API key"
            unauthorized = error_response(
                401, "UNAUTHORIZED", message, now=now, request_id=rid, headers={}
            )
            return Admission(now, rid, sequence, unauthorized, {"X-Request-ID": rid})
        decision = self.limiter.check(sent, now)
        headers = {**decision.headers, "X-Request-ID": rid}
        refused = None if decision.rejected is None else self._limited(decision, now, rid, headers)
        return Admission(now, rid, sequence, refused, headers)

    def _limited(
        self, decision: LimitDecision, now: datetime, rid: str, headers: dict[str, str]
    ) -> Response:
        if decision.rejected == "quota":
            message = "Monthly request quota exceeded; it resets at 00:00 UTC on the 1st."
        else:
            message = "Rate limit exceeded. Try again later."
        details = {
            "retry_after_seconds": decision.retry_after_s,
            "limit": f"{self.config.burst_limit_per_minute} per 1 minute",
        }
        return error_response(
            429,
            "RATE_LIMIT_EXCEEDED",
            message,
            now=now,
            request_id=rid,
            headers={**headers, "Retry-After": str(decision.retry_after_s)},
            details=details,
        )

    def injected_429(self, fault: Fault, admission: Admission) -> Response:
        """A 429 the fault plan asks for, shaped like the real limiter's."""
        headers = dict(admission.headers)
        seconds = int(fault.arg) if fault.arg is not None else None
        details: dict[str, Any] = {"limit": f"{self.config.burst_limit_per_minute} per 1 minute"}
        message = "Rate limit exceeded. Try again later."
        if fault.name == "quota":
            headers["X-Quota-Used"] = headers["X-Quota-Limit"]
            headers["X-Quota-Remaining"] = "0"
            decision = self.limiter.quota_retry_after(admission.now)
            headers["Retry-After"] = str(decision)
            details["retry_after_seconds"] = decision
            message = "Monthly request quota exceeded; it resets at 00:00 UTC on the 1st."
        elif fault.name == "burst":
            headers["Retry-After"] = str(seconds)
            details["retry_after_seconds"] = seconds
        elif fault.name == "burst-no-header":
            details["retry_after_seconds"] = seconds
        return error_response(
            429,
            "RATE_LIMIT_EXCEEDED",
            message,
            now=admission.now,
            request_id=admission.request_id,
            headers=headers,
            details=details,
        )

    def lag_of(self, symbol: str, fault: Fault | None, now: datetime) -> float:
        """How many seconds old the served data is for this answer."""
        if fault is None:
            return 0.0
        if fault.name == "stale":
            return fault.arg or 0.0
        if fault.name == "frozen":
            frozen = self.frozen_buckets.setdefault(symbol, bucket_of(now))
            return float(max(bucket_of(now) - frozen, 0) * BUCKET_SECONDS)
        return 0.0


def _invalid_symbol(symbol: str, admission: Admission) -> Response:
    allowed = ", ".join(f"'{s}'" for s in SUPPORTED_SYMBOLS)
    details = {
        "errors": [
            {
                "type": "enum",
                "loc": ["query", "symbol"],
                "msg": f"Input should be {allowed}",
                "input": symbol,
            }
        ]
    }
    return error_response(
        422,
        "VALIDATION_ERROR",
        "Invalid request parameters",
        now=admission.now,
        request_id=admission.request_id,
        headers=admission.headers,
        details=details,
    )


def _simulator(request: Request) -> Simulator:
    sim: Simulator = request.app.state.simulator
    return sim


async def expiry_summary(request: Request) -> Response:
    sim = _simulator(request)
    symbol = request.query_params.get("symbol", DEFAULT_SYMBOL)
    admission = sim.admit(request, symbol)
    if admission.refused is not None:
        return admission.refused
    if symbol not in SUPPORTED_SYMBOLS:
        return _invalid_symbol(symbol, admission)
    fault = sim.faults.next_fault(symbol)
    name = fault.name if fault is not None else "ok"
    now, headers = admission.now, admission.headers
    if name.isdigit() and int(name) in ERROR_MESSAGES:
        status = int(name)
        code, message = ERROR_MESSAGES[status]
        return error_response(
            status, code, message, now=now, request_id=admission.request_id, headers=headers
        )
    if name == "404":
        return error_response(
            404,
            "NOT_FOUND",
            f"No data for {symbol}",
            now=now,
            request_id=admission.request_id,
            headers=headers,
        )
    if fault is not None and (name.startswith("burst") or name == "quota"):
        return sim.injected_429(fault, admission)
    if fault is not None and name in ("latency", "hang"):
        await asyncio.sleep(fault.arg or 0.0)
    body = sim.market.expiry_summary_bytes(
        symbol, now, sequence=admission.sequence, lag_s=sim.lag_of(symbol, fault, now)
    )
    if name == "reset":
        return DroppedConnection(body, headers)
    if name == "truncate":
        return json_response(body[: len(body) // 2], 200, headers)
    if name == "nonjson":
        return Response(PROXY_PAGE, 200, headers, media_type="text/html")
    if name.startswith("drift-"):
        return json_response(drift(body, name), 200, headers)
    return json_response(body, 200, headers)


def _authed(
    scope: str, build: Callable[[Simulator, Request, datetime], Any]
) -> Callable[[Request], Awaitable[Response]]:
    """A GET route that needs the key and answers ``{success, data, meta}``."""

    async def endpoint(request: Request) -> Response:
        sim = _simulator(request)
        admission = sim.admit(request, scope)
        if admission.refused is not None:
            return admission.refused
        symbol = request.query_params.get("symbol", DEFAULT_SYMBOL)
        if scope == "expiries" and symbol not in SUPPORTED_SYMBOLS:
            return _invalid_symbol(symbol, admission)
        data = build(sim, request, admission.now)
        body = success_body(data, meta(admission.now, admission.request_id))
        return json_response(body, 200, admission.headers)

    return endpoint


def _status(sim: Simulator, request: Request, now: datetime) -> Any:
    lags: dict[str, float] = {}
    for rule in sim.faults.rules:
        if rule.fault is not None and rule.rate >= 1.0 and rule.fault.name in ("stale", "frozen"):
            targets = SUPPORTED_SYMBOLS if rule.target == "*" else (rule.target,)
            for symbol in targets:
                lags.setdefault(symbol, sim.lag_of(symbol, rule.fault, now))
    return status_data(sim.market, now, lags)


async def health(request: Request) -> Response:
    sim = _simulator(request)
    now = sim.clock.now()
    rid = request_id(
        sim.config.seed, "health", bucket_of(now), sim.sequencer.next("health", bucket_of(now))
    )
    body = success_body(health_data(), meta(now, rid))
    return json_response(body, 200, {"X-Request-ID": rid})


async def not_found(request: Request) -> Response:
    sim = _simulator(request)
    admission = sim.admit(request, "unknown-route")
    if admission.refused is not None:
        return admission.refused
    return error_response(
        404,
        "NOT_FOUND",
        f"No route {request.url.path}",
        now=admission.now,
        request_id=admission.request_id,
        headers=admission.headers,
    )


def create_app(config: SimulatorConfig) -> Starlette:
    """A fresh simulator app; ``app.state.clock`` moves its clock in process."""
    silence_simulated_resets()
    sim = Simulator(config)
    routes = [
        Route("/v2/options/expiry-summary", expiry_summary),
        Route("/v2/health", health),
        Route(
            "/v2/meta",
            _authed(
                "meta",
                lambda s, r, n: meta_data(s.config.burst_limit_per_minute, s.config.monthly_quota),
            ),
        ),
        Route("/v2/status", _authed("status", _status)),
        Route(
            "/v2/expiries",
            _authed(
                "expiries",
                lambda s, r, n: expiries_data(
                    s.market, r.query_params.get("symbol", DEFAULT_SYMBOL), n
                ),
            ),
        ),
        *admin_routes(),
        Route("/v2/{path:path}", not_found),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = sim
    app.state.clock = sim.clock
    app.state.market = sim.market
    app.state.config = config
    return app


__all__ = ["Simulator", "create_app"]
