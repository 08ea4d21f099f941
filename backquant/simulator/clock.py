"""The simulator's clock: wall time, a scaled clock started at a chosen instant, or a fixed instant.

Tests and benchmarks move it to produce days or a year of history in seconds; the market depends
only on the instant this clock reports, never on how long the process has run.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


def utc(instant: datetime) -> datetime:
    """``instant`` in UTC; a naive value is taken to be UTC already."""
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


class SimClock:
    """Thread-safe clock. ``now()`` = anchor + speed × (wall seconds since anchoring), or fixed."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self._lock = threading.Lock()
        self._anchor = utc(start) if start is not None else datetime.now(UTC)
        self._anchor_wall = time.time() if start is not None else self._anchor.timestamp()
        self._speed = speed
        self._fixed: datetime | None = None

    @property
    def fixed(self) -> bool:
        return self._fixed is not None

    @property
    def speed(self) -> float:
        return 0.0 if self._fixed is not None else self._speed

    def now(self) -> datetime:
        with self._lock:
            if self._fixed is not None:
                return self._fixed
            elapsed = (time.time() - self._anchor_wall) * self._speed
        return datetime.fromtimestamp(self._anchor.timestamp() + elapsed, UTC)

    def set(self, instant: datetime) -> None:
        """Freeze the clock at ``instant`` until ``run`` is called."""
        with self._lock:
            self._fixed = utc(instant)

    def advance(self, seconds: float) -> datetime:
        """Move a frozen clock forward (or a running one, by re-anchoring); returns the new now."""
        target = datetime.fromtimestamp(self.now().timestamp() + seconds, UTC)
        with self._lock:
            if self._fixed is not None:
                self._fixed = target
            else:
                self._anchor, self._anchor_wall = target, time.time()
        return target

    def run(self, start: datetime | None = None, speed: float | None = None) -> None:
        """Let the clock run from ``start`` (default: the current reading) at ``speed``."""
        if speed is not None and not speed > 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        anchor = utc(start) if start is not None else self.now()
        with self._lock:
            self._fixed = None
            self._anchor, self._anchor_wall = anchor, time.time()
            if speed is not None:
                self._speed = speed

    def describe(self) -> dict[str, object]:
        """The clock's state as JSON-able values, for the admin route."""
        return {
            "now": iso_z(self.now()),
            "mode": "fixed" if self.fixed else "running",
            "speed": self.speed,
        }


def iso_z(instant: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z`` suffix, as BackQuant prints timestamps."""
    text = utc(instant).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
