import os

import pytest

from tests.support.fixtures import scripted_api
from tests.support.services import postgres_server, s3_server

__all__ = ["postgres_server", "s3_server", "scripted_api"]


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment. rich's
    Console, built when a test module imports the CLI, fixes its size for good when it finds
    both, and a test could no longer widen the CLI's tables with COLUMNS; without them, rich
    reads COLUMNS at each print."""
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)
