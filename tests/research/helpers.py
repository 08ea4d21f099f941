"""Hand-built snapshots written straight into the lake's tables, and reference formulas.

The snapshots skip the API body and its normalisation on purpose: every edge case (a missing
wing, a settled expiry, calendar arbitrage) is spelled out as rows. The references are plain
Python over the same rows, written without looking at the SQL: sort, bracket, interpolate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl

from backquant.expiry_calendar import classify, format_token, settlement_instant, years_to_expiry
from storage import Warehouse
from storage.schemas import EXPIRIES_SCHEMA, SNAPSHOTS_SCHEMA
from storage.writes import insert, transaction


@dataclass(frozen=True)
class Listed:
    expiry_date: date
    atm: float | None
    put: float | None
    call: float | None
    call_oi: float = 100.0
    put_oi: float = 60.0
    max_pain: float | None = 95_000.0
    net_gex: float | None = 1.0e6


@dataclass(frozen=True)
class Snapshot:
    symbol: str
    computed_at: datetime
    rows: tuple[Listed, ...]
    spot: float = 100_000.0
    extra: dict[str, float] = field(default_factory=dict)

    def years(self, row: Listed) -> float:
        return years_to_expiry(settlement_instant(row.expiry_date), self.computed_at)


def expiries_frame(snapshot: Snapshot) -> pl.DataFrame:
    records = []
    for position, row in enumerate(snapshot.rows):
        token = format_token(row.expiry_date)
        kind = classify(token)
        expiry_at = settlement_instant(row.expiry_date)
        total = row.call_oi + row.put_oi
        records.append(
            {
                "symbol": snapshot.symbol,
                "computed_at": snapshot.computed_at,
                "expiry": token,
                "position": position,
                "type": kind.type,
                "calendar_type": kind.type,
                "is_anchor": kind.is_anchor,
                "expiry_date": row.expiry_date,
                "expiry_at": expiry_at,
                "years_to_expiry": snapshot.years(row),
                "dte": (row.expiry_date - snapshot.computed_at.date()).days,
                "atm_iv": row.atm,
                "skew_25d": None if row.put is None or row.call is None else row.put - row.call,
                "put_25d_iv": row.put,
                "call_25d_iv": row.call,
                "pcr": row.put_oi / row.call_oi,
                "call_oi": row.call_oi,
                "put_oi": row.put_oi,
                "total_oi": total,
                "net_gex": row.net_gex,
                "notional_oi_usd": total * snapshot.spot,
                "max_pain_strike": row.max_pain,
                "max_pain_value": 1.0e6,
                "spot_price": snapshot.spot,
            }
        )
    return pl.DataFrame(records, schema=EXPIRIES_SCHEMA)


def snapshots_frame(snapshots: list[Snapshot]) -> pl.DataFrame:
    base = pl.DataFrame(
        {
            "symbol": [s.symbol for s in snapshots],
            "computed_at": [s.computed_at for s in snapshots],
            "spot_price": [s.spot for s in snapshots],
            "expiry_count": [len(s.rows) for s in snapshots],
        }
    )
    return base.select(
        [
            pl.col(name) if name in base.columns else pl.lit(None).alias(name)
            for name in SNAPSHOTS_SCHEMA
        ]
    ).cast(SNAPSHOTS_SCHEMA)


def store(warehouse: Warehouse, snapshots: list[Snapshot]) -> None:
    """Commit the snapshots' ``snapshots`` and ``expiries`` rows, one transaction per UTC day
    as a rebuild or an import would."""
    days: dict[date, list[Snapshot]] = {}
    for snapshot in snapshots:
        days.setdefault(snapshot.computed_at.astimezone(UTC).date(), []).append(snapshot)
    with warehouse.writer() as connection:
        for day, listed in sorted(days.items()):
            ordered = sorted(listed, key=lambda s: (s.symbol, s.computed_at))
            with transaction(connection, warehouse.config, f"the test rows of {day}"):
                insert(connection, "expiries", pl.concat([expiries_frame(s) for s in ordered]))
                insert(connection, "snapshots", snapshots_frame(ordered))


def reference_cm(snapshot: Snapshot, tenor_days: float, iv: str) -> tuple[float | None, bool]:
    """(σ(τ) in vol points, flat-extrapolated?) for one IV, by the domain notes' recipe."""
    tau = tenor_days / 365.0
    points = sorted(
        (snapshot.years(row), getattr(row, iv))
        for row in snapshot.rows
        if snapshot.years(row) > 0 and getattr(row, iv) is not None
    )
    below = [p for p in points if p[0] <= tau]
    above = [p for p in points if p[0] >= tau]
    if not above:
        return None, False
    if not below:
        return above[0][1], True
    (t1, v1), (t2, v2) = below[-1], above[0]
    if t1 == t2:
        return v1, False
    w1, w2 = v1 * v1 * t1, v2 * v2 * t2
    return math.sqrt((w1 + (w2 - w1) * (tau - t1) / (t2 - t1)) / tau), False


@dataclass(frozen=True)
class CMRow:
    atm: float | None
    put: float | None
    call: float | None
    extrapolated: bool

    @property
    def rr(self) -> float | None:
        return None if self.put is None or self.call is None else self.call - self.put

    @property
    def bf(self) -> float | None:
        if self.put is None or self.call is None or self.atm is None:
            return None
        return (self.call + self.put) / 2 - self.atm

    @property
    def skew(self) -> float | None:
        return None if self.put is None or self.call is None else self.put - self.call


def reference_cm_row(snapshot: Snapshot, tenor_days: float) -> CMRow:
    atm, atm_flat = reference_cm(snapshot, tenor_days, "atm")
    put, put_flat = reference_cm(snapshot, tenor_days, "put")
    call, call_flat = reference_cm(snapshot, tenor_days, "call")
    return CMRow(atm, put, call, atm_flat or put_flat or call_flat)


def forward(v1: float, t1: float, v2: float, t2: float) -> float | None:
    variance = (v2 * v2 * t2 - v1 * v1 * t1) / (t2 - t1)
    return math.sqrt(variance) if variance >= 0 else None


def close(actual: float | None, expected: float | None) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return abs(actual - expected) <= 1e-9
