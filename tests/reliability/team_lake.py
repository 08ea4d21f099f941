"""A lake of a test's own on the session's PostgreSQL and S3 servers (fixture ``team_lake``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import psycopg

from tests.support.services import PostgresServer, S3Server


@dataclass(frozen=True)
class TeamLake:
    """A lake's settings on PostgreSQL and S3: its own database, bucket and prefix."""

    postgres: PostgresServer
    s3: S3Server
    bucket: str
    prefix: str

    @property
    def catalog(self) -> str:
        return self.postgres.ducklake_catalog()

    @property
    def data_path(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def env(self) -> dict[str, str]:
        """TERMSTORE_CATALOG, TERMSTORE_DATA_PATH and the S3 credentials and endpoint."""
        return {
            **self.s3.env(),
            "TERMSTORE_CATALOG": self.catalog,
            "TERMSTORE_DATA_PATH": self.data_path,
        }

    def keys(self) -> list[str]:
        """Every object in the lake's bucket, whatever its prefix."""
        return self.s3.list_keys(self.bucket)


def new_database(server: PostgresServer, name: str) -> PostgresServer:
    """A new empty database on ``server``, created by the ``termstore`` role (it has CREATEDB)."""
    with psycopg.connect(server.dsn(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return dataclasses.replace(server, dbname=name)
