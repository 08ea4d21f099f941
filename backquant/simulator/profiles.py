"""Per-symbol calibration of the synthetic market (our own calibration to ../shared/domain.md).

Numbers here are targets, not fits: spot level and daily vol, ATM vol level and term-structure
slope per regime, SVI shape, OI scale, strike steps, listing depth and the venue split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Listing:
    """How many of each kind of expiry a venue keeps listed (Deribit's introduction policy)."""

    dailies: int
    """Upcoming non-Friday days listed as dailies."""
    fridays: int
    """Upcoming Fridays listed (weekly, or monthly/quarterly when a Friday is also an anchor)."""
    monthlies: int
    """Upcoming last-Fridays of months listed."""
    quarterlies: int
    """Upcoming last-Fridays of Mar/Jun/Sep/Dec listed."""


@dataclass(frozen=True, slots=True)
class Profile:
    symbol: str
    spot_at_epoch: float
    spot_decimals: int
    daily_vol: float
    """Daily log-return s.d. in the calm regime (fraction)."""
    atm_30d: float
    """30-day ATM vol in the calm regime, vol points."""
    svi_b: float
    """SVI ``b`` per sqrt(year): wing steepness."""
    svi_s: float
    """SVI ``s`` (sigma) per sqrt(year): curvature at the money."""
    rho_shift: float
    """Added to the regime's ``rho``: alt-coins carry more call skew."""
    weekly_oi: float
    """Typical OI of one weekly expiry, coins."""
    strike_steps: tuple[float, float, float, float]
    """Strike spacing for ≤2, ≤10, ≤100 and >100 days to expiry."""
    strike_span_sd: float
    """Listed strikes cover ±this many ATM standard deviations of log-moneyness."""
    listing: Listing
    venue_shares: tuple[float, ...]
    """Expected share of OI per venue, in ``VENUES`` order."""
    unattributed_share: float
    """Share of OI the aggregator cannot attribute to a venue (thin chains only)."""
    thin: bool
    """A thin chain: sparse strikes, occasional nulls where a real thin chain has them."""
    market_beta: float
    """Loading of daily returns on the common crypto factor."""


PROFILES: Final[dict[str, Profile]] = {
    "BTCUSDT": Profile(
        symbol="BTCUSDT",
        spot_at_epoch=94_000.0,
        spot_decimals=1,
        daily_vol=0.022,
        atm_30d=45.0,
        svi_b=0.14,
        svi_s=0.27,
        rho_shift=0.0,
        weekly_oi=9_000.0,
        strike_steps=(500.0, 1_000.0, 2_000.0, 5_000.0),
        strike_span_sd=2.4,
        listing=Listing(dailies=3, fridays=3, monthlies=3, quarterlies=4),
        venue_shares=(0.74, 0.07, 0.07, 0.06, 0.02, 0.01, 0.02, 0.01),
        unattributed_share=0.0,
        thin=False,
        market_beta=1.0,
    ),
    "ETHUSDT": Profile(
        symbol="ETHUSDT",
        spot_at_epoch=3_300.0,
        spot_decimals=2,
        daily_vol=0.03,
        atm_30d=60.0,
        svi_b=0.15,
        svi_s=0.27,
        rho_shift=0.03,
        weekly_oi=36_000.0,
        strike_steps=(25.0, 50.0, 100.0, 200.0),
        strike_span_sd=2.4,
        listing=Listing(dailies=3, fridays=3, monthlies=3, quarterlies=4),
        venue_shares=(0.70, 0.08, 0.08, 0.07, 0.03, 0.01, 0.02, 0.01),
        unattributed_share=0.0,
        thin=False,
        market_beta=0.9,
    ),
    "SOLUSDT": Profile(
        symbol="SOLUSDT",
        spot_at_epoch=190.0,
        spot_decimals=3,
        daily_vol=0.035,
        atm_30d=70.0,
        svi_b=0.19,
        svi_s=0.28,
        rho_shift=0.2,
        weekly_oi=60_000.0,
        strike_steps=(2.5, 5.0, 10.0, 20.0),
        strike_span_sd=2.0,
        listing=Listing(dailies=2, fridays=2, monthlies=2, quarterlies=1),
        venue_shares=(0.45, 0.15, 0.12, 0.10, 0.12, 0.02, 0.03, 0.01),
        unattributed_share=0.0,
        thin=False,
        market_beta=0.8,
    ),
    "HYPEUSDT": Profile(
        symbol="HYPEUSDT",
        spot_at_epoch=25.0,
        spot_decimals=4,
        daily_vol=0.045,
        atm_30d=85.0,
        svi_b=0.21,
        svi_s=0.28,
        rho_shift=0.22,
        weekly_oi=40_000.0,
        strike_steps=(0.5, 1.0, 2.0, 4.0),
        strike_span_sd=1.3,
        listing=Listing(dailies=1, fridays=2, monthlies=1, quarterlies=0),
        venue_shares=(0.55, 0.10, 0.0, 0.05, 0.30, 0.0, 0.0, 0.0),
        unattributed_share=0.04,
        thin=True,
        market_beta=0.6,
    ),
}
