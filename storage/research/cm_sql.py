# SQL templates: relation names and numbers come from this package, never from users.
# ruff: noqa: S608
"""SQL of the constant-maturity family: the one implementation of these formulas.

Every research series is a SQL template over a relation of ``expiries`` rows (the table, the
hourly sample, or a window of either), so the lake's views and the Python API run the same text.
Conventions (see /shared/domain.md and docs/data-dictionary.md):

- T is ``years_to_expiry`` (ACT/365 from computed_at to the 08:00 UTC settlement, computed once in
  ``backquant.expiry_calendar``); expiries with T ≤ 0 or no T are left out.
- Total variance ``w = σ²·T`` with σ in vol points: the unit cancels in ``sqrt(w/τ)``, so results
  are vol points like the API.
- Each IV is interpolated on its own, between the listed expiries where *that* IV is not null:
  ``w(τ) = w1 + (w2 − w1)·(τ − T1)/(T2 − T1)``, ``σ(τ) = sqrt(w(τ)/τ)``; an expiry exactly at τ
  gives its own IV; before the first expiry flat (flagged ``extrapolated``); beyond the last null.
- Forward vol ``sqrt((w2 − w1)/(T2 − T1))``; null and ``calendar_arbitrage`` when ``w2 < w1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

STANDARD_TENORS: Final[tuple[int, ...]] = (1, 7, 14, 30, 60, 90, 180)
"""Tenors in days that the lake views carry (vendors' 1–180d; the 30d point is DVOL's)."""

DAYS_PER_YEAR: Final[float] = 365.0
IV_COLUMNS: Final[tuple[str, ...]] = ("atm_iv", "put_25d_iv", "call_25d_iv")


def tenor_list_sql(tenors: Sequence[float]) -> str:
    """A validated SQL list literal of tenors in days (positive, finite numbers only)."""
    if not tenors:
        raise ValueError("give at least one tenor in days, e.g. (7, 30, 90)")
    numbers = []
    for tenor in tenors:
        number = float(tenor)
        if not number > 0 or number == float("inf"):
            raise ValueError(f"tenor {tenor!r} is not a positive number of days")
        numbers.append(number)
    # Whole days stay integers so tenor_days is INTEGER in the usual case.
    if all(number.is_integer() for number in numbers):
        return "[" + ", ".join(str(int(number)) for number in numbers) + "]"
    return "[" + ", ".join(repr(number) for number in numbers) + "]"


def _bracket_aggregates(iv: str) -> str:
    valid = f"{iv} IS NOT NULL"
    below = f"FILTER (WHERE t <= tau AND {valid})"
    above = f"FILTER (WHERE t >= tau AND {valid})"
    return (
        f"max(t) {below} AS {iv}_t1, arg_max({iv}, t) {below} AS {iv}_v1, "
        f"min(t) {above} AS {iv}_t2, arg_min({iv}, t) {above} AS {iv}_v2"
    )


def _why_null(iv: str) -> str:
    """Why the CM value of ``iv`` is null (nothing when it is not). The value is null when no
    quoted expiry reaches the tenor; then every quoted expiry is shorter, so the longest one is
    ``{iv}_t1``, the longest below the tenor (null when none is quoted)."""
    return (
        f"CASE WHEN {iv}_v2 IS NOT NULL THEN NULL "
        f"WHEN {iv}_t1 IS NULL THEN '{iv}: no listed expiry quotes it' "
        f"ELSE '{iv}: no listed expiry at or beyond ' || tenor_days || 'd (the longest is ' "
        f"|| round({iv}_t1 * {DAYS_PER_YEAR}, 1) || 'd)' END"
    )


def null_reasons_sql(*reasons: str) -> str:
    """The non-null reasons joined with '; ', or null when there is none."""
    return f"nullif(concat_ws('; ', {', '.join(reasons)}), '')"


def _interpolated(iv: str) -> str:
    t1, v1, t2, v2 = f"{iv}_t1", f"{iv}_v1", f"{iv}_t2", f"{iv}_v2"
    return (
        f"CASE WHEN {v2} IS NULL THEN NULL "
        f"WHEN {v1} IS NULL THEN {v2} "
        f"WHEN {t2} = {t1} THEN {v1} "
        f"ELSE sqrt(({v1} * {v1} * {t1} + ({v2} * {v2} * {t2} - {v1} * {v1} * {t1}) "
        f"* (tau - {t1}) / ({t2} - {t1})) / tau) END"
    )


def constant_maturity_sql(
    source: str, tenors: Sequence[float] = STANDARD_TENORS, period_us: int | None = None
) -> str:
    """One row per symbol × computed_at × tenor_days over the expiries rows of ``source``.

    ``source`` is a relation (view name or parenthesised query) with the expiries columns
    symbol, computed_at, expiry, years_to_expiry and the three IVs. A sampled source names its
    period in ``period_us``: each row then starts with ``period_start``, the start of the
    epoch-aligned period it summarises (``computed_at`` stays the snapshot taken).
    """
    brackets = ",\n           ".join(_bracket_aggregates(iv) for iv in IV_COLUMNS)
    values = ",\n       ".join(f"{_interpolated(iv)} AS {iv}" for iv in IV_COLUMNS)
    flat = " OR ".join(f"({iv}_v1 IS NULL AND {iv}_v2 IS NOT NULL)" for iv in IV_COLUMNS)
    why = null_reasons_sql(*(_why_null(iv) for iv in IV_COLUMNS))
    period = (
        ""
        if period_us is None
        else f"make_timestamptz(epoch_us(computed_at) // {period_us} * {period_us}) "
        "AS period_start, "
    )
    return f"""
