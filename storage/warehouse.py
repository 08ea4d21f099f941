"""The warehouse handle: where it lives, its state, and read-only SQL over the catalog."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Final

import duckdb
import polars as pl

from storage.archive import Archive
from storage.catalog import ensure_schema_files, refresh_catalog
from storage.layout import Layout
from storage.locking import writer_lock
from storage.state import TierState, load_state

HOME_ENV: Final[str] = "TERMSTORE_HOME"
DEFAULT_HOME: Final[str] = "warehouse"
DEFAULT_HOT_GRACE: Final[timedelta] = timedelta(hours=1)
"""How long hot files of a cold day stay, so readers of an older catalog can finish."""


class QueryError(RuntimeError):
    """A SQL query against the catalog failed; the message says why and what exists."""


def resolve_home(home: Path | str | None) -> Path:
    chosen = home if home is not None else os.environ.get(HOME_ENV) or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


class Warehouse:
    """A warehouse home. Build it with ``Warehouse.open``; many processes may open one home."""

    def __init__(self, layout: Layout, *, hot_grace: timedelta = DEFAULT_HOT_GRACE) -> None:
        self.layout = layout
        self.archive = Archive(layout)
        self.hot_grace = hot_grace
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._connection_identity: tuple[int, int] | None = None

    @classmethod
    def open(
        cls, home: Path | str | None = None, *, hot_grace: timedelta = DEFAULT_HOT_GRACE
    ) -> Warehouse:
        """Open (creating the layout if needed) the warehouse at ``home``, else
        ``$TERMSTORE_HOME``, else ``./warehouse``."""
        root = resolve_home(home)
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(
                f"warehouse home {root} is a file; point {HOME_ENV} at a directory"
            )
        layout = Layout(root)
        for directory in (layout.state_dir, root / "archive", root / "hot", root / "cold"):
            directory.mkdir(parents=True, exist_ok=True)
        warehouse = cls(layout, hot_grace=hot_grace)
        if not layout.catalog.exists():
            with warehouse.lock():
                ensure_schema_files(layout)
                if not layout.catalog.exists():
                    refresh_catalog(layout, load_state(layout))
        return warehouse

    @property
    def home(self) -> Path:
        return self.layout.home

    def lock(self, timeout_s: float = 120.0) -> AbstractContextManager[None]:
        """The single-writer lock (see storage.locking)."""
        return writer_lock(self.layout.lock_file, timeout_s=timeout_s)

    def state(self) -> TierState:
        return load_state(self.layout)

    def refresh_catalog(self) -> Path:
        """Rebuild ``warehouse.duckdb`` from what is on disk now."""
        with self.lock():
            return refresh_catalog(self.layout, load_state(self.layout))

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A new read-only connection to the catalog (the caller closes it).

        It attaches the catalog to a private in-memory database: DuckDB shares one instance per
        file path within a process, so a plain ``connect(path)`` would hand back an instance
        still showing a catalog that has since been replaced. The connection keeps seeing the
        catalog as it was when opened; open a new one to see newer ticks.
        """
        connection = duckdb.connect(":memory:")
        try:
            path = str(self.layout.catalog).replace("'", "''")
            connection.execute(f"ATTACH '{path}' AS warehouse (READ_ONLY)")
            connection.execute("USE warehouse")
            connection.execute("SET TimeZone = 'UTC'")
        except duckdb.Error:
            connection.close()
            raise
        return connection

    def sql(self, query: str) -> pl.DataFrame:
        """Run a read-only query and return a polars frame.

        The connection is reused while the catalog file is unchanged and reopened when a writer
        has renamed a new catalog into place, so each call sees the latest committed data.
        """
        connection = self._current_connection()
        try:
            frame: pl.DataFrame = connection.sql(query).pl()
            return frame
        except duckdb.Error as exc:
            raise QueryError(
                f"query failed: {exc}. The catalog at {self.layout.catalog} is read-only; its "
                "tables are snapshots, expiries, venue_oi, ingest_log and its views "
                "latest_term_structure, ingest_gaps"
            ) from None
        except AttributeError:
            raise QueryError(
                "the statement returned no result set; termstore sql runs read-only queries"
            ) from None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._connection_identity = None

    def _current_connection(self) -> duckdb.DuckDBPyConnection:
        stat = self.layout.catalog.stat()
        identity = (stat.st_ino, stat.st_mtime_ns)
        if self._connection is None or identity != self._connection_identity:
            self.close()
            self._connection = self.connect()
            self._connection_identity = identity
        return self._connection

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Warehouse({str(self.home)!r})"
