"""What an ingest tick or a rebuild did, as plain frozen dataclasses.

``as_dict()`` gives JSON-ready values for Dagster metadata; ``table_rows()`` gives one flat dict
of strings per symbol (or symbol-day) for a CLI table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

STORED = "stored"
DUPLICATE = "duplicate"
NO_ARCHIVE = "no_archive"
REBUILT = "rebuilt"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, _Report):
        return value.as_dict()
    return value


class _Report:
    """A report dataclass; ``as_dict()`` gives its fields as JSON-ready values."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.2f}"
    if isinstance(value, tuple | list):
        return ", ".join(_text(item) for item in value)
    return str(_plain(value))


@dataclass(frozen=True, slots=True)
class SymbolReport(_Report):
    """One symbol's outcome in a tick. ``status`` is stored, duplicate or an error kind."""

    symbol: str
    status: str
    started_at: datetime
    latency_s: float
    computed_at: datetime | None = None
    freshness_seconds: float | None = None
    expiry_count: int | None = None
    spot: float | None = None
    http_status: int | None = None
    request_id: str | None = None
    attempts: int = 1
    reason: str | None = None
    drift: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    quarantine_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (STORED, DUPLICATE)


@dataclass(frozen=True, slots=True)
class TickReport(_Report):
    started_at: datetime
    finished_at: datetime
    symbols: tuple[SymbolReport, ...]
    rows_written: dict[str, int] = field(default_factory=dict)
    duplicates_skipped: int = 0
    quarantined: int = 0

    @property
    def stored(self) -> tuple[str, ...]:
        return tuple(report.symbol for report in self.symbols if report.status == STORED)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(report.symbol for report in self.symbols if not report.ok)

    def symbol(self, name: str) -> SymbolReport:
        for report in self.symbols:
            if report.symbol == name:
                return report
        raise KeyError(f"{name} was not part of this tick")

    def table_rows(self) -> list[dict[str, str]]:
        return [
            {
                "symbol": report.symbol,
                "status": report.status,
                "computed_at": _text(report.computed_at),
                "freshness_s": _text(report.freshness_seconds),
                "expiries": _text(report.expiry_count),
                "spot": _text(report.spot),
                "latency_s": _text(report.latency_s),
                "http": _text(report.http_status),
                "request_id": _text(report.request_id),
                "reason": _text(report.reason),
                "drift": _text(report.drift),
                "warnings": _text(report.warnings),
            }
            for report in self.symbols
        ]


@dataclass(frozen=True, slots=True)
class SymbolDayRebuild(_Report):
    """One symbol-day of a rebuild."""

    symbol: str
    day: date
    status: str
    """``rebuilt`` or ``no_archive``."""
    responses: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    rejected: tuple[tuple[str, str], ...] = ()
    """(archive key, reason) for archived bodies today's code refuses; they stay archived."""
    message: str = ""


@dataclass(frozen=True, slots=True)
class RebuildReport(_Report):
    days: tuple[SymbolDayRebuild, ...]
    seconds: float

    @property
    def rebuilt(self) -> tuple[tuple[str, date], ...]:
        return tuple((day.symbol, day.day) for day in self.days if day.status == REBUILT)

    @property
    def missing(self) -> tuple[tuple[str, date], ...]:
        return tuple((day.symbol, day.day) for day in self.days if day.status == NO_ARCHIVE)

    def table_rows(self) -> list[dict[str, str]]:
        return [
            {
                "symbol": day.symbol,
                "day": day.day.isoformat(),
                "status": day.status,
                "responses": str(day.responses),
                "snapshots": str(day.rows_written.get("snapshots", 0)),
                "expiries": str(day.rows_written.get("expiries", 0)),
                "venue_oi": str(day.rows_written.get("venue_oi", 0)),
                "rejected": str(len(day.rejected)),
                "message": day.message,
            }
            for day in self.days
        ]