WITH points AS (
    SELECT symbol, computed_at, expiry, years_to_expiry AS t, atm_iv, put_25d_iv, call_25d_iv
    FROM {source}
    WHERE years_to_expiry > 0
),
grid AS (
    SELECT p.*, g.tenor_days, g.tenor_days / {DAYS_PER_YEAR} AS tau
    FROM points AS p CROSS JOIN (SELECT unnest({tenor_list_sql(tenors)}) AS tenor_days) AS g
),
brackets AS (
    SELECT symbol, computed_at, tenor_days, any_value(tau) AS tau,
           arg_max(expiry, t) FILTER (WHERE t <= tau AND atm_iv IS NOT NULL) AS lower_expiry,
           arg_min(expiry, t) FILTER (WHERE t >= tau AND atm_iv IS NOT NULL) AS upper_expiry,
           {brackets}
    FROM grid
    GROUP BY symbol, computed_at, tenor_days
),
interpolated AS (
    SELECT symbol, computed_at, tenor_days,
       {values},
       coalesce({flat}, false) AS extrapolated,
       lower_expiry, upper_expiry,
       {why} AS null_reason
    FROM brackets
)
SELECT symbol, {period}computed_at, tenor_days, atm_iv, put_25d_iv, call_25d_iv,
       call_25d_iv - put_25d_iv AS rr_25d,
       (call_25d_iv + put_25d_iv) / 2 - atm_iv AS bf_25d,
       put_25d_iv - call_25d_iv AS skew_25d,
       extrapolated, lower_expiry, upper_expiry, null_reason
FROM interpolated
"""


def forward_listed_sql(source: str) -> str:
    """ATM forward vol between consecutive listed expiries (ordered by T) of each snapshot."""
    return f"""
WITH points AS (
    SELECT symbol, computed_at, expiry, years_to_expiry AS t, atm_iv
    FROM {source}
    WHERE years_to_expiry > 0 AND atm_iv IS NOT NULL
),
pairs AS (
    SELECT symbol, computed_at,
           expiry AS from_expiry, t AS from_years, atm_iv AS from_atm_iv,
           lead(expiry) OVER w AS to_expiry, lead(t) OVER w AS to_years,
           lead(atm_iv) OVER w AS to_atm_iv
    FROM points
    WINDOW w AS (PARTITION BY symbol, computed_at ORDER BY t, expiry)
),
variances AS (
    SELECT *,
           CASE WHEN to_years > from_years
                THEN (to_atm_iv * to_atm_iv * to_years - from_atm_iv * from_atm_iv * from_years)
                     / (to_years - from_years) END AS forward_variance
    FROM pairs
    WHERE to_expiry IS NOT NULL
)
SELECT symbol, computed_at, from_expiry, to_expiry, from_years, to_years,
       from_atm_iv, to_atm_iv,
       CASE WHEN forward_variance >= 0 THEN sqrt(forward_variance) END AS forward_atm_iv,
       coalesce(forward_variance < 0, false) AS calendar_arbitrage,
       CASE WHEN forward_variance < 0
            THEN 'calendar arbitrage: total variance falls from ' || from_expiry || ' to '
                 || to_expiry
            WHEN forward_variance IS NULL
            THEN from_expiry || ' and ' || to_expiry || ' expire at the same time' END
           AS null_reason
