"""Spot paths: a daily random walk cumulated by cached blocks, plus an intraday Brownian bridge.

Daily closes (00:00 UTC) come from returns that load on a common crypto factor and a symbol factor,
scaled by the regime's vol. The level at any day is the sum of whole cached 128-day blocks from the
epoch, so a year ahead costs a few vectorised blocks, never a day-by-day simulation. Between two
closes the path is a Brownian bridge on the 30-second grid, pinned to both closes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

import numpy as np

from backquant.simulator.profiles import PROFILES
from backquant.simulator.regimes import regime_at
from backquant.simulator.rng import FloatArray, generator, hashed_normal, key64

EPOCH: Final[datetime] = datetime(2025, 1, 1, tzinfo=UTC)
BLOCK: Final[int] = 128
BUCKET_SECONDS: Final[int] = 30
_LEVEL_BAND: Final[float] = 1.1
"""Soft bound on |ln(spot / spot_at_epoch)|: prices stay within about e^±1.1 of the epoch level."""
BUCKETS_PER_DAY: Final[int] = 86_400 // BUCKET_SECONDS


def bucket_of(instant: datetime) -> int:
    """Index of the 30-second bucket containing ``instant``, counted from the epoch."""
    return math.floor((instant - EPOCH).total_seconds() / BUCKET_SECONDS)


@lru_cache(maxsize=256)
def _block_returns(seed: int, symbol: str, block: int) -> FloatArray:
    profile = PROFILES[symbol]
    common = generator(seed, "daily", "common", block).standard_normal(BLOCK)
    own = generator(seed, "daily", symbol, block).standard_normal(BLOCK)
    beta = min(profile.market_beta, 1.0)
    shocks = beta * common + math.sqrt(1.0 - beta * beta) * own
    days = np.arange(block * BLOCK, (block + 1) * BLOCK)
    vols = np.array([profile.daily_vol * regime_at(seed, float(d)).vol_mult for d in days])
    returns: FloatArray = vols * shocks - 0.5 * vols * vols
    return returns


@lru_cache(maxsize=1024)
def _level_at_block_start(seed: int, symbol: str, block: int) -> float:
    """Cumulative log return from the epoch to the first day of ``block``."""
    if block == 0:
        return 0.0
    if block > 0:
        previous = _level_at_block_start(seed, symbol, block - 1)
        return previous + float(_block_returns(seed, symbol, block - 1).sum())
    following = _level_at_block_start(seed, symbol, block + 1)
    return following - float(_block_returns(seed, symbol, block).sum())


def _warm_levels(seed: int, symbol: str, block: int) -> None:
    # Fill the recursion cache from the epoch outwards so deep recursion never happens.
    step = 1 if block >= 0 else -1
    for b in range(0, block, step):
        _level_at_block_start(seed, symbol, b)


def daily_log_level(seed: int, symbol: str, day: int) -> float:
    """ln(spot / spot_at_epoch) at 00:00 UTC of ``day`` (days since the epoch).

    The cumulated walk is softly compressed (``c·tanh(x/c)``) so that years of simulated history
    keep prices in a believable band instead of drifting by orders of magnitude."""
    block, offset = divmod(day, BLOCK)
    _warm_levels(seed, symbol, block)
    start = _level_at_block_start(seed, symbol, block)
    walk = start + float(_block_returns(seed, symbol, block)[:offset].sum())
    return _LEVEL_BAND * math.tanh(walk / _LEVEL_BAND)


@lru_cache(maxsize=128)
def _bridge(seed: int, symbol: str, day: int) -> FloatArray:
    """A unit-variance Brownian bridge on the day's 30-second grid, 0 at both ends."""
    steps = generator(seed, "intraday", symbol, day).standard_normal(BUCKETS_PER_DAY)
    walk = np.concatenate(([0.0], np.cumsum(steps))) / math.sqrt(BUCKETS_PER_DAY)
    fraction = np.arange(BUCKETS_PER_DAY + 1) / BUCKETS_PER_DAY
    bridge: FloatArray = walk - fraction * walk[-1]
    return bridge


def log_level(seed: int, symbol: str, bucket: int) -> float:
    """ln(spot / spot_at_epoch) at the start of a 30-second bucket."""
    day, index = divmod(bucket, BUCKETS_PER_DAY)
    start = daily_log_level(seed, symbol, day)
    end = daily_log_level(seed, symbol, day + 1)
    fraction = index / BUCKETS_PER_DAY
    day_vol = PROFILES[symbol].daily_vol * regime_at(seed, float(day)).vol_mult
    return start + fraction * (end - start) + day_vol * float(_bridge(seed, symbol, day)[index])


def spot_at(seed: int, symbol: str, bucket: int) -> float:
    """Spot price at the start of a bucket, rounded as the venue quotes it."""
    profile = PROFILES[symbol]
    raw = profile.spot_at_epoch * math.exp(log_level(seed, symbol, bucket))
    return round(raw, profile.spot_decimals)


def atm_noise(seed: int, symbol: str, bucket: int) -> float:
    """A slowly varying N(0, 1)-scale noise for the ATM level: a 5-day moving average of daily
    draws, interpolated linearly within the day so it never jumps."""
    day, index = divmod(bucket, BUCKETS_PER_DAY)
    draws = hashed_normal(key64(seed, "atm-noise", symbol), np.arange(day - 5, day + 1))
    weights = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / math.sqrt(19.0)
    today = float(np.dot(draws[1:], weights))
    yesterday = float(np.dot(draws[:-1], weights))
    fraction = index / BUCKETS_PER_DAY
    return yesterday + fraction * (today - yesterday)
