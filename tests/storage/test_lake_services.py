"""DuckLake on a real PostgreSQL catalog and a real S3 store, at the DuckDB level.

No termstore code: this proves the test services (tests/support/services.py) and the pinned
extension wheels work together, so a failure in the storage tests built on them is theirs.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import duckdb
import psycopg

from tests.support.services import PostgresServer, S3Server

BUCKET = "lake-services"
PREFIX = "lake/"
ROWS = [(1, "BTC-27MAR26"), (2, "ETH-27MAR26"), (3, "BTC-26JUN26")]

EXTENSIONS = {
    "duckdb_extension_ducklake": "ducklake",
    "duckdb_extension_postgres_scanner": "postgres_scanner",
    "duckdb_extension_httpfs": "httpfs",
}

# A fresh process with nothing but the AWS variables and the catalog string (and the extension
# files as arguments): what a second machine reading the lake would have. It derives the S3
# secret from the standard variables and finds the data path in the catalog.
READER = """
import os, sys
import duckdb

offline = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
con = duckdb.connect(config=offline)
for extension_file in sys.argv[1:]:
    con.execute(f"LOAD '{extension_file}'")
endpoint = os.environ["AWS_ENDPOINT_URL"]
con.execute(
    "CREATE SECRET (TYPE s3, PROVIDER config, KEY_ID $1, SECRET $2, REGION $3, ENDPOINT $4, "
    "URL_STYLE 'path', USE_SSL $5)",
    [
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        os.environ["AWS_REGION"],
        endpoint.split("://", 1)[1],
        endpoint.startswith("https://"),
    ],
)
con.execute(f"ATTACH 'ducklake:{os.environ['LAKE_CATALOG']}' AS lake (READ_ONLY)")
for row in con.execute("SELECT id, symbol FROM lake.instruments ORDER BY id").fetchall():
    print(*row, sep=",")
"""


def extension_file(package: str, name: str) -> Path:
    """The extension binary inside its wheel (a namespace package, so no ``__file__``)."""
    spec = find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    directory = Path(spec.submodule_search_locations[0])
    return directory / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"


def extension_files() -> list[str]:
    return [str(extension_file(package, name)) for package, name in EXTENSIONS.items()]


def offline_connection() -> duckdb.DuckDBPyConnection:
    # The extensions come from the installed wheels, never the network: autoinstall and autoload
    # are off, so a missing wheel fails here instead of quietly downloading.
    connection = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    for path in extension_files():
        connection.execute(f"LOAD '{path}'")
    return connection


def create_s3_secret(connection: duckdb.DuckDBPyConnection, s3: S3Server) -> None:
    # moto serves plain HTTP on 127.0.0.1 with no wildcard DNS, so DuckDB must use path-style
    # URLs (http://host/bucket/key) rather than virtual-host ones (http://bucket.host/key).
    connection.execute(
        "CREATE SECRET (TYPE s3, PROVIDER config, KEY_ID $1, SECRET $2, REGION $3, ENDPOINT $4, "
        "URL_STYLE 'path', USE_SSL false)",
        [s3.access_key, s3.secret_key, s3.region, s3.host_port],
    )


def test_ducklake_on_postgres_and_s3(postgres_server: PostgresServer, s3_server: S3Server) -> None:
    s3_server.create_bucket(BUCKET)
    catalog = postgres_server.ducklake_catalog()
    connection = offline_connection()
    create_s3_secret(connection, s3_server)
    connection.execute(f"ATTACH 'ducklake:{catalog}' AS lake (DATA_PATH 's3://{BUCKET}/{PREFIX}')")
    connection.execute("CREATE TABLE lake.instruments (id INTEGER, symbol VARCHAR)")
    # Without this, DuckLake keeps small inserts in the catalog and no Parquet reaches S3.
    connection.execute("CALL lake.set_option('data_inlining_row_limit', 0)")
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO lake.instruments VALUES (?, ?)", ROWS)
    connection.execute("COMMIT")

    read_back = connection.execute("SELECT id, symbol FROM lake.instruments ORDER BY id").fetchall()
    assert read_back == ROWS
    keys = s3_server.list_keys(BUCKET, PREFIX)
    assert any(key.endswith(".parquet") for key in keys), keys
    assert s3_server.list_keys(BUCKET) == keys, "data files outside DATA_PATH"
    with psycopg.connect(postgres_server.dsn()) as catalog_db:
        catalog_tables = catalog_db.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ducklake%'"
        ).fetchone()
    assert catalog_tables is not None and catalog_tables[0] > 0, "no DuckLake tables in PG"
    connection.close()

    reader = subprocess.run(
        [sys.executable, "-c", READER, *extension_files()],
        env={**s3_server.env(), "LAKE_CATALOG": catalog},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.splitlines() == [f"{row_id},{symbol}" for row_id, symbol in ROWS]
