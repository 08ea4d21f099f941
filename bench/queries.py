"""The research queries the benchmarks time, written once for the catalog and for a naive glob.

Two "hourly 30d" series: ``hourly_cm_30d_year`` is the real one, the constant-maturity 30-day
IVs interpolated in total variance (the catalog's ``constant_maturity_hourly`` view, over the
materialised hourly tier; the naive side runs the same formula over an hourly sample of its
glob). ``hourly_atm_nearest_30d_year`` is the crude stand-in a quick script might use: the ATM
IV of the listed expiry nearest 30 days, from the first snapshot of each hour, over raw rows.
"""

from __future__ import annotations

from typing import Final

from storage.research.cm_sql import constant_maturity_sql
from storage.research.derived_sql import MICROS_PER_HOUR, sample_sql

NEAREST_30D: Final[str] = "abs(years_to_expiry * 365.0 - 30.0)"


def queries(expiries: str, latest: str, cm_hourly: str | None = None) -> dict[str, str]:
    """SQL over ``expiries`` (a view or a ``read_parquet(...)``) and ``latest`` likewise;
    ``cm_hourly`` is the hourly constant-maturity relation (default: computed from
    ``expiries`` by the research layer's own sampling and interpolation SQL)."""
    if cm_hourly is None:
        sampled = f"({sample_sql(expiries, MICROS_PER_HOUR)})"
        cm_hourly = f"({constant_maturity_sql(sampled, (30,))})"
    return {
        "latest_term_structure": f"SELECT * FROM {latest}",
        "hourly_cm_30d_year": f"""
            SELECT symbol, computed_at, atm_iv, put_25d_iv, call_25d_iv, skew_25d
            FROM {cm_hourly} WHERE tenor_days = 30
            ORDER BY symbol, computed_at""",
        "hourly_atm_nearest_30d_year": f"""
            SELECT symbol, computed_at AS hour,
                   arg_min(expiry, {NEAREST_30D}) AS expiry,
                   arg_min(atm_iv, {NEAREST_30D}) AS atm_iv
            FROM {expiries}
            WHERE minute(computed_at) = 0
            GROUP BY symbol, computed_at
            ORDER BY symbol, hour""",
        "daily_skew_summary": f"""
            SELECT symbol, CAST(computed_at AS DATE) AS day,
                   avg(skew_25d) AS skew_mean, min(skew_25d) AS skew_min,
                   max(skew_25d) AS skew_max, avg(atm_iv) AS atm_mean
            FROM {expiries}
            WHERE dte BETWEEN 20 AND 45
            GROUP BY ALL ORDER BY ALL""",
        "full_scan_aggregate": f"""
            SELECT symbol, count(*) AS rows, avg(atm_iv) AS atm_mean, max(total_oi) AS oi_max,
                   sum(net_gex) AS gex_sum
            FROM {expiries} GROUP BY symbol ORDER BY symbol""",
    }


def naive_latest(glob_read: str) -> str:
    """What a quick script does for 'latest': read everything, keep each symbol's newest tick."""
    return f"""(
        SELECT * FROM {glob_read}
        QUALIFY computed_at = max(computed_at) OVER (PARTITION BY symbol)
        ORDER BY symbol, position)"""
