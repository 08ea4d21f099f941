"""The synthetic market: one call gives the expiry-summary body for any symbol and instant.

State depends only on (seed, symbol, 30-second bucket), so ``Market(seed)`` in any process gives
the same body for the same instant, byte for byte. Computed buckets sit in a bounded LRU cache as
pre-serialised ``data`` JSON; only the small meta block is built per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from backquant.simulator.chain import Chain, build_chain
from backquant.simulator.clock import iso_z, utc
from backquant.simulator.envelope import meta, request_id
from backquant.simulator.listing import live_expiries
from backquant.simulator.metrics import compute_metrics
from backquant.simulator.spot import (
    BUCKET_SECONDS,
    BUCKETS_PER_DAY,
    EPOCH,
    bucket_of,
    spot_at,
)
from backquant.simulator.summary import build_data, source_venues
from backquant.simulator.surface import build_surface
from backquant.symbols import SUPPORTED_SYMBOLS

DEFAULT_CACHE_SIZE: Final[int] = 4096


def bucket_start(bucket: int) -> datetime:
    return EPOCH + timedelta(seconds=bucket * BUCKET_SECONDS)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One symbol's computed summary for one bucket."""

    symbol: str
    bucket: int
    computed_at: datetime
    spot: float
    source: tuple[str, ...]
    expiry_count: int
    data_json: bytes
    """The ``data`` block, already serialised (orjson)."""

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.data_json)
        return parsed


class Market:
    """The seeded synthetic options market for the four symbols."""

    def __init__(self, seed: int = 7, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.seed = seed
        self._cache: OrderedDict[tuple[str, int], Snapshot] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def chain(self, symbol: str, at: datetime) -> Chain:
        """The full chain (strikes, OI, smiles) behind the summary for ``at``'s bucket."""
        return self._chain(_checked(symbol), bucket_of(utc(at)))

    def snapshot(self, symbol: str, bucket: int) -> Snapshot:
        key = (_checked(symbol), bucket)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        snapshot = self._compute(symbol, bucket)
        with self._lock:
            self._cache[key] = snapshot
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return snapshot

    def cache_size(self) -> int:
        with self._lock:
            return len(self._cache)

    def expiry_summary(self, symbol: str, at: datetime) -> dict[str, Any]:
        """The success body for the bucket containing ``at``, as served to the first request
        for that bucket with the clock at ``at``."""
        body: dict[str, Any] = orjson.loads(self.expiry_summary_bytes(symbol, at))
        return body

    def expiry_summary_bytes(
        self, symbol: str, at: datetime, *, sequence: int = 0, lag_s: float = 0.0
    ) -> bytes:
        """The body bytes; ``sequence`` numbers repeated requests within one bucket (it only
        changes ``request_id``) and ``lag_s`` serves an older bucket (stale data)."""
        now = utc(at)
        snapshot = self.snapshot(symbol, bucket_of(now - timedelta(seconds=lag_s)))
        return orjson.dumps(
            {
                "success": True,
                "data": orjson.Fragment(snapshot.data_json),
                "meta": self.summary_meta(snapshot, now, sequence),
            }
        )

    def summary_meta(self, snapshot: Snapshot, now: datetime, sequence: int) -> dict[str, Any]:
        freshness = round((now - snapshot.computed_at).total_seconds(), 3)
        return meta(
            now,
            request_id(self.seed, snapshot.symbol, bucket_of(now), sequence),
            symbol=snapshot.symbol,
            spot_price=snapshot.spot,
            computed_at=iso_z(snapshot.computed_at),
            freshness_seconds=freshness,
            source=list(snapshot.source),
            extra={"expiry_count": snapshot.expiry_count},
        )

    def expiries(self, symbol: str, at: datetime) -> list[dict[str, Any]]:
        """Active tokens with DTE and ISO date, nearest first (``/v2/expiries``)."""
        now = utc(at)
        return [
            {
                "expiry": e.token,
                "expiry_date": e.expiry_date.isoformat() if e.expiry_date else None,
                "dte": (e.expiry_date - now.date()).days if e.expiry_date else None,
                "type": e.type,
                "is_anchor": e.is_anchor,
            }
            for e in live_expiries(_checked(symbol), now)
        ]

    def _chain(self, symbol: str, bucket: int) -> Chain:
        at = bucket_start(bucket)
        expiries = live_expiries(symbol, at)
        surface = build_surface(self.seed, symbol, bucket, at, expiries)
        spot = spot_at(self.seed, symbol, bucket)
        return build_chain(self.seed, symbol, spot, bucket // BUCKETS_PER_DAY, expiries, surface)

    def _compute(self, symbol: str, bucket: int) -> Snapshot:
        chain = self._chain(symbol, bucket)
        at = bucket_start(bucket)
        data = build_data(chain, compute_metrics(chain), at.date())
        return Snapshot(
            symbol=symbol,
            bucket=bucket,
            computed_at=at,
            spot=chain.spot,
            source=tuple(source_venues(chain)),
            expiry_count=len(data["expiries"]),
            data_json=orjson.dumps(data),
        )


def _checked(symbol: str) -> str:
    if symbol not in SUPPORTED_SYMBOLS:
        raise ValueError(
            f"unsupported symbol {symbol!r}; choose from {', '.join(SUPPORTED_SYMBOLS)}"
        )
    return symbol


__all__ = ["Market", "Snapshot", "bucket_start"]
