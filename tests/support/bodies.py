"""Hand-built expiry-summary bodies for tests that must not depend on the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from backquant.expiry_calendar import classify, format_token
from backquant.symbols import VENUES


def expiry_row(token: str, *, spot: float = 100_000.0, call_oi: float = 600.0) -> dict[str, Any]:
    info = classify(token)
    put_oi = call_oi * 0.8
    total = call_oi + put_oi
    by_venue = {
        venue: {"call_oi": 0.0, "put_oi": 0.0, "total_oi": 0.0, "notional_oi_usd": 0.0}
        for venue in VENUES
    }
    by_venue["deribit"] = {
        "call_oi": call_oi,
        "put_oi": put_oi,
        "total_oi": total,
        "notional_oi_usd": total * spot,
    }
    return {
        "expiry": token,
        "type": info.type,
        "is_anchor": info.is_anchor,
        "dte": 7,
        "atm_iv": 48.5,
        "skew_25d": 3.5,
        "put_25d_iv": 52.0,
        "call_25d_iv": 48.5,
        "pcr": put_oi / call_oi,
        "call_oi": call_oi,
        "put_oi": put_oi,
        "total_oi": total,
        "net_gex": 1.25e7,
        "expiry_date": info.expiry_date.isoformat() if info.expiry_date else None,
        "notional_oi_usd": total * spot,
        "max_pain": {"strike": 98_000.0, "value": 4.2e7},
        "by_venue": by_venue,
        "by_venue_unattributed": None,
    }


def summary_document(
    symbol: str = "BTCUSDT",
    *,
    computed_at: datetime | None = None,
    tokens: tuple[str, ...] | None = None,
    spot: float = 100_000.0,
    request_id: str = "req_test0001",
) -> dict[str, Any]:
    computed = computed_at or datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
    if tokens is None:
        base = computed.date()
        tokens = tuple(format_token(base + timedelta(days=offset)) for offset in (1, 4, 25, 115))
    rows = [expiry_row(token, spot=spot) for token in tokens]
    counts = {
        kind: sum(1 for row in rows if row["type"] == kind)
        for kind in ("daily", "weekly", "monthly", "quarterly")
    }
    return {
        "success": True,
        "data": {
            "expiries": rows,
            "anchor_count": sum(1 for row in rows if row["is_anchor"]),
            "type_counts": counts,
        },
        "meta": {
            "version": "2.7",
            "timestamp": (computed + timedelta(seconds=12)).isoformat().replace("+00:00", "Z"),
            "request_id": request_id,
            "symbol": symbol,
            "spot_price": spot,
            "computed_at": computed.isoformat().replace("+00:00", "Z"),
            "freshness_seconds": 12.0,
            "source": ["deribit", "bybit", "okx", "binance"],
        },
    }


def summary_body(symbol: str = "BTCUSDT", **kwargs: Any) -> bytes:
    return orjson.dumps(summary_document(symbol, **kwargs))


def error_body(
    code: str, message: str, details: dict[str, Any] | None = None, request_id: str = "req_err0001"
) -> bytes:
    return orjson.dumps(
        {
            "success": False,
            "error": {"code": code, "message": message, "details": details},
            "meta": {
                "version": "2.7",
                "timestamp": "2026-03-02T12:00:00Z",
                "request_id": request_id,
            },
        }
    )
