"""``termstore doctor``: the effective configuration (no secret shown), then checks of the API
key, the API's health, the lake's catalog (and how many data files and snapshots it holds) and
its data path, Dagster's instance storage (``pipelines/instance_check.py``), then the open alerts.

The lake checks only read, except for one small probe file written and read back under the
data path (``_termstore_doctor/probe.parquet``): listing a bucket proves nothing about writing
to it. Nothing else is created; a lake that does not exist yet is reported as such, not as a
failure, since the first ingest creates it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Final

import typer
from rich.markup import escape
from rich.table import Table

from pipelines.cli.app import app, console
from storage.errors import LakeConfigError, NotInitialisedError, StorageError
from storage.lake_config import DATA_PATH_ENV, LakeConfig

if TYPE_CHECKING:
    import duckdb

    from backquant.config import ClientConfig

PROBE_DIR: Final[str] = "_termstore_doctor"
PROBE_FILE: Final[str] = "probe.parquet"
PROBE_TEXT: Final[str] = "termstore doctor probe"

Check = tuple[str, bool | None, str]


def _status(ok: bool | None) -> str:
    return {True: "[green]ok[/]", False: "[red]FAIL[/]", None: "[yellow]skipped[/]"}[ok]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _scrub(lake: LakeConfig, text: str) -> str:
    """Every known secret masked. Details are built from redacted texts already; this is the
    backstop, and it only replaces exact secrets, so redacted text is left as it is."""
    for secret in lake.secrets:
        text = text.replace(secret, "***")
    return text


@app.command()
def doctor() -> None:
    """Show the effective configuration (no secret), and check the key, the API, the lake's
    catalog and its data path."""
    from backquant.config import API_KEY_ENV, ClientConfig
    from backquant.errors import ConfigError

    try:
        config = ClientConfig.from_env()
        lake = LakeConfig.from_env()
    except (ConfigError, LakeConfigError) as exc:
        console.print(f"[red]configuration error:[/] {escape(_one_line(str(exc)))}", soft_wrap=True)
        raise typer.Exit(2) from None

    _print_settings("Effective configuration", config.describe())
    _print_settings("Lake", lake.describe())

    has_key = config.api_key is not None
    checks: list[Check] = [
        (
            "API key present",
            has_key,
            "set" if has_key else f"{API_KEY_ENV} is not set (the simulator needs none)",
        ),
        ("/v2/health answers", *_health(config)),
    ]
    catalog_ok, catalog_detail, stored_path, size = _catalog_check(lake)
    checks.append(("lake catalog", catalog_ok, catalog_detail))
    if size is not None:
        checks.append(("lake files and snapshots", True, size))
    checks.append(("lake data path", *_data_path_check(lake, stored_path or lake.data_path)))
    instance_ok, instance_detail = _instance_storage_check()
    checks.append(("Dagster instance storage", instance_ok, instance_detail))

    results = Table(title="Checks")
    for column in ("check", "status", "detail"):
        results.add_column(column)
    for name, ok, detail in checks:
        results.add_row(name, _status(ok), escape(_scrub(lake, detail)))
    console.print(results)
    _print_alerts(lake, dagster_readable=instance_ok is not False)
    if any(ok is False for _, ok, _ in checks):
        raise typer.Exit(1)


def _print_alerts(lake: LakeConfig, *, dagster_readable: bool) -> None:
    """The open alerts, evaluated now (so they show with the daemon down), the latest run of
    each watched job and what waits for the webhook. They do not change the exit code."""
    # Imported here: Dagster is slow to import and only this part of doctor needs it.
    from pipelines.alerting import doctor_alerts

    table = Table(title="Alerts")
    for column in ("alert", "status", "detail"):
        table.add_column(column)
    colours = {"open": "red", "queued": "yellow", "unknown": "yellow", "ok": "green"}
    for row in doctor_alerts(lake, dagster_readable=dagster_readable):
        status = f"[{colours.get(row.status, 'white')}]{row.status}[/]"
        table.add_row(row.alert, status, escape(_scrub(lake, row.detail)))
    console.print(table)


def _print_settings(title: str, values: dict[str, str]) -> None:
    settings = Table(title=title, show_header=False)
    for name, value in values.items():
        settings.add_row(name, escape(value))
    console.print(settings)


def _instance_storage_check() -> tuple[bool | None, str]:
    """DAGSTER_HOME's storage: PostgreSQL reachable and migrated, or the SQLite directory."""
    # Imported here: it loads dagster-postgres and SQLAlchemy, which only this check needs.
    from pipelines.instance_check import check_instance_storage

    return check_instance_storage()


