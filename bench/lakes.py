"""The lake setups the benchmarks compare, each a ``LakeConfig``:

- ``local``: the default, no service to run (SQLite catalog file and data directory under home);
- ``postgres_s3``: a team's setup, PostgreSQL catalog and data on S3, both on loopback
  (tests/support/services.py: embedded PostgreSQL, moto's S3 server);
- ``postgres_local_data`` and ``sqlite_s3``: one of each, to tell which side a cost comes from.

Every lake gets its own PostgreSQL database and its own bucket, so setups never share state.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import psycopg

from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, LakeConfig
from tests.support.services import PostgresServer, S3Server, running_postgres, running_s3

LOCAL: Final[str] = "local"
POSTGRES_S3: Final[str] = "postgres_s3"
POSTGRES_LOCAL_DATA: Final[str] = "postgres_local_data"
SQLITE_S3: Final[str] = "sqlite_s3"
SETUPS: Final[tuple[str, ...]] = (LOCAL, POSTGRES_S3, POSTGRES_LOCAL_DATA, SQLITE_S3)
_NEEDS_POSTGRES: Final[frozenset[str]] = frozenset({POSTGRES_S3, POSTGRES_LOCAL_DATA})
_NEEDS_S3: Final[frozenset[str]] = frozenset({POSTGRES_S3, SQLITE_S3})


@dataclass(frozen=True)
class Services:
    """The loopback servers a run uses (None when no setup needs one)."""

    postgres: PostgresServer | None = None
    s3: S3Server | None = None


@contextmanager
def running_services(setups: tuple[str, ...]) -> Iterator[Services]:
    """Start the servers ``setups`` need, on loopback only; stopped on exit."""
    # No AWS client may look for the cloud's instance metadata: loopback only.
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    # moto's server logs every request through werkzeug: thousands of lines per benchmark.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with ExitStack() as stack:
        postgres = (
            stack.enter_context(running_postgres()) if _NEEDS_POSTGRES & set(setups) else None
        )
        s3 = stack.enter_context(running_s3()) if _NEEDS_S3 & set(setups) else None
        yield Services(postgres, s3)


def _name(text: str) -> str:
    """A name PostgreSQL and S3 both accept: lower case, digits and dashes/underscores."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50]


def _database(server: PostgresServer, name: str) -> PostgresServer:
    database = _name(name).replace("-", "_")
    with psycopg.connect(server.dsn(), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {database}")
        connection.execute(f"CREATE DATABASE {database}")
    return replace(server, dbname=database)


def lake_config(setup: str, home: Path, services: Services, name: str) -> LakeConfig:
    """A fresh lake of kind ``setup`` named ``name`` (its database and bucket), with its
    local home (writer lock, and catalog or data when local) at ``home``."""
    env: dict[str, str] = {}
    if setup in _NEEDS_POSTGRES:
        if services.postgres is None:
            raise RuntimeError(f"setup {setup} needs PostgreSQL; start it with running_services")
        env[CATALOG_ENV] = _database(services.postgres, name).ducklake_catalog()
    if setup in _NEEDS_S3:
        if services.s3 is None:
            raise RuntimeError(f"setup {setup} needs S3; start it with running_services")
        bucket = _name(f"lake-{name}")
        services.s3.create_bucket(bucket)
        env.update(services.s3.env())
        env[DATA_PATH_ENV] = f"s3://{bucket}/lake"
    elif setup in _NEEDS_POSTGRES:
        # A new lake in PostgreSQL is told its data path (the default is only filled in when
        # the SQLite catalog file is created).
        env[DATA_PATH_ENV] = str(home / "data")
    return LakeConfig.from_env(home, env=env)
