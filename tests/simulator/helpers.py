"""Shared sampling helpers for the simulator tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backquant.symbols import SUPPORTED_SYMBOLS


def sample_instants(count: int, *, start: datetime | None = None) -> list[datetime]:
    """Instants spread over more than a year, at awkward times of day (incl. near 08:00 UTC)."""
    base = start or datetime(2025, 3, 28, 7, 59, 40, tzinfo=UTC)
    return [base + timedelta(days=41 * i, hours=(7 * i) % 24, seconds=13 * i) for i in range(count)]


def cases(seeds: range, instants: int) -> list[tuple[int, str, datetime]]:
    return [
        (seed, symbol, at)
        for seed in seeds
        for symbol in SUPPORTED_SYMBOLS
        for at in sample_instants(
            instants, start=datetime(2025, 3, 28, 7, 59, 40, tzinfo=UTC) + timedelta(hours=seed * 5)
        )
    ]