def _health(config: ClientConfig) -> tuple[bool, str]:
    import asyncio

    from backquant.client import fetch_health
    from backquant.errors import BackQuantError

    try:
        body = asyncio.run(fetch_health(config))
    except BackQuantError as exc:
        return False, str(exc)
    data = body.get("data")
    status = data.get("status") if isinstance(data, dict) else body.get("status")
    return status == "ok", f"{config.base_url} says status={status!r}"


def _catalog_check(lake: LakeConfig) -> tuple[bool, str, str | None, str | None]:
    """Attach the lake read-only: (ok, detail, the data path the catalog records, its size)."""
    import duckdb

    from storage.lake import LAKE
    from storage.lake_schema import SCHEMA_VERSION, schema_version

    catalog = lake.describe()["catalog"]
    try:
        connection = _attach_read_only(lake)
    except NotInitialisedError:
        return True, f"not created yet — the first ingest creates it ({catalog})", None, None
    except StorageError as error:
        return False, _one_line(str(error)), None, None
    try:
        version = schema_version(connection)
        row = connection.execute(
            f"SELECT data_path FROM ducklake_settings('{LAKE}')"  # noqa: S608 - a constant
        ).fetchone()
        size = _catalog_size(connection, lake)
    except duckdb.Error as error:
        reason = _one_line(lake.redact(str(error)))
        return False, f"attached but unreadable ({catalog}): {reason}", None, None
    finally:
        connection.close()
    stored = str(row[0]) if row and row[0] else None
    if version is None:
        detail = f"a DuckLake with no termstore tables yet — the first ingest adds them ({catalog})"
    elif version != SCHEMA_VERSION:
        detail = (
            f"termstore lake, schema version {version}; the next writer upgrades it to "
            f"{SCHEMA_VERSION} ({catalog})"
        )
    else:
        detail = f"termstore lake, schema version {version} ({catalog})"
    return True, detail, stored, size


def _catalog_size(connection: duckdb.DuckDBPyConnection, lake: LakeConfig) -> str:
    """What the catalog has to read on every query: its live data files and its snapshots."""
    from storage.lake import LAKE

    files = connection.execute(
        f"SELECT coalesce(sum(file_count), 0) FROM ducklake_table_info('{LAKE}')"  # noqa: S608
    ).fetchone()
    snapshots = connection.execute(
        f"SELECT count(*) FROM ducklake_snapshots('{LAKE}')"  # noqa: S608 - a constant
    ).fetchone()
    counted = f"{int(files[0]) if files else 0:,} data files, "
    counted += f"{int(snapshots[0]) if snapshots else 0:,} snapshots"
    if lake.catalog_kind != "sqlite":
        return counted
    return (
        f"{counted}; a SQLite catalog reads their statistics and the snapshots whole on every "
        "query, so queries slow down as they grow (docs/runbook.md: Growth of the default "
        "SQLite catalog)"
    )


def _attach_read_only(lake: LakeConfig) -> duckdb.DuckDBPyConnection:
    """``open_lake(read_only=True)`` without its S3 listing: the data path has its own check,
    so a missing bucket is not also reported as a catalog failure."""
    from storage.connection import new_connection
    from storage.lake import attach

    connection = new_connection(lake)
    try:
        attach(connection, lake, read_only=True, probe_s3=False)
    except BaseException:
        connection.close()
        raise
    return connection


def _data_path_check(lake: LakeConfig, data_path: str) -> tuple[bool, str]:
    if data_path.startswith("s3://"):
        if lake.s3 is None:
            return False, (
                f"the lake's data path is {data_path} but no S3 credentials are set; export "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION, AWS_ENDPOINT_URL)"
            )
        return _s3_data_path(lake, data_path)
    if "://" in data_path:
        return False, f"the lake's data path {data_path} uses a scheme termstore cannot check"
    return _local_data_path(lake, Path(data_path))


