"""The lake attached as ``lake`` to a connection of storage.connection, read-only or not.

Failures are sorted into what a person can fix, with every secret scrubbed from the message:
a catalog that cannot be reached or is not a catalog (``CatalogError``), a data path that cannot
be read or written (``DataPathError``), a lake with no termstore tables (``NotInitialisedError``).
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Final

import duckdb

from storage.connection import (
    ONE_SQLITE_READ,
    extension_path,
    new_connection,
    quoted,
    required_extensions,
)
from storage.errors import (
    CatalogError,
    DataPathError,
    LakeConfigError,
    NotInitialisedError,
    SnapshotNotFoundError,
    StorageError,
)
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, LakeConfig

LAKE: Final[str] = "lake"
"""The name the lake is attached under in every termstore connection."""


def attach(
    connection: duckdb.DuckDBPyConnection,
    config: LakeConfig,
    *,
    read_only: bool,
    snapshot_time: datetime | None = None,
    moved: bool = False,
    probe_s3: bool = True,
) -> None:
    """Attach the lake as ``lake`` and make it the default database.

    A writer creates a missing catalog file (SQLite in WAL mode, so readers in other processes
    never block it); a reader of a missing catalog gets ``NotInitialisedError``. ``moved``: read
    the data files under ``config.data_path`` whatever path the catalog recorded (a copied home;
    the catalog keeps its data files' paths relative to it). ``probe_s3=False`` skips the
    listing of an S3 data path (``termstore doctor`` checks it on its own)."""
    # A bucket that cannot be listed fails before any catalog is created or attached.
    if config.data_on_s3 and probe_s3:
        _check_s3_data_path(connection, config)
    catalog_file = config.catalog_file
    created = False
    if catalog_file is not None:
        created = _check_catalog_file(catalog_file, create=not read_only)
    local_data = not config.data_on_s3 and not read_only
    if local_data and catalog_file is not None:
        _check_local_data_path(config)
    options = []
    # The data path is stored in the catalog when the lake is created; naming another one
    # later is refused by DuckLake (the error says which).
    if config.data_path_explicit or created or moved:
        options.append(f"DATA_PATH '{quoted(config.data_path)}'")
    if moved:
        options.append("OVERRIDE_DATA_PATH true")
    if read_only:
        options.append("READ_ONLY")
    if snapshot_time is not None:
        options.append(f"SNAPSHOT_TIME '{snapshot_time.isoformat()}'")
    try:
        listed = f" ({', '.join(options)})" if options else ""
        connection.execute(f"ATTACH '{quoted(config.attach_target())}' AS {LAKE}{listed}")
        connection.execute(f"USE {LAKE}")
    except duckdb.Error as error:
        if snapshot_time is not None and "no snapshot found" in str(error).lower():
            raise SnapshotNotFoundError(
                f"the lake has no snapshot at {snapshot_time.isoformat()}",
                advice=f"time travel reaches back {config.retention_days:g} days "
                "(TERMSTORE_SNAPSHOT_RETENTION_DAYS) and not before the lake was created; "
                "ducklake_snapshots('lake') lists the instants it has",
            ) from None
        raise attach_error(config, error) from None
    if local_data and catalog_file is None:
        # After a PostgreSQL catalog answered: one that cannot be reached leaves no directory.
        _check_local_data_path(config)


def attach_error(config: LakeConfig, error: BaseException) -> StorageError:
    """A failed ATTACH as an error a person can act on (no secret in it)."""
    text = config.redact(str(error)).splitlines()[0]
    lowered = text.lower()
    if "does not match existing data path" in lowered:
        return LakeConfigError(
            f"{DATA_PATH_ENV}={config.data_path!r} is not this lake's data path ({text})",
            advice=f"unset {DATA_PATH_ENV} to use the path the catalog names, or point "
            f"{CATALOG_ENV} at the lake that uses this data path",
        )
    if "requires the extension httpfs" in lowered:
        return LakeConfigError(
            f"the lake keeps its data files on S3 but no S3 credentials are set ({text})",
            advice="export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION, "
            f"AWS_ENDPOINT_URL); {DATA_PATH_ENV} may stay unset, the catalog names the path",
        )
    if "data_path is not set" in lowered:
        return LakeConfigError(
            f"the catalog {config.describe()['catalog']!r} holds no lake yet, and a new lake "
            f"needs {DATA_PATH_ENV}: where its data files go",
            advice=f"set {DATA_PATH_ENV} to a directory or an s3:// path (the catalog keeps "
            f"it from then on), or point {CATALOG_ENV} at an existing lake",
        )
    if "creating a new ducklake is explicitly disabled" in lowered:
        # A read-only attach of a reachable database that holds no lake yet.
        return NotInitialisedError(
            f"the catalog {config.describe()['catalog']!r} holds no lake yet",
            advice="run `termstore ingest --once` or `termstore import` to create it, or "
            f"point {CATALOG_ENV} at an existing lake",
        )
    if config.catalog_kind == "postgres":
        # libpq's own reason, without DuckDB's restatements of the connection string.
        start = lowered.rfind("connection to server")
        reason = text[start:] if start >= 0 else text
        return CatalogError(
            f"cannot open the PostgreSQL catalog {config.describe()['catalog']!r}: {reason}",
            advice=f"check that PostgreSQL is running and reachable, and the host, port, "
            f"dbname, user and password in {CATALOG_ENV}",
        )
    if "not a database" in lowered or "file is encrypted" in lowered:
        return CatalogError(
            f"the catalog file {config.catalog_target} is not a SQLite database",
            advice=f"point {CATALOG_ENV} at a termstore catalog, or move the file away",
        )
    return CatalogError(
        f"cannot open the lake catalog {config.describe()['catalog']!r}: {text}",
        advice=f"check {CATALOG_ENV} and the permissions of the catalog file",
    )


def _check_catalog_file(path: Path, *, create: bool) -> bool:
    """A catalog file must be a DuckLake catalog; a writer may create a new one (True)."""
    if not path.exists() or path.stat().st_size == 0:
        if not create:
            raise NotInitialisedError(
                f"there is no lake catalog at {path} yet",
                advice="run `termstore ingest --once` or `termstore import` to create it, or "
                f"point {CATALOG_ENV} / TERMSTORE_HOME at an existing lake",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path)) as created:
            created.execute("PRAGMA journal_mode=WAL")
        return True
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as existing:
            tables = {
                row[0]
                for row in existing.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
    except sqlite3.DatabaseError as error:
        raise CatalogError(
            f"the catalog file {path} is not a SQLite database ({error})",
            advice=f"point {CATALOG_ENV} at a termstore catalog, or move the file away",
        ) from None
    if tables and "ducklake_metadata" not in tables:
        raise CatalogError(
            f"the SQLite file {path} is not a DuckLake catalog (it has other tables)",
            advice=f"point {CATALOG_ENV} at a termstore catalog; termstore never writes into "
            "a database it did not create",
        )
    return not tables


def _check_local_data_path(config: LakeConfig) -> None:
    directory = Path(config.data_path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataPathError(
            f"cannot create the data directory {directory} ({error.strerror})",
            advice=f"fix the permissions or set {DATA_PATH_ENV} to a writable directory",
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DataPathError(
            f"the data directory {directory} is not writable",
            advice=f"fix its permissions or set {DATA_PATH_ENV} to a writable directory",
        )


def attach_script(config: LakeConfig) -> str:
    """The SQL that attaches this lake read-only in any DuckDB of the pinned version (the CLI,
    another language's client), loading the extensions from termstore's wheels. It holds no
    secret: a PostgreSQL password comes from ``PGPASSWORD`` (libpq reads it), and an S3 data
    path needs a ``CREATE SECRET`` the script shows with placeholders."""
    lines = [
        "SET autoinstall_known_extensions = false;",
        "SET autoload_known_extensions = false;",
        *(f"LOAD '{quoted(str(extension_path(name)))}';" for name in required_extensions(config)),
        *([f"{ONE_SQLITE_READ};"] if config.catalog_kind == "sqlite" else []),
        "SET TimeZone = 'UTC';",
    ]
    if config.s3 is not None:
        endpoint = (
            f", ENDPOINT '{config.s3.endpoint}', URL_STYLE 'path'" if config.s3.endpoint else ""
        )
        ssl = "" if config.s3.use_ssl else ", USE_SSL false"
        lines.append(
            f"CREATE SECRET (TYPE s3, PROVIDER config, KEY_ID '<AWS_ACCESS_KEY_ID>', "
            f"SECRET '<AWS_SECRET_ACCESS_KEY>', REGION '{config.s3.region}'{endpoint}{ssl});"
        )
    target = _PASSWORD_OPTION.sub("", config.attach_target()).strip()
    lines.append(f"ATTACH '{quoted(target)}' AS {LAKE} (READ_ONLY);")
    lines.append(f"USE {LAKE};")
    return "\n".join(lines)


_PASSWORD_OPTION: Final = re.compile(r"\s*password\s*=\s*('[^']*'|\S+)", re.IGNORECASE)


def _check_s3_data_path(connection: duckdb.DuckDBPyConnection, config: LakeConfig) -> None:
    """One listing under a name nothing uses: a missing bucket or refused credentials fail here,
    on attach, instead of at the first commit or read (DuckLake touches no object before)."""
    probe = f"{config.data_path}.termstore-probe*"
    try:
        connection.execute("SELECT count(*) FROM glob(?)", [probe]).fetchone()
    except duckdb.Error as error:
        lines = [line.strip() for line in config.redact(str(error)).splitlines() if line.strip()]
        # DuckDB's first line says which request failed; the next one S3's reason.
        reason = " ".join(line for line in lines[:2] if not line.startswith("LINE "))
        raise DataPathError(
            f"{DATA_PATH_ENV}={config.data_path!r} cannot be listed: {reason}",
            advice="check that the bucket exists and that AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (and AWS_REGION, AWS_ENDPOINT_URL) may read and write it",
        ) from None


def open_lake(
    config: LakeConfig,
    *,
    read_only: bool,
    snapshot_time: datetime | None = None,
    moved: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A new connection with the lake attached (the caller closes it)."""
    connection = new_connection(config)
    try:
        attach(connection, config, read_only=read_only, snapshot_time=snapshot_time, moved=moved)
    except BaseException:
        connection.close()
        raise
    return connection
