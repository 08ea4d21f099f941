from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from tests.alerts.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1, listening."""
    hook = Receiver()
    hook.listen()
    try:
        yield hook
    finally:
        hook.close()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance
