"""Copy a termstore lake into a new, empty one: every row of every table, in one transaction.

    TERMSTORE_CATALOG='postgres:host=… dbname=termstore user=termstore' PGPASSWORD=… \\
    TERMSTORE_DATA_PATH=s3://termstore/lake AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \\
    AWS_ENDPOINT_URL=… .venv/bin/python deploy/copy_lake.py --from-home ./warehouse

The source is the local lake of ``--from-home`` (its catalog file and data directory, the
default layout), read where it is now: a copy of a home, at any path, will do. The target is
the lake the environment configures, as for every termstore command. It is created like any new
lake (tables, partitioning, views, options) and must hold no rows yet; then the raw archive
(``responses``), the summary tables, ``ingest_log``, ``quarantine`` and ``hourly_sample`` are
streamed across (Arrow, batch by batch, never the whole lake in memory) and committed together:
the new lake has all of it or nothing. The source is only read; it must be at this termstore's
schema version.

Snapshots are not copied: time travel on the new lake starts at the copy. Run ``termstore
maintain`` afterwards to merge the copied files into one per table and month.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

from storage.errors import StorageError
from storage.lake import open_lake
from storage.lake_config import CATALOG_ENV, HOME_ENV, LakeConfig
from storage.lake_schema import LAKE_TABLES, SCHEMA_VERSION, schema_version
from storage.warehouse import Warehouse
from storage.writes import transaction

BATCH_ROWS = 10_000


def copy_lake(source: LakeConfig, target: Warehouse) -> dict[str, int]:
    """Rows copied per table. Raises StorageError saying what is wrong."""
    if source.attach_target() == target.config.attach_target():
        raise StorageError(
            "the source and the target are the same lake",
            advice=f"point {CATALOG_ENV} (and TERMSTORE_DATA_PATH) at the new lake",
        )
    # Read as it is: a reader of an older schema version would upgrade it (Warehouse.connect).
    reader = open_lake(source, read_only=True, moved=True)
    try:
        version = schema_version(reader)
        if version != SCHEMA_VERSION:
            raise StorageError(
                f"the source lake's schema is version {version}, this termstore's is "
                f"{SCHEMA_VERSION}",
                advice="run `termstore maintain` on the source lake first (its writer "
                "upgrades the schema), then copy",
            )
        copied: dict[str, int] = {}
        with target.writer() as writer:
            for table in LAKE_TABLES:
                existing = _count(writer, table)
                if existing:
                    raise StorageError(
                        f"the target lake already has rows ({existing} in {table})",
                        advice="copy into a new, empty lake: a new database and a new data "
                        "path (or prefix)",
                    )
            with transaction(writer, target.config, "the lake copy"):
                for table in LAKE_TABLES:
                    # Table names are the lake's own (LAKE_TABLES), never input.
                    query = f"SELECT * FROM {table}"  # noqa: S608
                    batches = reader.execute(query).fetch_record_batch(BATCH_ROWS)
                    writer.register("source_batches", batches)
                    insert = f"INSERT INTO {table} BY NAME SELECT * FROM source_batches"  # noqa: S608
                    writer.execute(insert)
                    writer.unregister("source_batches")
                    copied[table] = _count(writer, table)
        return copied
    finally:
        reader.close()


def _count(connection: duckdb.DuckDBPyConnection, table: str) -> int:
    row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-home", type=Path, required=True, help="the source lake's home")
    arguments = parser.parse_args(argv)
    try:
        source = LakeConfig.from_env(env={HOME_ENV: str(arguments.from_home)})
        target = Warehouse.open()
        started = time.perf_counter()
        copied = copy_lake(source, target)
    except StorageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    described = target.config.describe()
    print(
        f"copied into {described['catalog']} ({described['data path']}) in "
        f"{time.perf_counter() - started:.1f} s:"
    )
    for table, rows in copied.items():
        print(f"  {table}: {rows} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
