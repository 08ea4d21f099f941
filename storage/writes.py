"""Writing to the lake: one transaction at a time, frames in by table schema.

Every change termstore makes (a tick, a rebuilt day, an import batch, a research sample) is one
``transaction``: DuckLake commits all its tables at once or none of them, so a reader sees the
whole change or nothing of it, and a process killed mid-way leaves no trace. A failed commit is
raised as ``CommitError`` (or ``DataPathError`` when the data files could not be written), with
every secret scrubbed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Final, TypeVar

import duckdb
import polars as pl

from storage.derived import stored_arrow, stored_table
from storage.errors import CommitError, DataPathError, StorageError
from storage.lake_config import DATA_PATH_ENV, LakeConfig

T = TypeVar("T")
CONFLICT_ATTEMPTS: Final[int] = 5
_CONFLICT: Final[str] = "transaction conflict"


@contextmanager
def transaction(
    connection: duckdb.DuckDBPyConnection, config: LakeConfig, what: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT around the block; ROLLBACK and a clear error when anything fails."""
    connection.execute("BEGIN")
    try:
        yield connection
        connection.execute("COMMIT")
    except duckdb.Error as error:
        _rollback(connection)
        raise write_error(config, what, error) from None
    except BaseException:
        _rollback(connection)
        raise


def _rollback(connection: duckdb.DuckDBPyConnection) -> None:
    # A failed COMMIT has already ended the transaction: nothing left to roll back.
    with suppress(duckdb.Error):
        connection.execute("ROLLBACK")


def write_error(config: LakeConfig, what: str, error: BaseException) -> StorageError:
    """A failed write as an error a person can act on; nothing of it was committed."""
    lines = [line.strip() for line in config.redact(str(error)).splitlines() if line.strip()]
    text = lines[0]
    # DuckLake says which writer won on the line after "Failed to commit".
    text += "".join(f" {line}" for line in lines[1:2] if line.lower().startswith(_CONFLICT))
    lowered = text.lower()
    data_problem = any(
        marker in lowered
        for marker in ("http", "s3", "no space", "permission denied", "could not write", "bucket")
    )
    if data_problem:
        return DataPathError(
            f"{what} could not write its data files to {config.data_path}: {text}",
            advice=f"check that {DATA_PATH_ENV} exists and is writable (bucket, credentials, "
            "disk space); nothing was committed, run it again once fixed",
        )
    return CommitError(
        f"{what} could not commit: {text}",
        advice="nothing was committed and nothing is lost; run it again, and check that the "
        "catalog is reachable (`termstore doctor`)",
    )


def retry_on_conflict(action: Callable[[], T]) -> T:
    """``action`` (reads and the transaction built from them) run again while DuckLake refuses
    its commit because another writer committed to the same table first. The writer lock
    orders the writers of one machine; this orders those of several sharing a catalog."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return action()
        except CommitError as error:
            if attempt == CONFLICT_ATTEMPTS or _CONFLICT not in error.message.lower():
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def insert(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    *,
    as_published: bool = False,
) -> int:
    """Append ``frame`` to ``table`` (one of ``TABLE_SCHEMAS``); returns the rows written.
    ``as_published``: see ``storage.derived.stored_arrow``."""
    if frame.height == 0:
        return 0
    relation = stored_arrow(connection, table, frame, as_published=as_published)
    relation.insert_into(stored_table(table))
    return frame.height
