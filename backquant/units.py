"""Units of the published numbers, kept in one place.

BackQuant never states the IV unit. Every example reads like annualised vol in percent points
(55.0 means 55 %), so termstore stores IVs exactly as received, in vol points, and flags a body
whose IVs look like fractions instead of silently rescaling it.
"""

from __future__ import annotations

from collections.abc import Iterable

IV_UNIT = "vol_points"
"""Annualised implied volatility in percent points: 55.0 means 55 %."""

IV_FRACTION_CEILING = 3.0
"""A chain whose every ATM IV is below this is almost surely quoted as fractions (0.55)."""

OI_UNIT = "coin"
"""Open interest in coin units: one contract is one unit of the underlying."""

GEX_UNIT = "usd_per_1pct"
"""Net gamma exposure in USD per 1 % spot move; calls positive, puts negative."""


def iv_points_to_fraction(iv_points: float) -> float:
    """Convert a vol-points IV (55.0) to the fraction used in formulas (0.55)."""
    return iv_points / 100.0


def ivs_look_like_fractions(atm_ivs: Iterable[float | None]) -> bool:
    """True when there is at least one ATM IV and all of them sit below the fraction ceiling."""
    values = [iv for iv in atm_ivs if iv is not None]
    return bool(values) and all(abs(iv) < IV_FRACTION_CEILING for iv in values)
