"""Bodies of the discovery routes: /v2/meta, /v2/status, /v2/expiries and /v2/health."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from backquant.simulator.clock import iso_z
from backquant.simulator.envelope import API_VERSION, ERROR_STATUS
from backquant.simulator.market import Market, bucket_start
from backquant.simulator.spot import bucket_of
from backquant.symbols import SUPPORTED_SYMBOLS, VENUES

THRESHOLDS: Final[dict[str, dict[str, int]]] = {
    "gex": {"healthy_max_seconds": 60, "degraded_max_seconds": 300},
}
RATE_LIMIT_LADDER: Final[list[dict[str, Any]]] = [
    {"tier": "starter", "monthly": 10_000, "burst_per_minute": 30, "keys": 1},
    {"tier": "standard", "monthly": 250_000, "burst_per_minute": 60, "keys": 2},
    {"tier": "pro", "monthly": 1_000_000, "burst_per_minute": 120, "keys": 5},
    {"tier": "enterprise", "monthly": None, "burst_per_minute": 600, "keys": None},
]


def meta_data(burst_per_minute: int, monthly_quota: int) -> dict[str, Any]:
    return {
        "api_version": API_VERSION,
        "supported_symbols": list(SUPPORTED_SYMBOLS),
        "exchanges": list(VENUES),
        "error_codes": {code: list(statuses) for code, statuses in ERROR_STATUS.items()},
        "auth": {"type": "api_key", "header": "X-API-Key"},
        "rate_limits": {
            "tiers": RATE_LIMIT_LADDER,
            "this_key": {"burst_per_minute": burst_per_minute, "monthly": monthly_quota},
            "burst_scope": "per key",
            "monthly_scope": "per account",
        },
        "envelope": {"success": "bool", "data": "object", "meta": "V2Meta"},
        "links": {
            "openapi": "/v2/openapi.json",
            "docs": "/v2/docs",
            "endpoints": "/v2/endpoints",
        },
    }


def _cell(freshness: float) -> dict[str, Any]:
    limits = THRESHOLDS["gex"]
    if freshness <= limits["healthy_max_seconds"]:
        status = "healthy"
    elif freshness <= limits["degraded_max_seconds"]:
        status = "degraded"
    else:
        status = "unhealthy"
    return {"status": status, "freshness_seconds": round(freshness, 3)}


def status_data(market: Market, now: datetime, lag_s: dict[str, float]) -> dict[str, Any]:
    """Service status; ``lag_s`` is how far behind each symbol's data runs (stale faults)."""
    symbols: dict[str, Any] = {}
    worst = "healthy"
    order = ("healthy", "degraded", "unhealthy", "unavailable")
    for symbol in SUPPORTED_SYMBOLS:
        computed = bucket_start(bucket_of(now)).timestamp() - lag_s.get(symbol, 0.0)
        cell = _cell(max(now.timestamp() - computed, 0.0))
        symbols[symbol] = {"gex": cell, "options": cell, "chain": cell, "liquidation": cell}
        if order.index(cell["status"]) > order.index(worst):
            worst = cell["status"]
    snapshot = market.snapshot("BTCUSDT", bucket_of(now))
    return {
        "service": "backquant-simulator",
        "version": API_VERSION,
        "current_time": iso_z(now),
        "overall_status": worst,
        "symbols": symbols,
        "thresholds": THRESHOLDS,
        "venues": {
            venue: {"chain": "on" if venue in snapshot.source else "off", "tape": "on"}
            for venue in VENUES
        },
    }


def expiries_data(market: Market, symbol: str, now: datetime) -> dict[str, Any]:
    rows = market.expiries(symbol, now)
    return {"symbol": symbol, "expiries": rows, "count": len(rows)}


def health_data() -> dict[str, Any]:
    return {"status": "ok", "redis": True, "db": True}
