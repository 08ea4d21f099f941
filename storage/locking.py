"""The writer lock: writers (ingest, rebuild, import, maintenance) take turns.

DuckLake commits are atomic on their own; the lock keeps writers from racing for the catalog (a
SQLite catalog answers a second concurrent writer with "database is locked"), makes a rebuild
and a tick of the same day follow each other, and makes the duplicate check of a tick see every
earlier commit: two writers that checked at once could both store the same key. On one machine
it is a ``flock``, released by the kernel when a process dies, even by SIGKILL, so a crash never
leaves the lake locked. On a PostgreSQL catalog, writers on other machines are kept out as well
by a session advisory lock in the catalog's database (``CatalogLock``), which PostgreSQL
releases when the session ends, a killed process's included. Readers never take either.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.errors import StorageError, WriterBusyError
from storage.lake import attach_error
from storage.lake_config import LakeConfig

if TYPE_CHECKING:
    import psycopg


@contextmanager
def writer_lock(
    path: Path, *, timeout_s: float = 120.0, catalog: CatalogLock | None = None
) -> Iterator[None]:
    """This machine's ``flock`` on ``path``, then ``catalog``'s lock if there is one, each
    waited for until ``timeout_s`` has passed in all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise WriterBusyError(
                        f"another termstore writer (pid {holder}) has held {path} for over "
                        f"{timeout_s:g} s",
                        advice="wait for its ingest, rebuild, import or maintenance to finish, "
                        "or stop it",
                    ) from None
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        remaining = max(0.0, deadline - time.monotonic())
        held: AbstractContextManager[None] = (
            catalog.held(remaining) if catalog is not None else nullcontext()
        )
        with held:
            yield
    finally:
        os.close(fd)


class CatalogLock:
    """A session advisory lock in the PostgreSQL database that holds the lake's catalog, keyed
    by the lake's data path. The session stays open between writes (a new one costs a round trip
    per tick); one that broke in between is opened again."""

    def __init__(self, config: LakeConfig) -> None:
        self._config = config
        digest = hashlib.blake2b(f"termstore writer {config.data_path}".encode(), digest_size=8)
        self.key = int.from_bytes(digest.digest(), "big", signed=True)
        self._session: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._session is None or self._session.closed:
            name = f"termstore writer {socket.gethostname()} pid {os.getpid()}"[:63]
            try:
                self._session = psycopg.connect(
                    self._config.catalog_target,
                    autocommit=True,
                    connect_timeout=10,
                    application_name=name,
                )
            except psycopg.Error as error:
                raise attach_error(self._config, error) from None
        return self._session

    def _try_lock(self) -> bool:
        import psycopg

        for attempt in (1, 2):
            try:
                row = self._connect().execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                return bool(row.fetchone()[0])  # type: ignore[index]
            except psycopg.OperationalError as error:
                self.close()  # a session that broke since the last write: open a new one
                if attempt == 2:
                    raise attach_error(self._config, error) from None
        return False

    def holder(self) -> str:
        """Who holds the lock, as its session named itself ("unknown" when it cannot be read:
        the busy error must not turn into a connection error)."""
        import psycopg

        try:
            return self._holder()
        except (psycopg.Error, StorageError):
            return "unknown"

    def _holder(self) -> str:
        row = (
            self._connect()
            .execute(
                "SELECT a.application_name, host(a.client_addr) FROM pg_locks l "
                "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid::bigint = (%s >> 32) & 4294967295 "
                "AND l.objid::bigint = %s & 4294967295 LIMIT 1",
                [self.key, self.key],
            )
            .fetchone()
        )
        return f"{row[0] or 'unnamed'} from {row[1] or 'a local socket'}" if row else "unknown"

    @contextmanager
    def held(self, timeout_s: float) -> Iterator[None]:
        deadline = time.monotonic() + timeout_s
        while not self._try_lock():
            if time.monotonic() >= deadline:
                raise WriterBusyError(
                    f"another writer ({self.holder()}) has held the lake's writer lock in its "
                    f"PostgreSQL catalog for over {timeout_s:.3g} s",
                    advice="wait for its ingest, rebuild, import or maintenance to finish, "
                    "or stop it",
                )
            time.sleep(0.05)
        try:
            yield
        finally:
            try:
                self._connect().execute("SELECT pg_advisory_unlock(%s)", [self.key])
            except Exception:  # closing the session releases the lock as well
                self.close()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
