"""Every published per-expiry number, computed from the chain (never drawn on its own).

- ATM IV: the smile at k = 0; 25Δ put / call IV: the smile at the forward-delta strikes, null
  when the listed strikes do not reach them (thin chains), as a real aggregator would leave them.
- Net GEX (USD per 1 % spot move): Σ sign·Γ·OI·S²·0.01 with calls + and puts −, Γ from
  Black–Scholes at each strike's smile vol.
- Max pain: the listed strike P minimising Σ OI_c·max(P−K, 0) + OI_p·max(K−P, 0) (coin OI, so
  the payout is in USD); ties go to the lowest strike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backquant.simulator.chain import Chain
from backquant.simulator.rng import FloatArray

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True, slots=True)
class ExpiryMetrics:
    """Per-expiry arrays in vol points / USD; NaN marks a value that is published as null."""

    atm_iv: FloatArray
    put_25d_iv: FloatArray
    call_25d_iv: FloatArray
    call_gex: FloatArray
    put_gex: FloatArray
    max_pain_strike: FloatArray
    max_pain_value: FloatArray


def strike_gamma_usd(chain: Chain) -> FloatArray:
    """Γ·S²·0.01 per strike: USD gamma exposure per 1 % move of one coin of OI."""
    surface = chain.surface
    index = chain.expiry_index
    k = np.log(chain.strike / chain.spot)
    sigma = surface.smiles.vol(k, index)
    root_t = np.sqrt(surface.t_years[index])
    d1 = (-k + 0.5 * sigma * sigma * root_t * root_t) / (sigma * root_t)
    gamma = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI / (chain.spot * sigma * root_t)
    result: FloatArray = gamma * chain.spot * chain.spot * 0.01
    return result


def payout_curve(strikes: FloatArray, call_oi: FloatArray, put_oi: FloatArray) -> FloatArray:
    """Total payout to holders (USD) if the expiry settles at each listed strike."""
    settle = strikes[:, None]
    calls = np.maximum(settle - strikes[None, :], 0.0) @ call_oi
    puts = np.maximum(strikes[None, :] - settle, 0.0) @ put_oi
    result: FloatArray = calls + puts
    return result


def compute_metrics(chain: Chain) -> ExpiryMetrics:
    surface = chain.surface
    n = len(chain.expiries)
    index = chain.expiry_index
    atm = surface.atm_vol * 100.0
    put_k, call_k = surface.smiles.solve_25d()
    put_iv = surface.smiles.vol(put_k) * 100.0
    call_iv = surface.smiles.vol(call_k) * 100.0
    low = np.full(n, np.inf)
    high = np.full(n, -np.inf)
    log_strikes = np.log(chain.strike / chain.spot)
    np.minimum.at(low, index, log_strikes)
    np.maximum.at(high, index, log_strikes)
    put_iv = np.where(put_k >= low, put_iv, np.nan)
    call_iv = np.where(call_k <= high, call_iv, np.nan)

    gamma_usd = strike_gamma_usd(chain)
    call_gex = np.bincount(index, weights=gamma_usd * chain.call_oi, minlength=n).astype(np.float64)
    put_gex = np.bincount(index, weights=gamma_usd * chain.put_oi, minlength=n).astype(np.float64)

    pain_strike = np.full(n, np.nan)
    pain_value = np.full(n, np.nan)
    calls, puts = chain.call_oi, chain.put_oi
    for position in range(n):
        mask = index == position
        if not (calls[mask].sum() + puts[mask].sum()) > 0:
            continue
        strikes = chain.strike[mask]
        curve = payout_curve(strikes, calls[mask], puts[mask])
        best = int(np.argmin(curve))
        pain_strike[position] = strikes[best]
        pain_value[position] = curve[best]
    return ExpiryMetrics(
        atm_iv=atm,
        put_25d_iv=put_iv,
        call_25d_iv=call_iv,
        call_gex=call_gex,
        put_gex=put_gex,
        max_pain_strike=pain_strike,
        max_pain_value=pain_value,
    )
