"""How each answer goes on the wire: JSON responses with the rate-limit headers, the error
envelopes for every code, and the faults that damage the body or the connection itself."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from backquant.simulator.envelope import error_body

JSON: Final[str] = "application/json"
PROXY_PAGE: Final[bytes] = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)

ERROR_MESSAGES: Final[dict[int, tuple[str, str]]] = {
    401: ("UNAUTHORIZED", "Invalid API key"),
    403: ("FORBIDDEN", "Your plan does not include API access; the subscription must be active"),
    500: ("INTERNAL_ERROR", "Internal server error"),
    502: ("UPSTREAM_ERROR", "Upstream cache unavailable (redis)"),
    503: ("UPSTREAM_ERROR", "Upstream database unavailable (postgres)"),
    504: ("UPSTREAM_ERROR", "Upstream timed out"),
}


def json_response(body: bytes, status: int, headers: dict[str, str]) -> Response:
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    now: datetime,
    request_id: str,
    headers: dict[str, str],
    details: dict[str, Any] | None = None,
) -> Response:
    body = error_body(code, message, now, request_id, details)
    return json_response(body, status, {**headers, "X-Request-ID": request_id})


class SimulatedResetError(ConnectionResetError):
    """Raised mid-response on purpose so uvicorn drops the connection (the ``reset`` fault)."""


class DroppedConnection(Response):
    """Announces the full body, sends half of it, then aborts: the client sees the peer close
    the connection before the message is complete."""

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(body, status_code=200, headers=headers, media_type=JSON)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise SimulatedResetError("simulated connection reset (fault 'reset')")


class _QuietResets(logging.Filter):
    """Keeps uvicorn from logging the deliberate resets as application errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, SimulatedResetError)


def silence_simulated_resets() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietResets) for f in logger.filters):
        logger.addFilter(_QuietResets())


def drift(body: bytes, kind: str) -> bytes:
    """The body with the named kind of schema drift applied."""
    document = orjson.loads(body)
    rows: list[dict[str, Any]] = document["data"]["expiries"]
    if kind == "drift-unknown":
        document["data"]["generated_by"] = "gex-worker-7"
        for row in rows:
            row["vanna_usd"] = round((row.get("net_gex") or 0.0) * 0.1, 2)
    elif kind == "drift-missing-optional":
        for row in rows:
            for name in ("max_pain", "by_venue", "by_venue_unattributed", "notional_oi_usd"):
                row.pop(name, None)
        for name in ("source", "freshness_seconds"):
            document["meta"].pop(name, None)
    elif kind == "drift-wrong-type":
        for row in rows:
            row["dte"] = str(row["dte"])
    elif kind == "drift-missing-required":
        for row in rows:
            row.pop("type", None)
    else:
        raise ValueError(f"not a drift fault: {kind}")
    return orjson.dumps(document)
