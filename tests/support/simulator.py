"""Run the BackQuant simulator in process on a free loopback port (real HTTP), for any test.

    from tests.support.simulator import running_simulator
    with running_simulator(seed=3, faults="500@10%") as sim:
        client_config = sim.client_config()

Pytest fixtures (import them into a conftest or test module): ``simulator`` (a fresh server per
test with the clock frozen at ``SIM_START``) and ``simulator_factory`` (start one with your own
settings; it is stopped when the test ends).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.simulator import SimulatorConfig, create_app
from backquant.simulator.clock import SimClock
from backquant.simulator.market import Market
from backquant.simulator.runner import serve_in_thread

SIM_START = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)
"""A Monday: dailies, weeklies, a quarterly (27MAR26) and monthlies are all listed."""

FAST_RETRY = RetryPolicy(
    deadline_s=5.0,
    upstream_backoff_s=(0.05, 0.1, 0.2),
    rate_limit_retries=3,
    rate_limit_backoff_s=0.05,
    transport_retries=2,
    transport_backoff_s=0.05,
    jitter_s=0.01,
)
"""Retries with the production shape but tiny waits, so client tests stay fast."""


@dataclass(frozen=True)
class RunningSimulator:
    base_url: str
    config: SimulatorConfig
    clock: SimClock
    market: Market
    app: Any

    @property
    def api_key(self) -> str:
        return self.config.api_key

    def client_config(self, **overrides: Any) -> ClientConfig:
        """A client configuration pointing at this server, with fast retries by default."""
        values: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": ApiKey(self.api_key),
            "retry": FAST_RETRY,
            "read_timeout_s": 2.0,
            "connect_timeout_s": 2.0,
        }
        values.update(overrides)
        return ClientConfig(**values)

    def set_faults(self, spec: str) -> None:
        self.app.state.simulator.set_faults(spec)


@contextmanager
def running_simulator(
    *, frozen_at: datetime | None = None, **config: Any
) -> Iterator[RunningSimulator]:
    """Start a simulator (``SimulatorConfig`` keyword arguments); ``frozen_at`` fixes its clock."""
    settings = SimulatorConfig(**config)
    app = create_app(settings)
    if frozen_at is not None:
        app.state.clock.set(frozen_at)
    with serve_in_thread(app) as server:
        yield RunningSimulator(
            base_url=server.base_url,
            config=settings,
            clock=app.state.clock,
            market=app.state.market,
            app=app,
        )


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    """A default simulator with its clock frozen at ``SIM_START``."""
    with running_simulator(frozen_at=SIM_START) as sim:
        yield sim


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., RunningSimulator]]:
    """``simulator_factory(faults=..., frozen_at=...)`` starts a server stopped after the test."""
    with ExitStack() as stack:

        def start(**config: Any) -> RunningSimulator:
            config.setdefault("frozen_at", SIM_START)
            return stack.enter_context(running_simulator(**config))

        yield start
