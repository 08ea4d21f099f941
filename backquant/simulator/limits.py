"""The per-key burst limit and monthly quota, enforced for real, and the headers that report them.

Burst windows are *wall-clock* minutes, so ``Retry-After`` is honest for a client that sleeps
in real time even when the simulated clock is frozen or racing. The quota is counted per
*simulated* calendar month (``X-Quota-Period`` = YYYYMM of the simulated clock), so a year of
simulated polling sees twelve quota periods.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime


def next_month_start(now: datetime) -> datetime:
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """The limiter's verdict for one authed request and the headers to send with any answer."""

    headers: dict[str, str]
    rejected: str | None = None
    """None (allowed), ``"burst"`` or ``"quota"``."""
    retry_after_s: int | None = None


@dataclass
class _KeyState:
    window: int = -1
    in_window: int = 0
    period: str = ""
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)


class Limiter:
    """Fixed-window burst limit per key per wall minute, and a monthly quota per key."""

    def __init__(self, burst_per_minute: int, monthly_quota: int) -> None:
        self.burst_per_minute = burst_per_minute
        self.monthly_quota = monthly_quota
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()

    def _state(self, key: str) -> _KeyState:
        with self._lock:
            return self._keys.setdefault(key, _KeyState())

    def check(
        self, key: str, simulated_now: datetime, *, wall_now: float | None = None
    ) -> LimitDecision:
        """Count one request (unless rejected) and say whether it may proceed."""
        wall = time.time() if wall_now is None else wall_now
        window = math.floor(wall / 60.0)
        period = f"{simulated_now.year:04d}{simulated_now.month:02d}"
        state = self._state(key)
        with state._lock:
            if state.window != window:
                state.window, state.in_window = window, 0
            if state.period != period:
                state.period, state.used = period, 0
            rejected: str | None = None
            retry_after: int | None = None
            if state.used >= self.monthly_quota:
                rejected = "quota"
                retry_after = math.ceil(
                    (next_month_start(simulated_now) - simulated_now).total_seconds()
                )
            elif state.in_window >= self.burst_per_minute:
                rejected = "burst"
                retry_after = max(math.ceil((window + 1) * 60.0 - wall), 1)
            else:
                state.in_window += 1
                state.used += 1
            headers = {
                "X-RateLimit-Limit": str(self.burst_per_minute),
                "X-RateLimit-Remaining": str(max(self.burst_per_minute - state.in_window, 0)),
                "X-RateLimit-Reset": str((window + 1) * 60),
                "X-Quota-Limit": str(self.monthly_quota),
                "X-Quota-Used": str(state.used),
                "X-Quota-Remaining": str(max(self.monthly_quota - state.used, 0)),
                "X-Quota-Period": period,
            }
        return LimitDecision(headers=headers, rejected=rejected, retry_after_s=retry_after)

    def quota_retry_after(self, simulated_now: datetime) -> int:
        """Seconds from ``simulated_now`` to 00:00 UTC on the 1st of the next month."""
        return math.ceil((next_month_start(simulated_now) - simulated_now).total_seconds())

    def usage(self) -> dict[str, dict[str, object]]:
        """Per key (redacted to its first 8 characters): window count, period and quota used."""
        with self._lock:
            states = dict(self._keys)
        return {
            f"{key[:8]}…": {"in_window": s.in_window, "period": s.period, "used": s.used}
            for key, s in states.items()
        }
