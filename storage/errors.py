"""Every error the warehouse raises: one base class, each carrying what to do about it.

The CLI catches ``StorageError`` everywhere and prints ``str(error)`` on one line with exit code
2; Dagster shows the same text. Messages never hold a secret: they are built from
``LakeConfig.describe()`` values and scrubbed by ``storage.lake_config.redact``.
"""

from __future__ import annotations


class StorageError(RuntimeError):
    """A warehouse operation failed. ``str()`` says what happened; ``advice`` what to do."""

    def __init__(self, message: str, *, advice: str) -> None:
        super().__init__(f"{message}; {advice}")
        self.message = message
        self.advice = advice


class LakeConfigError(StorageError):
    """TERMSTORE_CATALOG, TERMSTORE_DATA_PATH or the S3 settings are not usable as given."""


class CatalogError(StorageError):
    """The lake's catalog (SQLite file or PostgreSQL) cannot be reached or is not a catalog."""


class DataPathError(StorageError):
    """The data path (local directory or S3 bucket) cannot be read or written."""


class NotInitialisedError(StorageError):
    """The catalog has no termstore tables yet and this handle may not create them."""


class NewerLakeError(StorageError):
    """The lake was brought to a schema version this termstore does not know: a newer one."""


class WriterBusyError(StorageError):
    """Another termstore writer has held the writer lock for longer than we would wait."""


class CommitError(StorageError):
    """A transaction could not commit; nothing of it is visible and nothing was lost."""


class QueryError(StorageError):
    """A read-only SQL query failed; the message says why and what exists."""


class SnapshotNotFoundError(QueryError):
    """A time-travel query asked for an instant the lake no longer (or never) had."""


class ArchiveCorruptError(StorageError):
    """An archived body or fetch record cannot be read back."""
