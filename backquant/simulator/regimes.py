"""Volatility regimes shared by every symbol: calm, call-skew rally, stress.

Each 14-day block draws one regime (a pure function of seed and block index, so any date is
computed directly); parameters blend smoothly over the last days of a block so vol levels do not
jump at block edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from backquant.simulator.rng import hashed_uniform, key64

BLOCK_DAYS: Final[int] = 14
BLEND_DAYS: Final[float] = 3.0


@dataclass(frozen=True, slots=True)
class Regime:
    name: str
    vol_mult: float
    """Multiplier on the symbol's calm daily return vol."""
    atm_add: float
    """Vol points added to the symbol's calm 30-day ATM level."""
    slope: float
    """ATM vol points per unit of ln(T / 30 days): positive = upward-sloping term structure."""
    rho: float
    """SVI correlation: negative = put skew, positive = call skew."""
    b_mult: float
    """Multiplier on the SVI wing slope: stressed smiles are steeper."""


CALM: Final[Regime] = Regime("calm", vol_mult=1.0, atm_add=0.0, slope=5.5, rho=-0.1, b_mult=1.0)
RALLY: Final[Regime] = Regime("rally", vol_mult=1.3, atm_add=6.0, slope=3.5, rho=0.25, b_mult=1.15)
STRESS: Final[Regime] = Regime(
    "stress", vol_mult=2.0, atm_add=24.0, slope=-7.0, rho=-0.5, b_mult=1.7
)
_LADDER: Final[tuple[tuple[float, Regime], ...]] = ((0.65, CALM), (0.80, RALLY), (1.0, STRESS))


def regime_of_block(seed: int, block: int) -> Regime:
    draw = float(hashed_uniform(key64(seed, "regime"), [block])[0])
    return next(regime for ceiling, regime in _LADDER if draw < ceiling)


def regime_at(seed: int, day: float) -> Regime:
    """The (blended) regime at a fractional day since the epoch."""
    block = int(day // BLOCK_DAYS)
    current = regime_of_block(seed, block)
    into_blend = day - (block + 1) * BLOCK_DAYS + BLEND_DAYS
    if into_blend <= 0:
        return current
    upcoming = regime_of_block(seed, block + 1)
    x = min(into_blend / BLEND_DAYS, 1.0)
    weight = x * x * (3.0 - 2.0 * x)
    return Regime(
        name=upcoming.name if weight >= 0.5 else current.name,
        vol_mult=current.vol_mult + weight * (upcoming.vol_mult - current.vol_mult),
        atm_add=current.atm_add + weight * (upcoming.atm_add - current.atm_add),
        slope=current.slope + weight * (upcoming.slope - current.slope),
        rho=current.rho + weight * (upcoming.rho - current.rho),
        b_mult=current.b_mult + weight * (upcoming.b_mult - current.b_mult),
    )
