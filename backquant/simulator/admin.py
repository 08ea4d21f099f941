"""Admin routes outside ``/v2`` so another process can drive the simulator.

``GET /_simulator/clock`` shows the clock; ``POST /_simulator/clock`` with JSON
``{"at": ISO}`` freezes it, ``{"start": ISO, "speed": X}`` (either optional) lets it run, and
``{"advance_s": N}`` moves it. ``POST /_simulator/faults`` with ``{"spec": "..."}`` replaces the
fault plan. ``GET /_simulator/state`` reports clock, per-symbol request counts and quota use.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backquant.simulator.faults import FaultSpecError

if TYPE_CHECKING:
    from backquant.simulator.app import Simulator


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def _problem(message: str) -> Response:
    return _json({"error": message}, 400)


def _instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be an ISO 8601 string like 2026-03-02T12:00:00Z")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{field}' is not ISO 8601: {value!r}") from None


async def _payload(request: Request) -> dict[str, Any]:
    try:
        payload = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    return payload


async def clock(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    if request.method == "GET":
        return _json(sim.clock.describe())
    try:
        payload = await _payload(request)
        if "at" in payload:
            sim.clock.set(_instant(payload["at"], "at"))
        elif "advance_s" in payload:
            seconds = payload["advance_s"]
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                raise ValueError("'advance_s' must be a number of seconds")
            sim.clock.advance(float(seconds))
        else:
            start = _instant(payload["start"], "start") if "start" in payload else None
            speed = payload.get("speed")
            if speed is not None and (not isinstance(speed, int | float) or not speed > 0):
                raise ValueError("'speed' must be a positive number")
            sim.clock.run(start, None if speed is None else float(speed))
    except ValueError as exc:
        return _problem(
            f"{exc}. Send {{'at': ISO}}, {{'start': ISO, 'speed': X}} or {{'advance_s': N}}"
        )
    return _json(sim.clock.describe())


async def faults(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    try:
        payload = await _payload(request)
        spec = payload.get("spec", "")
        if not isinstance(spec, str):
            raise ValueError("'spec' must be a string")
        sim.set_faults(spec)
    except (ValueError, FaultSpecError) as exc:
        return _problem(str(exc))
    return _json({"spec": spec, "rules": len(sim.faults.rules)})


async def state(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    return _json(
        {
            "seed": sim.config.seed,
            "clock": sim.clock.describe(),
            "requests": sim.faults.requests_seen(),
            "usage": sim.limiter.usage(),
            "cached_buckets": sim.market.cache_size(),
        }
    )


def admin_routes() -> list[Route]:
    return [
        Route("/_simulator/clock", clock, methods=["GET", "POST"]),
        Route("/_simulator/faults", faults, methods=["POST"]),
        Route("/_simulator/state", state, methods=["GET"]),
    ]