def _local_data_path(lake: LakeConfig, directory: Path) -> tuple[bool, str]:
    """Exists and takes the probe, or can be created."""
    import duckdb

    from storage.connection import new_connection

    if not directory.exists():
        parent = next((p for p in directory.parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            return False, (
                f"{directory} does not exist and cannot be created ({parent} is not a writable "
                f"directory); fix the permissions or set {DATA_PATH_ENV}"
            )
        return True, f"{directory} does not exist yet; the first ingest creates it"
    if not directory.is_dir():
        return False, f"{directory} is not a directory; set {DATA_PATH_ENV} to a directory"
    probe_dir = directory / PROBE_DIR
    try:
        connection = new_connection(lake)
    except StorageError as error:
        return False, _one_line(str(error))
    try:
        probe_dir.mkdir(exist_ok=True)
        same = _write_and_read_back(connection, f"{directory}/")
    except (OSError, duckdb.Error) as error:
        return False, (
            f"cannot write and read back {probe_dir / PROBE_FILE} ({_one_line(str(error))}); "
            f"fix the permissions or set {DATA_PATH_ENV} to a writable directory"
        )
    finally:
        connection.close()
        shutil.rmtree(probe_dir, ignore_errors=True)
    if not same:
        return False, f"{probe_dir / PROBE_FILE} read back other content than was written"
    return True, f"{directory} is readable and writable"


def _write_and_read_back(connection: duckdb.DuckDBPyConnection, data_path: str) -> bool:
    """Write the probe as the lake writes its files (DuckDB, Parquet) and read it back."""
    probe = f"{data_path}{PROBE_DIR}/{PROBE_FILE}"
    # COPY takes no parameter for its target, hence the quoting.
    target = probe.replace("'", "''")
    connection.execute(f"COPY (SELECT '{PROBE_TEXT}' AS probe) TO '{target}' (FORMAT parquet)")
    read = connection.execute("SELECT probe FROM read_parquet(?)", [probe]).fetchone()
    return read is not None and read[0] == PROBE_TEXT


def _s3_data_path(lake: LakeConfig, data_path: str) -> tuple[bool, str]:
    """List the prefix, then write the probe object and read it back."""
    import duckdb

    from storage.connection import new_connection

    try:
        connection = new_connection(lake)
    except StorageError as error:
        return False, _one_line(str(error))
    step = "list"
    try:
        listed = connection.execute("SELECT count(*) FROM glob(?)", [f"{data_path}*"]).fetchone()
        step = "write and read back"
        same = _write_and_read_back(connection, data_path)
    except duckdb.Error as error:
        return False, _s3_reason(lake, data_path, step, error)
    finally:
        connection.close()
    if not same:
        return False, f"{data_path}{PROBE_DIR}/{PROBE_FILE} read back other content than written"
    objects = int(listed[0]) if listed else 0
    return True, (
        f"{data_path}: listed ({objects} object(s) at the top level), wrote and read back "
        f"{PROBE_DIR}/{PROBE_FILE}"
    )


def _s3_reason(lake: LakeConfig, data_path: str, step: str, error: BaseException) -> str:
    """One line naming the setting and the bucket, never a secret."""
    bucket = data_path.removeprefix("s3://").split("/", 1)[0]
    text = _one_line(lake.redact(str(error)))
    lowered = text.lower()
    if "nosuchbucket" in lowered or "bucket does not exist" in lowered:
        why = f"the bucket {bucket!r} does not exist; create it or fix {DATA_PATH_ENV}"
    elif any(
        word in lowered
        for word in ("403", "accessdenied", "signaturedoesnotmatch", "invalidaccesskeyid")
    ):
        why = (
            f"access to the bucket {bucket!r} was refused; check AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY and the bucket's policy"
        )
    elif "could not" in lowered and ("connect" in lowered or "resolve" in lowered):
        endpoint = lake.s3.endpoint if lake.s3 and lake.s3.endpoint else "AWS"
        why = f"cannot reach the S3 endpoint {endpoint}; check AWS_ENDPOINT_URL ({text})"
    else:
        why = text
    return f"cannot {step} {data_path} ({DATA_PATH_ENV}, bucket {bucket!r}): {why}"
