# SQL templates: relation names and numbers come from this package, never from users.
# ruff: noqa: S608
"""SQL of the sampled, daily and OPEX series (templates over a relation of ``expiries`` rows).

Days and sampling buckets come from epoch arithmetic and ``AT TIME ZONE 'UTC'``, never from the
session time zone, so a view returns the same rows whatever the reader's ``TimeZone`` setting.
"""

from __future__ import annotations

from typing import Final

from storage.research.cm_sql import constant_maturity_sql

MICROS_PER_HOUR: Final[int] = 3_600_000_000
UTC_DAY: Final[str] = "CAST(computed_at AT TIME ZONE 'UTC' AS DATE)"


def sample_sql(source: str, every_us: int) -> str:
    """The rows of the last snapshot in each ``every_us`` bucket (aligned to the Unix epoch)."""
    if every_us <= 0:
        raise ValueError("the sampling interval must be positive")
    return f"""
SELECT * FROM {source}
QUALIFY computed_at = max(computed_at)
    OVER (PARTITION BY symbol, epoch_us(computed_at) // {every_us})
"""


def daily_term_structure_sql(source: str) -> str:
    """Per UTC day, symbol and expiry: the expiry's row from the day's last snapshot listing it.

    ``in_last_snapshot`` marks rows of the day's final snapshot (the closing term structure); an
    expiry that settled or was delisted during the day keeps its last row with it false.
    """
    return f"""
SELECT {UTC_DAY} AS day, *,
       computed_at = max(computed_at) OVER (PARTITION BY symbol, {UTC_DAY}) AS in_last_snapshot
FROM {source}
QUALIFY row_number() OVER (PARTITION BY symbol, {UTC_DAY}, expiry ORDER BY computed_at DESC) = 1
"""


def _close(column: str) -> str:
    return f"arg_max({column}, computed_at) FILTER (WHERE {column} IS NOT NULL) AS close_{column}"


def daily_constant_maturity_sql(source: str) -> str:
    """Per UTC day, symbol and standard tenor: open/high/low/close of the CM ATM IV and the
    closing wing IVs, RR25, BF25 and skew, over every snapshot of the day."""
    closes = ",\n       ".join(
        _close(column) for column in ("put_25d_iv", "call_25d_iv", "rr_25d", "bf_25d", "skew_25d")
    )
    return f"""
SELECT symbol, {UTC_DAY} AS day, tenor_days,
       arg_min(atm_iv, computed_at) FILTER (WHERE atm_iv IS NOT NULL) AS open_atm_iv,
       max(atm_iv) AS high_atm_iv,
       min(atm_iv) AS low_atm_iv,
       arg_max(atm_iv, computed_at) FILTER (WHERE atm_iv IS NOT NULL) AS close_atm_iv,
       {closes},
       count(*) AS snapshots,
       count(atm_iv) AS atm_samples,
       count(*) FILTER (WHERE extrapolated) AS extrapolated_snapshots,
       max(computed_at) AS last_computed_at,
       -- A close is null only when no snapshot of the day had the value: the last one says why
       -- (rr, bf and skew need both wings, bf also the ATM IV, in one snapshot).
       CASE WHEN count(atm_iv) = 0 OR count(put_25d_iv) = 0 OR count(call_25d_iv) = 0
                 OR count(rr_25d) = 0 OR count(bf_25d) = 0 OR count(skew_25d) = 0
            THEN arg_max(null_reason, computed_at) END AS null_reason
FROM ({constant_maturity_sql(source)}) AS cm
GROUP BY symbol, {UTC_DAY}, tenor_days
"""


_OPEX_COLUMNS: Final[str] = """
    symbol, computed_at, expiry, type, expiry_at, years_to_expiry,
    years_to_expiry * 365 AS days_to_expiry,
    spot_price, call_oi, put_oi, total_oi, notional_oi_usd, pcr,
    max_pain_strike, max_pain_value,
    max_pain_strike - spot_price AS max_pain_distance_usd,
    (max_pain_strike - spot_price) / spot_price * 100 AS max_pain_distance_pct,
    net_gex, atm_iv, skew_25d"""
_IS_ANCHOR: Final[str] = "coalesce(is_anchor, calendar_type IN ('monthly', 'quarterly'))"


def opex_anchors_sql(source: str) -> str:
    """Every anchor (monthly/quarterly) expiry row of every snapshot, until it settles."""
    return f"SELECT {_OPEX_COLUMNS}\nFROM {source}\nWHERE {_IS_ANCHOR} AND years_to_expiry > 0\n"


def next_anchor_sql(source: str) -> str:
    """Per snapshot, the anchor expiry that settles next."""
    return f"""
SELECT {_OPEX_COLUMNS}
FROM {source}
WHERE {_IS_ANCHOR} AND years_to_expiry > 0
QUALIFY row_number() OVER (PARTITION BY symbol, computed_at ORDER BY years_to_expiry, expiry) = 1
"""
