"""DuckDB connections with the lake's extensions loaded from disk.

Extensions load from the wheels pinned in pyproject.toml (``duckdb-extension-*``), never from the
network: autoinstall and autoload are off, and each binary is loaded by its path. The wheels are
built for exactly one DuckDB version, the one pyproject pins (docs/architecture.md says how to
move to a newer one).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Final

import duckdb

from storage.errors import LakeConfigError
from storage.lake_config import LakeConfig

_EXTENSION_PACKAGES: Final[dict[str, str]] = {
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}
_CATALOG_EXTENSIONS: Final[dict[str, str]] = {
    "sqlite": "sqlite_scanner",
    "postgres": "postgres_scanner",
}


def extension_path(name: str) -> Path:
    """The extension binary shipped by its wheel, for the DuckDB version installed."""
    package = _EXTENSION_PACKAGES[name]
    version = f"v{duckdb.__version__}"
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "extensions" / version / f"{name}.duckdb_extension"
        if path.is_file():
            return path
    raise LakeConfigError(
        f"the DuckDB extension {name} for DuckDB {version} is not installed (package "
        f"{package.replace('_', '-')})",
        advice="run `make setup` (uv sync --frozen); the extension wheels must match the "
        "pinned duckdb version",
    )


def required_extensions(config: LakeConfig) -> list[str]:
    names = [_CATALOG_EXTENSIONS[config.catalog_kind], "ducklake"]
    if config.s3 is not None:
        names.append("httpfs")
    return names


def new_connection(config: LakeConfig) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's extensions loaded from disk and UTC as time zone."""
    # The binaries are loaded by path from wheels whose hashes uv.lock pins, so DuckDB's own
    # signature check (which hashes each binary on every connect) is skipped while loading
    # them, then refused again for anything a query might try to load.
    connection = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_unsigned_extensions": True,
        },
    )
    try:
        for name in required_extensions(config):
            connection.execute(f"LOAD '{quoted(str(extension_path(name)))}'")
        connection.execute("SET allow_unsigned_extensions = false")
        if config.catalog_kind == "sqlite":
            connection.execute(ONE_SQLITE_READ)
        connection.execute("SET TimeZone = 'UTC'")
        if config.s3 is not None:
            _create_s3_secret(connection, config)
    except BaseException:
        connection.close()
        raise
    return connection


ONE_SQLITE_READ: Final[str] = "SET GLOBAL sqlite_disable_multithreaded_scans = true"
"""Every read of a SQLite catalog through the transaction's own SQLite connection. Otherwise
the scanner reads each catalog table over a fresh connection, limited to the rowid range the
transaction saw first: a maintenance merge that commits in between (it deletes the merged files'
rows and inserts one above that range) makes a table read as empty, with no error. GLOBAL, so
DuckLake's internal catalog connection has it too (docs/warehouse.md, "Readers")."""


def quoted(text: str) -> str:
    """``text`` as the inside of a SQL string literal."""
    return text.replace("'", "''")


def _create_s3_secret(connection: duckdb.DuckDBPyConnection, config: LakeConfig) -> None:
    s3 = config.s3
    assert s3 is not None
    options = {
        "KEY_ID": s3.key_id,
        "SECRET": s3.secret,
        "REGION": s3.region,
        "URL_STYLE": "path" if s3.endpoint else "vhost",
        "USE_SSL": "true" if s3.use_ssl else "false",
    }
    if s3.endpoint:
        options["ENDPOINT"] = s3.endpoint
    if s3.session_token:
        options["SESSION_TOKEN"] = s3.session_token
    rendered = ", ".join(
        f"{key} {value}" if value in ("true", "false") else f"{key} '{quoted(value)}'"
        for key, value in options.items()
    )
    connection.execute(f"CREATE TEMPORARY SECRET termstore_s3 (TYPE s3, {rendered})")
