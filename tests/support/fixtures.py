"""Shared pytest fixtures; conftest.py re-exports them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.simulator.runner import RunningServer
from tests.support.scripted_server import ScriptedBackQuant

TEST_KEY = "bq_test_Zq8xK2mNv4LpR7tYw1cHs5dFg9jB3aE0"
FAST_RETRY = RetryPolicy(
    deadline_s=10.0,
    upstream_backoff_s=(0.05, 0.1, 0.2),
    rate_limit_retries=3,
    rate_limit_backoff_s=0.05,
    transport_retries=1,
    transport_backoff_s=0.05,
    jitter_s=0.01,
)


@dataclass
class ScriptedAPI:
    fake: ScriptedBackQuant
    server: RunningServer

    def config(self, **overrides: object) -> ClientConfig:
        values: dict[str, object] = {
            "base_url": self.server.base_url,
            "api_key": ApiKey(TEST_KEY),
            "retry": FAST_RETRY,
            "read_timeout_s": 2.0,
        }
        values.update(overrides)
        return ClientConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def scripted_api() -> Iterator[ScriptedAPI]:
    fake = ScriptedBackQuant()
    with fake.running() as server:
        yield ScriptedAPI(fake, server)