FROM variances
"""


def _cm_null(tenor: str) -> str:
    return (
        f"CASE WHEN {tenor.replace('tenor_days', 'atm_iv')} IS NULL THEN 'the ' || {tenor} "
        "|| 'd CM ATM IV is null (constant_maturity.null_reason says why)' END"
    )


def forward_tenor_sql(constant_maturity: str) -> str:
    """ATM forward vol between consecutive tenors of a constant-maturity relation."""
    ends_null = null_reasons_sql(_cm_null("from_tenor_days"), _cm_null("to_tenor_days"))
    return f"""
WITH pairs AS (
    SELECT symbol, computed_at,
           tenor_days AS from_tenor_days, atm_iv AS from_atm_iv, extrapolated AS from_extrapolated,
           lead(tenor_days) OVER w AS to_tenor_days, lead(atm_iv) OVER w AS to_atm_iv,
           lead(extrapolated) OVER w AS to_extrapolated
    FROM {constant_maturity}
    WINDOW w AS (PARTITION BY symbol, computed_at ORDER BY tenor_days)
),
variances AS (
    SELECT *,
           (to_atm_iv * to_atm_iv * to_tenor_days - from_atm_iv * from_atm_iv * from_tenor_days)
           / (to_tenor_days - from_tenor_days) AS forward_variance
    FROM pairs
    WHERE to_tenor_days IS NOT NULL
)
SELECT symbol, computed_at, from_tenor_days, to_tenor_days, from_atm_iv, to_atm_iv,
       CASE WHEN forward_variance >= 0 THEN sqrt(forward_variance) END AS forward_atm_iv,
       coalesce(forward_variance < 0, false) AS calendar_arbitrage,
       from_extrapolated OR to_extrapolated AS extrapolated,
       CASE WHEN forward_variance < 0
            THEN 'calendar arbitrage: total variance falls from ' || from_tenor_days
                 || 'd to ' || to_tenor_days || 'd'
            WHEN forward_variance IS NULL THEN {ends_null} END AS null_reason
FROM variances
"""


def shape_sql(constant_maturity: str) -> str:
    """Term-structure shape per snapshot from the 7d, 30d and 90d constant-maturity ATM IVs."""
    points_null = null_reasons_sql(
        *(
            f"CASE WHEN atm_iv_{days}d IS NULL THEN 'the {days}d CM ATM IV is null "
            "(constant_maturity.null_reason says why)' END"
            for days in (7, 30, 90)
        )
    )
    return f"""
WITH pivoted AS (
    SELECT symbol, computed_at,
           any_value(atm_iv) FILTER (WHERE tenor_days = 7) AS atm_iv_7d,
           any_value(atm_iv) FILTER (WHERE tenor_days = 30) AS atm_iv_30d,
           any_value(atm_iv) FILTER (WHERE tenor_days = 90) AS atm_iv_90d,
           bool_or(extrapolated) FILTER (WHERE tenor_days IN (7, 90)) AS extrapolated
    FROM {constant_maturity}
    WHERE tenor_days IN (7, 30, 90)
    GROUP BY symbol, computed_at
)
SELECT symbol, computed_at, atm_iv_7d, atm_iv_30d, atm_iv_90d,
       atm_iv_90d - atm_iv_7d AS slope_90d_7d,
       CASE WHEN atm_iv_90d > atm_iv_7d THEN 'contango'
            WHEN atm_iv_90d < atm_iv_7d THEN 'backwardation'
            WHEN atm_iv_90d = atm_iv_7d THEN 'flat' END AS shape,
       coalesce(extrapolated, false) AS extrapolated,
       {points_null} AS null_reason
FROM pivoted
"""
