"""The instant assets and checks judge against: the wall clock, or one a test injects (the
simulator's clock, when a test drives simulated days)."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
