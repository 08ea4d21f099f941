"""Copies of a lake's catalog that describe the same data files, for bench/catalog_bench.py: a
SQLite file, or a PostgreSQL database (DuckLake's catalog is plain SQL tables, the same in both),
refilled per measurement with synthetic rows that no file and no query refers to."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Final, Protocol

import psycopg

from storage.lake import open_lake
from storage.lake_config import CATALOG_ENV, CATALOG_FILE, DATA_PATH_ENV, LakeConfig
from tests.support.services import PostgresServer

ABSENT_TABLE_ID: Final = 999_999_999


class CatalogCopy(Protocol):
    """A copy of a lake's catalog describing the same data files, refilled per measurement."""

    config: LakeConfig

    def reset(self, extra_rows: int) -> None:
        """The source's catalog rows plus ``extra_rows`` synthetic file-statistics rows."""


def _synthetic_stats(extra: int) -> list[tuple[int, int, int]]:
    return [(row, ABSENT_TABLE_ID, row % 24) for row in range(extra)]


class SqliteCatalogCopy:
    """The catalog file of the lake at ``home`` copied under ``root`` (the data stays put)."""

    def __init__(self, home: Path, root: Path) -> None:
        self.source = home / CATALOG_FILE
        self.copy = root / "catalog-copy"
        self.copy.mkdir(parents=True)
        self.config = LakeConfig.from_env(home=self.copy, env={})

    def reset(self, extra_rows: int, extra_snapshots: int = 0) -> None:
        # Written while no DuckDB connection has the copy open: its SQLite and Python's are
        # two libraries in one process, and POSIX locks do not tell them apart.
        with (
            closing(sqlite3.connect(f"file:{self.source}?mode=ro", uri=True)) as original,
            closing(sqlite3.connect(self.copy / CATALOG_FILE)) as target,
        ):
            original.backup(target)
            target.executemany(
                "INSERT INTO ducklake_file_column_stats (data_file_id, table_id, column_id, "
                "value_count, null_count, min_value, max_value) VALUES (?, ?, ?, 1, 0, 'a', 'b')",
                _synthetic_stats(extra_rows),
            )
            olden = range(-extra_snapshots, 0)
            target.executemany(
                "INSERT INTO ducklake_snapshot VALUES (?, '2020-01-01 00:00:00+00', 0, 0, 0)",
                ((snapshot,) for snapshot in olden),
            )
            target.executemany(
                "INSERT INTO ducklake_snapshot_changes (snapshot_id, changes_made) "
                "VALUES (?, 'inserted_into_table:1')",
                ((snapshot,) for snapshot in olden),
            )
            target.commit()


class PostgresCatalogCopy:
    """The catalog file of the lake at ``home`` copied into a new database of ``server``."""

    def __init__(self, home: Path, root: Path, server: PostgresServer) -> None:
        database = "catalog_copy"
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database}")
            admin.execute(f"CREATE DATABASE {database}")
        server = replace(server, dbname=database)
        self.dsn = server.dsn()
        source = LakeConfig.from_env(home=home, env={})
        env = {CATALOG_ENV: server.ducklake_catalog(), DATA_PATH_ENV: source.data_path}
        self.config = LakeConfig.from_env(home=root / "postgres-home", env=env)
        open_lake(self.config, read_only=False).close()  # DuckLake creates its tables
        with (
            closing(sqlite3.connect(f"file:{home / CATALOG_FILE}?mode=ro", uri=True)) as lite,
            psycopg.connect(self.dsn) as target,
        ):
            tables = [
                name
                for (name,) in lite.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    # ducklake_metadata stays the new catalog's own: its data path is the same.
                    "AND name LIKE 'ducklake%' AND name != 'ducklake_metadata'"
                )
            ]
            for table in tables:
                columns = ", ".join(row[1] for row in lite.execute(f"PRAGMA table_info({table})"))
                target.execute(f"TRUNCATE {table}")
                with target.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in lite.execute(f"SELECT {columns} FROM {table}"):
                        copy.write_row(row)
            target.execute("ANALYZE")

    def reset(self, extra_rows: int) -> None:
        with psycopg.connect(self.dsn) as target:
            target.execute(
                "DELETE FROM ducklake_file_column_stats WHERE table_id = %s", [ABSENT_TABLE_ID]
            )
            with target.cursor().copy(
                "COPY ducklake_file_column_stats (data_file_id, table_id, column_id, "
                "value_count, null_count, min_value, max_value) FROM STDIN"
            ) as copy:
                for row in _synthetic_stats(extra_rows):
                    copy.write_row((*row, 1, 0, "a", "b"))
        with psycopg.connect(self.dsn, autocommit=True) as target:
            target.execute("VACUUM ANALYZE ducklake_file_column_stats")
