"""BackQuant's v2 envelope: meta blocks, request ids and error bodies, serialised with orjson."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final

import orjson

from backquant.simulator.clock import iso_z

API_VERSION: Final[str] = "2.7"
"""What ``meta.version`` says; BackQuant bumps it with minor releases (clients must not pin it)."""

ERROR_STATUS: Final[dict[str, tuple[int, ...]]] = {
    "UNAUTHORIZED": (401,),
    "FORBIDDEN": (403,),
    "NOT_FOUND": (404,),
    "VALIDATION_ERROR": (400, 422),
    "RATE_LIMIT_EXCEEDED": (429,),
    "UPSTREAM_ERROR": (502, 503, 504),
    "INTERNAL_ERROR": (500,),
}


def request_id(seed: int, scope: str, bucket: int, sequence: int) -> str:
    """``req_`` + 16 hex digits derived from seed, scope (symbol or route), bucket and the
    request's sequence number within that scope and bucket — so it is reproducible."""
    text = f"{seed}|{scope}|{bucket}|{sequence}".encode()
    return "req_" + hashlib.blake2b(text, digest_size=8).hexdigest()


def meta(now: datetime, request: str, **fields: Any) -> dict[str, Any]:
    return {"version": API_VERSION, "timestamp": iso_z(now), "request_id": request, **fields}


def success_body(data: Any, meta_block: dict[str, Any]) -> bytes:
    return orjson.dumps({"success": True, "data": data, "meta": meta_block})


def error_body(
    code: str,
    message: str,
    now: datetime,
    request: str,
    details: dict[str, Any] | None = None,
) -> bytes:
    return orjson.dumps(
        {
            "success": False,
            "error": {"code": code, "message": message, "details": details},
            "meta": meta(now, request),
        }
    )
