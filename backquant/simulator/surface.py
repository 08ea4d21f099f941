"""The implied-vol surface at a bucket: ATM term structure per listed expiry, then SVI smiles.

ATM 30-day level = the symbol's calm level + the regime's add-on + slow noise, and it rises when
spot has fallen over the last day (spot–vol correlation). Other tenors follow the regime's slope
in ln(T / 30 days) — upward in calm markets, inverted under stress — with extra noise at short
tenors. Total variance is then forced non-decreasing in T, as SVI surfaces must be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np

from backquant.expiry_calendar import Expiry, years_to_expiry
from backquant.simulator.profiles import PROFILES
from backquant.simulator.regimes import Regime, regime_at
from backquant.simulator.rng import FloatArray, hashed_normal, key64
from backquant.simulator.smile import SviSmiles
from backquant.simulator.spot import BUCKETS_PER_DAY, atm_noise, log_level

THIRTY_DAYS_YEARS: Final[float] = 30.0 / 365.0
_SHORTEST_SLOPE_YEARS: Final[float] = 3.0 / 365.0
"""Below three days the slope stops pulling ATM down; short-tenor noise dominates instead."""
_HOUR_BUCKETS: Final[int] = 120
_SPOT_VOL_BETA: Final[float] = 60.0
"""Vol points added per unit of negative 24-hour log return (a 1 % drop adds 0.6 points)."""


@dataclass(frozen=True, slots=True)
class Surface:
    regime: Regime
    t_years: FloatArray
    atm_vol: FloatArray
    """ATM vol per expiry, fraction."""
    smiles: SviSmiles


def build_surface(
    seed: int, symbol: str, bucket: int, at: datetime, expiries: Sequence[Expiry]
) -> Surface:
    profile = PROFILES[symbol]
    regime = regime_at(seed, bucket / BUCKETS_PER_DAY)
    t = np.array([years_to_expiry(e.expiry_at, at) for e in expiries if e.expiry_at is not None])
    ret_24h = log_level(seed, symbol, bucket) - log_level(seed, symbol, bucket - BUCKETS_PER_DAY)
    level_30d = (
        profile.atm_30d
        + regime.atm_add
        + 3.0 * atm_noise(seed, symbol, bucket)
        - _SPOT_VOL_BETA * ret_24h
    )
    noise_key = key64(seed, "tenor-noise", symbol)
    ordinals = np.array([e.expiry_date.toordinal() for e in expiries if e.expiry_date is not None])
    hour = bucket // _HOUR_BUCKETS
    tenor_noise = hashed_normal(noise_key, ordinals * 1_000_003 + hour)
    days = np.maximum(t * 365.0, 0.5)
    short_tenor_scale = np.minimum(2.5 * np.sqrt(7.0 / days), 6.0)
    atm_points = level_30d + regime.slope * np.log(
        np.maximum(t, _SHORTEST_SLOPE_YEARS) / THIRTY_DAYS_YEARS
    )
    atm_points = np.clip(atm_points + short_tenor_scale * tenor_noise, 18.0, 250.0)
    atm = atm_points / 100.0
    # Calendar-arbitrage guard: total variance σ²T must not decrease with T.
    total_variance = np.maximum.accumulate(atm * atm * t)
    atm = np.sqrt(total_variance / t)
    rho_noise = hashed_normal(noise_key ^ 1, ordinals * 1_000_003 + hour)
    rho = np.clip(regime.rho + profile.rho_shift + 0.05 * rho_noise, -0.9, 0.9)
    smiles = SviSmiles.calibrate(
        atm,
        t,
        b_per_sqrt_year=profile.svi_b * regime.b_mult,
        s_per_sqrt_year=profile.svi_s,
        rho=rho,
    )
    return Surface(regime=regime, t_years=t, atm_vol=atm, smiles=smiles)
