"""The research queries the benchmarks time, written once for the catalog and for a naive glob.

``storage/research`` (and its ``constant_maturity`` view) did not exist when these were written,
so the "30-day" series is the hourly ATM IV of the listed expiry nearest 30 days to expiry (no
interpolation between expiries), taken from the first snapshot of each hour.
"""

from __future__ import annotations

from typing import Final

NEAREST_30D: Final[str] = "abs(years_to_expiry * 365.0 - 30.0)"


def queries(expiries: str, latest: str) -> dict[str, str]:
    """SQL over ``expiries`` (a view or a ``read_parquet(...)``) and ``latest`` likewise."""
    return {
        "latest_term_structure": f"SELECT * FROM {latest}",
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
