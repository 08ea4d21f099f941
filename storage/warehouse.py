"""The warehouse handle: the lake's configuration, its writer and read-only SQL over it.

Readers attach the lake read-only and stay attached: every query is its own transaction and sees
every commit made before it started, by any process on any machine. Writers (ingest, rebuild,
import, maintenance, research) take the writer lock and use one read-write connection per
process, kept between calls. A query ``as_of`` an instant attaches the lake as it was then.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from storage.errors import QueryError
from storage.lake import LAKE, open_lake
from storage.lake_config import HOME_ENV, LakeConfig, resolve_home
from storage.lake_schema import VIEW_NAMES, ensure_schema, is_older, schema_version
from storage.locking import CatalogLock, writer_lock
from storage.schemas import TABLE_SCHEMAS

__all__ = ["HOME_ENV", "QueryError", "Warehouse", "resolve_home"]

_TABLES_AND_VIEWS = ", ".join([*TABLE_SCHEMAS, *VIEW_NAMES])


class Warehouse:
    """A termstore lake. Build it with ``Warehouse.open``; many processes may open one lake."""

    def __init__(self, config: LakeConfig) -> None:
        self.config = config
        self._reader: duckdb.DuckDBPyConnection | None = None
        self._writer: duckdb.DuckDBPyConnection | None = None
        self._writer_threads: int | None = None
        self._catalog_lock = CatalogLock(config) if config.catalog_kind == "postgres" else None

    @classmethod
    def open(cls, home: Path | str | None = None, *, config: LakeConfig | None = None) -> Warehouse:
        """The lake configured by the environment (``TERMSTORE_CATALOG``,
        ``TERMSTORE_DATA_PATH``, ``AWS_*``), with ``home`` overriding ``TERMSTORE_HOME``.
        Nothing is attached until the first query or write."""
        return cls(config if config is not None else LakeConfig.from_env(home))

    @property
    def home(self) -> Path:
        return self.config.home

    def lock(self, timeout_s: float = 120.0) -> AbstractContextManager[None]:
        """The writer lock: this machine's, and on a PostgreSQL catalog every machine's
        (see storage.locking)."""
        return writer_lock(self.config.lock_file, timeout_s=timeout_s, catalog=self._catalog_lock)

    @contextmanager
    def writer(
        self, timeout_s: float = 120.0, *, threads: int | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """The read-write connection, under the writer lock, with the schema up to date.
        ``threads=1`` suits a small transaction (a tick): its few rows gain nothing from
        parallel operators and lose time handing them between threads; None leaves DuckDB's
        default, every core. The setting stays until a caller asks for another, so a run of
        ticks does not pay for switching it."""
        with self.lock(timeout_s):
            if self._writer is None:
                connection = open_lake(self.config, read_only=False)
                try:
                    ensure_schema(connection, LAKE)
                except BaseException:
                    connection.close()
                    raise
                self._writer = connection
                self._writer_threads = None
            try:
                if threads != self._writer_threads:
                    self._writer.execute(
                        "RESET threads" if threads is None else f"SET threads = {int(threads)}"
                    )
                    self._writer_threads = threads
                yield self._writer
            except BaseException:
                # A connection that saw a failure is not trusted with the next write.
                self._close_writer()
                raise

    def connect(self, as_of: datetime | None = None) -> duckdb.DuckDBPyConnection:
        """A new read-only connection with the lake attached as ``lake`` and in use (the
        caller closes it); ``as_of`` attaches the lake as it was at that instant.

        A missing lake is ``NotInitialisedError``: a reader never creates one (a mistyped home
        would otherwise answer every query with empty tables). A lake of an older schema
        version is brought up to date first, under the writer lock; one of a newer version is
        read as it is."""
        connection = open_lake(self.config, read_only=True, snapshot_time=as_of)
        if as_of is None and is_older(schema_version(connection)):
            connection.close()
            self.initialise()
            connection = open_lake(self.config, read_only=True)
        return connection

    def initialise(self) -> None:
        """Create the lake's tables and views, or bring them up to date (idempotent)."""
        with self.writer():
            pass

    def sql(self, query: str, *, as_of: datetime | None = None) -> pl.DataFrame:
        """Run a read-only query and return a polars frame. Without ``as_of`` the query sees
        every committed change; with it, the lake as it was at that instant."""
        if as_of is not None:
            connection = self.connect(as_of=_aware(as_of))
            try:
                return self._run(connection, query)
            finally:
                connection.close()
        if self._reader is None:
            self._reader = self.connect()
        try:
            return self._run(self._reader, query)
        except QueryError:
            # The kept reader must not carry what a refused statement left (an aborted or open
            # transaction, a changed setting) into later queries: the next one reattaches.
            self._reader.close()
            self._reader = None
            raise

    def _run(self, connection: duckdb.DuckDBPyConnection, query: str) -> pl.DataFrame:
        try:
            if any(
                statement.type == duckdb.StatementType.TRANSACTION
                for statement in connection.extract_statements(query)
            ):
                # BEGIN would hold the kept reader on one snapshot: no later commit shows.
                raise QueryError(
                    "transaction statements (BEGIN, COMMIT, ROLLBACK) are not run here",
                    advice="every query is its own read-only transaction; send the query alone",
                )
            relation = connection.sql(query)
        except duckdb.Error as error:
            raise self._query_error(error) from None
        if relation is None:
            raise QueryError(
                "the statement returned no result set",
                advice="termstore sql runs read-only queries (SELECT, DESCRIBE, SHOW …)",
            )
        try:
            # Through DuckDB's Arrow C stream: relation.pl() would import pyarrow first, a
            # large share of a short-lived process's start (termstore sql).
            frame = pl.DataFrame(relation)
        except duckdb.Error as error:
            raise self._query_error(error) from None
        return frame

    def _query_error(self, error: BaseException) -> QueryError:
        text = self.config.redact(str(error)).strip()
        if "read-only mode" in text:
            advice = "queries here only read; ingest, rebuild, import and maintain write the lake"
        else:
            advice = f"the lake's tables and views are {_TABLES_AND_VIEWS}"
        return QueryError(f"query failed: {text}", advice=advice)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._close_writer()
        if self._catalog_lock is not None:
            self._catalog_lock.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Warehouse({self.config.describe()['catalog']!r})"


def _aware(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
