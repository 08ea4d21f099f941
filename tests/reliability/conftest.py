"""Soak variants run only when asked for (``make soak`` passes ``-m soak``); a lake of its own on
the session's PostgreSQL and S3 servers for each test that asks for ``team_lake``.

``make test`` runs plain ``pytest``; without the collection hook the soak-sized parametrisations
would run there too, since a marker alone does not deselect anything.
"""

from __future__ import annotations

import uuid

import pytest

from tests.reliability.team_lake import TeamLake, new_database
from tests.support.services import PostgresServer, S3Server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("markexpr", default="") or ""):
        return
    skip = pytest.mark.skip(reason="full-size reliability run: use make soak (pytest -m soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def team_lake(postgres_server: PostgresServer, s3_server: S3Server) -> TeamLake:
    name = f"reliability-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    database = new_database(postgres_server, name.replace("-", "_"))
    return TeamLake(database, s3_server, name, "lake/termstore")
