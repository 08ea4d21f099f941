"""Settings of one simulator instance, checked when built so a bad flag fails before serving."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from backquant.config import describe_key_problem

DEFAULT_SIMULATOR_KEY: Final[str] = "bq_test_simulator_key_000000000000"


class SimulatorConfigError(ValueError):
    """A simulator setting is unusable; the message says which and how to fix it."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything that shapes the simulator's answers.

    ``seed`` fixes the synthetic market; ``start`` + ``speed`` drive its clock (``start=None`` with
    ``speed=1`` is the wall clock). ``faults`` is a spec in the language of ``faults.py``.
    """

    seed: int = 7
    api_key: str = DEFAULT_SIMULATOR_KEY
    faults: str = ""
    burst_limit_per_minute: int = 120
    monthly_quota: int = 1_000_000
    start: datetime | None = None
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**63:
            raise SimulatorConfigError(f"seed must be an integer in [0, 2**63), got {self.seed}")
        problem = describe_key_problem(self.api_key)
        if problem is not None:
            raise SimulatorConfigError(f"the simulator's API key is unusable: {problem}")
        if self.burst_limit_per_minute < 1:
            raise SimulatorConfigError("burst_limit_per_minute must be at least 1")
        if self.monthly_quota < 1:
            raise SimulatorConfigError("monthly_quota must be at least 1")
        if not self.speed > 0 or self.speed != self.speed or self.speed == float("inf"):
            raise SimulatorConfigError(f"speed must be a positive finite number, got {self.speed}")
        if self.start is not None and self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=UTC))
        # Parse the fault spec now so a typo fails at startup, not on the first request.
        from backquant.simulator.faults import parse_fault_spec

        parse_fault_spec(self.faults)
