"""Chain + metrics → the ``data`` block of an expiry-summary body (a JSON-able dict).

Published numbers are derived from the chain, then rounded the way a vendor prints them: IVs to
4 decimals, with ``skew_25d`` computed from the *published* wing IVs so put − call holds exactly;
OI to 0.1 coin; USD values to the cent, with notionals from the published spot.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from backquant.simulator.chain import OI_TENTHS, Chain
from backquant.simulator.metrics import ExpiryMetrics
from backquant.symbols import VENUES

_COUNTED_TYPES = ("daily", "weekly", "monthly", "quarterly")


def _iv(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def _venue_block(call_tenths: int, put_tenths: int, spot: float) -> dict[str, float]:
    call, put = call_tenths / OI_TENTHS, put_tenths / OI_TENTHS
    total = (call_tenths + put_tenths) / OI_TENTHS
    return {
        "call_oi": call,
        "put_oi": put,
        "total_oi": total,
        "notional_oi_usd": round(total * spot, 2),
    }


def build_rows(chain: Chain, metrics: ExpiryMetrics, today: date) -> list[dict[str, Any]]:
    spot = chain.spot
    call_totals = chain.expiry_totals(chain.call_oi_tenths)
    put_totals = chain.expiry_totals(chain.put_oi_tenths)
    rows: list[dict[str, Any]] = []
    for i, expiry in enumerate(chain.expiries):
        expiry_date = expiry.expiry_date
        call_tenths, put_tenths = int(call_totals[i]), int(put_totals[i])
        call_oi, put_oi = call_tenths / OI_TENTHS, put_tenths / OI_TENTHS
        total_oi = (call_tenths + put_tenths) / OI_TENTHS
        put_iv, call_iv = _iv(metrics.put_25d_iv[i]), _iv(metrics.call_25d_iv[i])
        skew = None if put_iv is None or call_iv is None else round(put_iv - call_iv, 4)
        pain_strike = float(metrics.max_pain_strike[i])
        unattributed_call = int(chain.unattributed_call_tenths[i])
        unattributed_put = int(chain.unattributed_put_tenths[i])
        rows.append(
            {
                "expiry": expiry.token,
                "type": expiry.type,
                "is_anchor": expiry.is_anchor,
                "dte": None if expiry_date is None else (expiry_date - today).days,
                "atm_iv": _iv(metrics.atm_iv[i]),
                "skew_25d": skew,
                "put_25d_iv": put_iv,
                "call_25d_iv": call_iv,
                "pcr": round(put_oi / call_oi, 6) if call_tenths > 0 else None,
                "call_oi": call_oi,
                "put_oi": put_oi,
                "total_oi": total_oi,
                "net_gex": round(float(metrics.call_gex[i] - metrics.put_gex[i]), 2),
                "expiry_date": None if expiry_date is None else expiry_date.isoformat(),
                "notional_oi_usd": round(total_oi * spot, 2),
                "max_pain": None
                if math.isnan(pain_strike)
                else {"strike": pain_strike, "value": round(float(metrics.max_pain_value[i]), 2)},
                "by_venue": {
                    venue: _venue_block(
                        int(chain.venue_call_tenths[i, v]), int(chain.venue_put_tenths[i, v]), spot
                    )
                    for v, venue in enumerate(VENUES)
                },
                "by_venue_unattributed": None
                if unattributed_call == 0 and unattributed_put == 0
                else _venue_block(unattributed_call, unattributed_put, spot),
            }
        )
    return rows


def build_data(chain: Chain, metrics: ExpiryMetrics, today: date) -> dict[str, Any]:
    rows = build_rows(chain, metrics, today)
    return {
        "expiries": rows,
        "anchor_count": sum(1 for row in rows if row["is_anchor"]),
        "type_counts": {
            kind: sum(1 for row in rows if row["type"] == kind) for kind in _COUNTED_TYPES
        },
    }


def source_venues(chain: Chain) -> list[str]:
    """Venues that contribute any OI to this chain, in the canonical order."""
    live = (chain.venue_call_tenths + chain.venue_put_tenths).sum(axis=0)
    return [venue for v, venue in enumerate(VENUES) if live[v] > 0]
