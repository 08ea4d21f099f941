"""The synthetic option chain at a bucket: strikes, per-strike call/put OI and the venue split.

Strikes sit on a grid whose step grows with tenor and doubles in the wings. OI per expiry scales
with its calendar type (anchors hold 5–10× a weekly) and thins out for far tenors; within an
expiry it concentrates near the money (calls a little above, puts a little below) and on round
strikes. Per-strike and per-venue tilts are keyed by the expiry token, so they stick for the
expiry's life. OI is held in integer tenths of a coin so every total is an exact sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from backquant.expiry_calendar import Expiry
from backquant.simulator.profiles import PROFILES, Profile
from backquant.simulator.rng import FloatArray, hashed_normal, hashed_uniform, key64
from backquant.simulator.surface import Surface
from backquant.symbols import VENUES

IntArray = npt.NDArray[np.int64]

OI_TENTHS: Final[int] = 10
"""OI is quoted to 0.1 coin, the smallest Deribit option size."""
_TYPE_SCALE: Final[dict[str, float]] = {"daily": 0.3, "weekly": 1.0}
_MIN_GRID_YEARS: Final[float] = 4.0 / 365.0
_OI_SPREAD_SD: Final[float] = 1.3
"""Width of the per-strike OI hump, in ATM standard deviations of log-moneyness."""
_ANCHOR_RANGE: Final[tuple[float, float]] = (5.0, 10.0)
_REGIME_PCR: Final[dict[str, float]] = {"calm": 1.0, "rally": 0.75, "stress": 1.35}


@dataclass(frozen=True, slots=True)
class Chain:
    """Every listed option of one symbol at one bucket, flat over expiries.

    Per-strike arrays share one index; ``expiry_index`` says which expiry a strike belongs to.
    Per-expiry arrays are indexed like ``expiries``.
    """

    spot: float
    expiries: tuple[Expiry, ...]
    surface: Surface
    strike: FloatArray
    expiry_index: IntArray
    call_oi_tenths: IntArray
    put_oi_tenths: IntArray
    venue_call_tenths: IntArray
    """Shape (expiries, venues), in ``VENUES`` order."""
    venue_put_tenths: IntArray
    unattributed_call_tenths: IntArray
    unattributed_put_tenths: IntArray

    @property
    def call_oi(self) -> FloatArray:
        result: FloatArray = self.call_oi_tenths / OI_TENTHS
        return result

    @property
    def put_oi(self) -> FloatArray:
        result: FloatArray = self.put_oi_tenths / OI_TENTHS
        return result

    def strikes_of(self, position: int) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = self.expiry_index == position
        return mask

    def expiry_totals(self, per_strike_tenths: IntArray) -> IntArray:
        totals: IntArray = np.bincount(
            self.expiry_index, weights=per_strike_tenths, minlength=len(self.expiries)
        ).astype(np.int64)
        return totals


def strike_step(profile: Profile, days: float) -> float:
    near, weekly, mid, far = profile.strike_steps
    return near if days <= 2 else weekly if days <= 10 else mid if days <= 100 else far


def _strike_grid(spot: float, atm_sd: float, step: float, span_sd: float) -> FloatArray:
    """Strikes covering ±span_sd ATM s.d. of log-moneyness; step doubles beyond ±1 s.d."""
    low = spot * math.exp(-span_sd * atm_sd)
    high = spot * math.exp(span_sd * atm_sd)
    inner_low = spot * math.exp(-atm_sd)
    inner_high = spot * math.exp(atm_sd)
    wide = 2.0 * step
    grid = np.concatenate(
        (
            np.arange(math.ceil(low / wide), math.ceil(inner_low / wide)) * wide,
            np.arange(math.ceil(inner_low / step), math.floor(inner_high / step) + 1) * step,
            np.arange(math.floor(inner_high / wide) + 1, math.floor(high / wide) + 1) * wide,
        )
    )
    grid = np.unique(grid[grid > 0])
    if grid.size == 0:
        grid = np.array([max(round(spot / step), 1) * step])
    return grid


def _expiry_oi(
    seed: int, profile: Profile, expiries: Sequence[Expiry], t: FloatArray, day: int
) -> FloatArray:
    """Total OI per expiry in coins, before the per-strike split."""
    anchor_key = key64(seed, "anchor-scale", profile.symbol)
    ordinals = np.array([e.expiry_date.toordinal() for e in expiries if e.expiry_date is not None])
    low, high = _ANCHOR_RANGE
    anchor_scale = low + (high - low) * hashed_uniform(anchor_key, ordinals)
    scale = np.array([_TYPE_SCALE.get(e.type, 0.0) for e in expiries], dtype=np.float64) + np.where(
        [e.is_anchor for e in expiries], anchor_scale, 0.0
    )
    # Far anchors have not built their OI yet; OI also bleeds out over the last day.
    far_decay = np.exp(-np.maximum(t - 0.25, 0.0) / 0.45)
    last_day = np.clip(0.55 + 0.45 * t * 365.0, 0.55, 1.0)
    sticky = np.exp(0.15 * hashed_normal(key64(seed, "expiry-oi", profile.symbol), ordinals))
    drift = np.exp(0.08 * hashed_normal(key64(seed, "oi-day", profile.symbol), ordinals * 7 + day))
    result: FloatArray = profile.weekly_oi * scale * far_decay * last_day * sticky * drift
    return result


def build_chain(
    seed: int,
    symbol: str,
    spot: float,
    day: int,
    expiries: Sequence[Expiry],
    surface: Surface,
) -> Chain:
    profile = PROFILES[symbol]
    t = surface.t_years
    # Strikes were listed days before expiry, so even a 0DTE keeps a grid of several days' width.
    grid_sd = surface.atm_vol * np.sqrt(np.maximum(t, _MIN_GRID_YEARS))
    ordinals = np.array([e.expiry_date.toordinal() for e in expiries if e.expiry_date is not None])
    span = np.full(len(expiries), profile.strike_span_sd)
    if profile.thin:
        span = span * (0.45 + 0.6 * hashed_uniform(key64(seed, "thin-span", symbol), ordinals))
    grids = [
        _strike_grid(spot, float(grid_sd[i]), strike_step(profile, float(t[i]) * 365.0), span[i])
        for i in range(len(expiries))
    ]
    strike = np.concatenate(grids)
    index = np.repeat(np.arange(len(expiries)), [g.size for g in grids])
    min_step = profile.strike_steps[0]

    z = np.log(strike / spot) / grid_sd[index]
    lattice = np.rint(strike / min_step).astype(np.int64)
    steps = np.array([strike_step(profile, float(x) * 365.0) for x in t])[index]
    units = np.rint(strike / steps).astype(np.int64)
    roundness = np.ones_like(strike)
    for multiple, boost in ((2, 1.3), (5, 2.0), (10, 3.0)):
        roundness = np.where(units % multiple == 0, boost, roundness)
    tilt_key = key64(seed, "strike-tilt", symbol)
    call_tilt = np.exp(0.35 * hashed_normal(tilt_key, ordinals[index] * 1_000_003 + lattice))
    put_tilt = np.exp(0.35 * hashed_normal(tilt_key ^ 1, ordinals[index] * 1_000_003 + lattice))
    call_weight = np.exp(-0.5 * ((z - 0.35) / _OI_SPREAD_SD) ** 2) * roundness * call_tilt
    put_weight = np.exp(-0.5 * ((z + 0.35) / _OI_SPREAD_SD) ** 2) * roundness * put_tilt

    total = _expiry_oi(seed, profile, expiries, t, day)
    pcr_key = key64(seed, "pcr", symbol)
    pcr = np.exp(math.log(0.7) + 0.3 * hashed_normal(pcr_key, ordinals * 7 + day))
    pcr = np.clip(pcr * _REGIME_PCR.get(surface.regime.name, 1.0), 0.3, 1.5)
    call_total = total / (1.0 + pcr)
    put_total = total - call_total
    call_oi = _split(call_weight, index, call_total, len(expiries))
    put_oi = _split(put_weight, index, put_total, len(expiries))

    n = len(expiries)
    call_sum = np.bincount(index, weights=call_oi, minlength=n).astype(np.int64)
    put_sum = np.bincount(index, weights=put_oi, minlength=n).astype(np.int64)
    venue_key = key64(seed, "venue", symbol)
    venue_counters = ordinals[:, None] * 16 + np.arange(len(VENUES))[None, :]
    shares = np.asarray(profile.venue_shares)[None, :] * np.exp(
        0.25 * hashed_normal(venue_key, venue_counters)
    )
    shares = shares / shares.sum(axis=1, keepdims=True) * (1.0 - profile.unattributed_share)
    venue_call = _allocate(call_sum, shares)
    venue_put = _allocate(put_sum, shares)
    return Chain(
        spot=spot,
        expiries=tuple(expiries),
        surface=surface,
        strike=strike,
        expiry_index=index,
        call_oi_tenths=call_oi,
        put_oi_tenths=put_oi,
        venue_call_tenths=venue_call,
        venue_put_tenths=venue_put,
        unattributed_call_tenths=call_sum - venue_call.sum(axis=1),
        unattributed_put_tenths=put_sum - venue_put.sum(axis=1),
    )


def _split(weight: FloatArray, index: IntArray, totals: FloatArray, n: int) -> IntArray:
    """Spread each expiry's total over its strikes in proportion to ``weight``, in tenths."""
    norm = np.bincount(index, weights=weight, minlength=n)
    share = weight / np.where(norm > 0, norm, 1.0)[index]
    tenths: IntArray = np.rint(share * totals[index] * OI_TENTHS).astype(np.int64)
    return tenths


def _allocate(totals: IntArray, shares: FloatArray) -> IntArray:
    """Integer tenths per venue; the rounding remainder goes to the largest venue, and whatever
    the shares leave unassigned (thin chains) stays unattributed."""
    attributed = np.rint(totals * shares.sum(axis=1)).astype(np.int64)
    parts = np.floor(totals[:, None] * shares).astype(np.int64)
    largest = np.argmax(shares, axis=1)
    rows = np.arange(len(totals))
    parts[rows, largest] += attributed - parts.sum(axis=1)
    result: IntArray = parts
    return result
