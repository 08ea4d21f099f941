"""Copies of a lake's catalog that describe the same data files, for bench/catalog_bench.py: a
SQLite file, or a PostgreSQL database (DuckLake's catalog is plain SQL tables, the same in both).
Each ``reset`` restores the source's rows and adds synthetic ones that no file and no query
refers to: file-column statistics of a table that does not exist, and snapshots with negative
ids (older than the lake's first)."""

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
STATS_COLUMNS: Final = (
    "data_file_id",
    "table_id",
    "column_id",
    "value_count",
    "null_count",
    "min_value",
    "max_value",
)
SyntheticRows = dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]]


class CatalogCopy(Protocol):
    """A copy of a lake's catalog describing the same data files, refilled per measurement."""

    config: LakeConfig

    def reset(self, extra_rows: int, extra_snapshots: int = 0) -> None:
        """The source's catalog rows plus ``extra_rows`` synthetic file-statistics rows and
        ``extra_snapshots`` synthetic snapshots."""


def synthetic_rows(extra_rows: int, extra_snapshots: int) -> SyntheticRows:
    """Per catalog table: the columns filled and the rows to add."""
    olden = range(-extra_snapshots, 0)
    return {
        "ducklake_file_column_stats": (
            STATS_COLUMNS,
            [(row, ABSENT_TABLE_ID, row % 24, 1, 0, "a", "b") for row in range(extra_rows)],
        ),
        "ducklake_snapshot": (
            ("snapshot_id", "snapshot_time", "schema_version", "next_catalog_id", "next_file_id"),
            [(snapshot, "2020-01-01 00:00:00+00", 0, 0, 0) for snapshot in olden],
        ),
        "ducklake_snapshot_changes": (
            ("snapshot_id", "changes_made"),
            [(snapshot, "inserted_into_table:1") for snapshot in olden],
        ),
    }


def _source_tables(source: sqlite3.Connection) -> dict[str, str]:
    """The catalog's tables and their column lists."""
    names = source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ducklake%'"
    )
    return {
        name: ", ".join(row[1] for row in source.execute(f"PRAGMA table_info({name})"))
        for (name,) in names.fetchall()
    }


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
            for table, (columns, rows) in synthetic_rows(extra_rows, extra_snapshots).items():
                marks = ", ".join("?" for _ in columns)
                listed = ", ".join(columns)
                target.executemany(f"INSERT INTO {table} ({listed}) VALUES ({marks})", rows)
            target.commit()


class PostgresCatalogCopy:
    """The catalog file of the lake at ``home`` copied into database ``database`` of
    ``server``."""

    def __init__(self, home: Path, root: Path, server: PostgresServer, database: str) -> None:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database}")
            admin.execute(f"CREATE DATABASE {database}")
        server = replace(server, dbname=database)
        self.dsn = server.dsn()
        self.source = home / CATALOG_FILE
        data_path = LakeConfig.from_env(home=home, env={}).data_path
        env = {CATALOG_ENV: server.ducklake_catalog(), DATA_PATH_ENV: data_path}
        self.config = LakeConfig.from_env(home=root / f"{database}-home", env=env)
        open_lake(self.config, read_only=False).close()  # DuckLake creates its tables

    def reset(self, extra_rows: int, extra_snapshots: int = 0) -> None:
        with (
            closing(sqlite3.connect(f"file:{self.source}?mode=ro", uri=True)) as lite,
            psycopg.connect(self.dsn) as target,
        ):
            tables = _source_tables(lite)
            # Tables DuckLake made in the copy alone (inlined data of ticks landed on it).
            extra = target.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename LIKE 'ducklake%%' AND NOT tablename = ANY(%s)",
                [list(tables)],
            ).fetchall()
            for (table,) in extra:
                target.execute(f'DROP TABLE "{table}"')
            for table, columns in tables.items():
                # The settings (no inlining, compression) come from the source; the data path
                # stays the copy's own, the same directory under the name PostgreSQL was given.
                keep = " WHERE key != 'data_path'" if table == "ducklake_metadata" else ""
                target.execute(f"DELETE FROM {table}{keep}")
                with target.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in lite.execute(f"SELECT {columns} FROM {table}{keep}"):
                        copy.write_row(row)
            for table, (names, rows) in synthetic_rows(extra_rows, extra_snapshots).items():
                with target.cursor().copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        with psycopg.connect(self.dsn, autocommit=True) as target:
            target.execute("VACUUM ANALYZE")
