"""Shared pytest fixtures; conftest.py re-exports them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from backquant.config import ApiKey, ClientConfig
from backquant.simulator.runner import RunningServer
from tests.support.scripted_server import ScriptedBackQuant
from tests.support.simulator import FAST_RETRY

TEST_KEY = "bq_test_Zq8xK2mNv4LpR7tYw1cHs5dFg9jB3aE0"


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


def location_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """The code location's environment as ``env`` alone: this process's BACKQUANT_ and
    TERMSTORE_ variables are removed first."""
    for name in list(os.environ):
        if name.startswith(("BACKQUANT_", "TERMSTORE_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def scripted_api() -> Iterator[ScriptedAPI]:
    fake = ScriptedBackQuant()
    with fake.running() as server:
        yield ScriptedAPI(fake, server)
