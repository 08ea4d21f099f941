"""``termstore doctor``'s check of the Dagster instance (``DAGSTER_HOME``) and its storage.

Read-only: it reads ``$DAGSTER_HOME/dagster.yaml`` and, for storage in PostgreSQL
(deploy/dagster.yaml), connects and reads the schema's revision. It never opens a
``DagsterInstance``, which would create SQLite files or PostgreSQL tables that are missing.
Secrets stay out of every message: the password is masked and variables are named, not shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from storage.lake_config import redact

DAGSTER_HOME_ENV: Final[str] = "DAGSTER_HOME"
INSTANCE_FILE: Final[str] = "dagster.yaml"
MIGRATE: Final[str] = (
    "run `dagster instance migrate` with this DAGSTER_HOME (in deploy/compose.yaml the "
    "dagster-migrate service does it before the other services start)"
)
CONNECT_TIMEOUT_S: Final[int] = 5
REQUIRED_TABLES: Final[tuple[str, ...]] = ("runs", "event_logs", "jobs", "instance_info")
"""One table of each storage (runs, event log, schedules) and the instance's own."""

Check = tuple[bool | None, str]


def check_instance_storage(env: Mapping[str, str] | None = None) -> Check:
    """(ok, detail): ``None`` when there is nothing to check (no DAGSTER_HOME)."""
    env = os.environ if env is None else env
    home_value = env.get(DAGSTER_HOME_ENV, "").strip()
    if not home_value:
        return None, (
            f"{DAGSTER_HOME_ENV} is not set here: `termstore dev` uses ./dagster_home and the "
            f"production image /opt/dagster/dagster_home; set it to check that instance"
        )
    home = Path(home_value).expanduser()
    if not home.is_dir():
        return False, (
            f"{DAGSTER_HOME_ENV}={home} is not a directory: `termstore dev` creates it on its "
            f"first start; otherwise create it with the instance's {INSTANCE_FILE} in it "
            "(deploy/dagster.yaml for PostgreSQL)"
        )
    config_file = home / INSTANCE_FILE
    try:
        config = yaml.safe_load(config_file.read_text()) if config_file.exists() else None
    except (OSError, yaml.YAMLError) as error:
        return False, f"{config_file} cannot be read: {_one_line(str(error))}"
    postgres = _postgres_config(config or {})
    if postgres is None:
        return _check_local(home, config_file)
    try:
        url, where, secrets = _postgres_url(postgres, env)
    except _MissingVariableError as error:
        return False, str(error)
    return _check_postgres(url, where, secrets)


class _MissingVariableError(Exception):
    """An ``env:`` reference of dagster.yaml names a variable that is not set."""


def _postgres_config(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The postgres block of ``storage:`` or of a dagster_postgres ``run_storage:``, if any."""
    storage = config.get("storage")
    if isinstance(storage, Mapping) and isinstance(storage.get("postgres"), Mapping):
        return dict(storage["postgres"])
    run_storage = config.get("run_storage")
    if isinstance(run_storage, Mapping) and str(run_storage.get("module", "")).startswith(
        "dagster_postgres"
    ):
        return dict(run_storage.get("config") or {})
    return None


def _check_local(home: Path, config_file: Path) -> Check:
    """The default instance: SQLite files under DAGSTER_HOME, created on first use."""
    storage = home / "storage"
    which = config_file if config_file.exists() else f"no {INSTANCE_FILE}, Dagster's defaults"
    if not os.access(home, os.W_OK | os.X_OK):
        return False, f"{home} is not writable: Dagster keeps its SQLite storage there"
    state = "exists" if storage.is_dir() else "is created on first use"
    return True, (
        f"SQLite storage under {storage} ({state}; {which}): for one machine; "
        "deploy/dagster.yaml puts it in PostgreSQL"
    )


def _resolve(value: Any, env: Mapping[str, str], field: str) -> str:
    if isinstance(value, Mapping) and "env" in value:
        name = str(value["env"])
        resolved = env.get(name)
        if resolved is None or resolved == "":
            raise _MissingVariableError(
                f"{name} is not set; the instance's {INSTANCE_FILE} reads Dagster's PostgreSQL "
                f"{field} from it"
            )
        return resolved
    return "" if value is None else str(value)


def _postgres_url(
    postgres: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[str, str, tuple[str, ...]]:
    """The SQLAlchemy URL (with the password), a description of it without one, and the
    secrets to mask in messages."""
    from dagster_postgres.utils import get_conn_string

    if "postgres_url" in postgres:
        url = _resolve(postgres["postgres_url"], env, "URL")
        secret = url.split("://", 1)[-1].split("@", 1)[0].partition(":")[2]
        secrets = (secret,) if secret else ()
        return url, redact(url, secrets), secrets
    db = postgres.get("postgres_db") or {}
    fields = {
        name: _resolve(db.get(name), env, name)
        for name in ("username", "password", "hostname", "db_name", "port", "scheme")
        if db.get(name) is not None
    }
    url = get_conn_string(
        username=fields.get("username", ""),
        password=fields.get("password", ""),
        hostname=fields.get("hostname", ""),
        db_name=fields.get("db_name", ""),
        port=fields.get("port", "5432"),
        params=db.get("params") or None,
        scheme=fields.get("scheme", "postgresql"),
    )
    where = (
        f"{fields.get('hostname', '')}:{fields.get('port', '5432')}/{fields.get('db_name', '')} "
        f"as {fields.get('username', '')}"
    )
    password = fields.get("password", "")
    return url, where, (password,) if password else ()


def _check_postgres(url: str, where: str, secrets: tuple[str, ...]) -> Check:
    import sqlalchemy as sa
    from dagster._core.storage.sql import check_alembic_revision
    from dagster_postgres import run_storage
    from dagster_postgres.utils import pg_alembic_config

    try:
        engine = sa.create_engine(
            url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
        )
    except (ImportError, sa.exc.ArgumentError) as error:
        return False, (
            f"Dagster's PostgreSQL URL for {where} cannot be used: "
            f"{_one_line(redact(str(error), secrets))}"
            " (the scheme names a driver that is not installed? deploy/dagster.yaml uses "
            "postgresql+psycopg2, which dagster-postgres installs)"
        )
    try:
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            revision, head = check_alembic_revision(
                pg_alembic_config(run_storage.__file__), connection
            )
    except sa.exc.SQLAlchemyError as error:
        reason = _one_line(redact(str(getattr(error, "orig", None) or error), secrets))
        return False, (
            f"cannot reach Dagster's PostgreSQL at {where}: {reason}; check that the server runs "
            "and the DAGSTER_PG_* variables (host, port, user, password, database)"
        )
    finally:
        engine.dispose()
    missing = [table for table in REQUIRED_TABLES if table not in tables]
    if missing:
        return False, (
            f"Dagster's PostgreSQL at {where} has no instance schema (no {', '.join(missing)} "
            f"table): {MIGRATE}"
        )
    if revision != head:
        return False, (
            f"Dagster's schema at {where} is at revision {revision}, this Dagster needs {head}: "
            f"{MIGRATE}"
        )
    return True, f"PostgreSQL at {where}, schema migrated (revision {head})"


def _one_line(text: str) -> str:
    return " ".join(text.split())
