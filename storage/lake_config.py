"""Where the lake lives: its catalog, its data path and the credentials to reach them.

One code path for every deployment; only these settings differ:

- default, no service to run: the catalog is a SQLite file and the data files a directory, both
  under ``TERMSTORE_HOME`` (``catalog.sqlite`` and ``data/``);
- a team's setup: ``TERMSTORE_CATALOG=postgres:host=… dbname=… user=…`` (a DuckLake catalog
  string) and ``TERMSTORE_DATA_PATH=s3://bucket/prefix``, with S3 credentials, region and
  endpoint from the standard ``AWS_*`` variables.

Secrets (the catalog password, ``PGPASSWORD``, the S3 secret key and session token) are held
only to build the connection; ``describe()`` and ``redact()`` keep them out of every message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from storage.errors import LakeConfigError

HOME_ENV: Final[str] = "TERMSTORE_HOME"
CATALOG_ENV: Final[str] = "TERMSTORE_CATALOG"
DATA_PATH_ENV: Final[str] = "TERMSTORE_DATA_PATH"
RETENTION_ENV: Final[str] = "TERMSTORE_SNAPSHOT_RETENTION_DAYS"
DEFAULT_HOME: Final[str] = "warehouse"
CATALOG_FILE: Final[str] = "catalog.sqlite"
DATA_DIR: Final[str] = "data"
DEFAULT_RETENTION_DAYS: Final[float] = 7.0

_CATALOG_KINDS: Final[tuple[str, ...]] = ("sqlite", "postgres")
_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)([^@\s]+)(@)", re.IGNORECASE)
_MASK: Final[str] = "***"


@dataclass(frozen=True, slots=True)
class S3Settings:
    """S3 credentials and endpoint, from the standard AWS variables."""

    key_id: str = field(repr=False)
    secret: str = field(repr=False)
    region: str
    endpoint: str | None
    """``host:port`` of a non-AWS endpoint (MinIO, moto, …), None for AWS itself."""
    use_ssl: bool
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class LakeConfig:
    """The lake's settings; build it with ``LakeConfig.from_env``."""

    home: Path
    """Local directory for the writer lock and, by default, the catalog file and data."""
    catalog_kind: str
    """``sqlite`` or ``postgres``."""
    catalog_target: str = field(repr=False)
    """What follows ``<kind>:`` in the DuckLake catalog string (may hold a password)."""
    data_path: str
    """Absolute directory or ``s3://bucket/prefix/``, always ending in a slash."""
    data_path_explicit: bool = False
    """Set by TERMSTORE_DATA_PATH (else the default under home, used when a lake is created)."""
    s3: S3Settings | None = field(default=None, repr=False)
    retention_days: float = DEFAULT_RETENTION_DAYS
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_env(
        cls, home: Path | str | None = None, env: Mapping[str, str] | None = None
    ) -> LakeConfig:
        """The settings in ``env`` (default: the process environment); ``home`` overrides
        ``TERMSTORE_HOME``. Raises LakeConfigError saying what to set."""
        env = os.environ if env is None else env
        root = resolve_home(home if home is not None else env.get(HOME_ENV) or None)
        if root.exists() and not root.is_dir():
            raise LakeConfigError(
                f"{HOME_ENV}={str(root)!r} is not a directory",
                advice="point it at a directory (created when missing), or unset it for "
                f"./{DEFAULT_HOME}",
            )
        kind, target = _catalog(env.get(CATALOG_ENV, "").strip(), root)
        data_path_value = env.get(DATA_PATH_ENV, "").strip()
        data_path = _data_path(data_path_value, root)
        s3 = None
        if data_path.startswith("s3://"):
            s3 = _s3_settings(env)
        elif env.get(CATALOG_ENV, "").strip() and not data_path_value and _has_s3_keys(env):
            # A reader of a team's lake need not repeat the data path the catalog names; the
            # AWS_* keys say it may be on S3. (Not for the default catalog file: AWS keys set
            # for something else would make every local query load httpfs.)
            s3 = _s3_settings(env)
        secrets = [
            value
            for value in (
                _catalog_password(target),
                env.get("PGPASSWORD"),
                s3.secret if s3 else None,
                s3.session_token if s3 else None,
            )
            if value
        ]
        return cls(
            home=root,
            catalog_kind=kind,
            catalog_target=target,
            data_path=data_path,
            data_path_explicit=bool(data_path_value),
            s3=s3,
            retention_days=_retention(env.get(RETENTION_ENV, "").strip()),
            secrets=tuple(secrets),
        )

    @property
    def is_local(self) -> bool:
        """Catalog file and data directory on this machine (the default)."""
        return self.catalog_kind == "sqlite" and not self.data_on_s3

    @property
    def data_on_s3(self) -> bool:
        """``TERMSTORE_DATA_PATH`` names an S3 path (unset, the catalog's path is used, and
        ``s3`` holds the credentials for it when the AWS_* keys are set)."""
        return self.data_path.startswith("s3://")

    @property
    def catalog_file(self) -> Path | None:
        return Path(self.catalog_target) if self.catalog_kind == "sqlite" else None

    @property
    def lock_file(self) -> Path:
        return self.home / "writer.lock"

    def attach_target(self) -> str:
        """The DuckLake catalog string handed to ATTACH (holds the password, if any)."""
        return f"ducklake:{self.catalog_kind}:{self.catalog_target}"

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def describe(self) -> dict[str, str]:
        """The effective settings for people to read: no secret in any value."""
        described = {
            "home": str(self.home),
            "catalog": self.redact(f"{self.catalog_kind}:{self.catalog_target}"),
            "data path": self.data_path
            if self.data_path_explicit or self.catalog_kind == "sqlite"
            else f"the one the catalog names ({DATA_PATH_ENV} unset)",
            "snapshot retention": f"{self.retention_days:g} days",
        }
        if self.s3 is not None:
            described["S3 endpoint"] = self.s3.endpoint or "AWS"
            described["S3 region"] = self.s3.region
            described["S3 credentials"] = "set (key id and secret from AWS_* variables)"
        return described


def resolve_home(home: Path | str | None) -> Path:
    chosen = home if home is not None else os.environ.get(HOME_ENV) or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with every known secret and every ``password=…`` value masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    text = _URI_PASSWORD.sub(rf"\g<1>{_MASK}\g<3>", text)
    return _PASSWORD.sub(rf"\g<1>{_MASK}", text)


def _catalog(value: str, home: Path) -> tuple[str, str]:
    if not value:
        return "sqlite", str(home / CATALOG_FILE)
    text = value.removeprefix("ducklake:")
    kind, sep, target = text.partition(":")
    if not sep or kind not in _CATALOG_KINDS or not target.strip():
        shown = redact(value)
        raise LakeConfigError(
            f"{CATALOG_ENV}={shown!r} is not a catalog termstore can use",
            advice="set it to 'sqlite:/path/to/catalog.sqlite' or 'postgres:host=… dbname=… "
            "user=…' (a DuckLake catalog string), or unset it for the default catalog file "
            f"under {HOME_ENV}",
        )
    if kind == "sqlite":
        path = Path(target).expanduser()
        return kind, str(path if path.is_absolute() else path.resolve())
    return kind, target.strip()


def _catalog_password(target: str) -> str | None:
    match = _PASSWORD.search(target) or _URI_PASSWORD.search(target)
    if match is None:
        return None
    password = match.group(2)
    return password.strip("'") or None


def _data_path(value: str, home: Path) -> str:
    if not value:
        return f"{home / DATA_DIR}/"
    if value.startswith("s3://"):
        bucket = value.removeprefix("s3://").split("/", 1)[0]
        if len(bucket) < 3:
            raise LakeConfigError(
                f"{DATA_PATH_ENV}={value!r} names no usable bucket",
                advice="set it to s3://<bucket>/<prefix> (bucket names have 3 to 63 characters)",
            )
        return value.rstrip("/") + "/"
    if "://" in value:
        raise LakeConfigError(
            f"{DATA_PATH_ENV}={value!r} uses a scheme termstore does not support",
            advice="use a local directory or s3://<bucket>/<prefix>",
        )
    return f"{Path(value).expanduser().resolve()}/"


def _has_s3_keys(env: Mapping[str, str]) -> bool:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    return all(env.get(name, "").strip() for name in keys)


def _s3_settings(env: Mapping[str, str]) -> S3Settings:
    key_id = env.get("AWS_ACCESS_KEY_ID", "").strip()
    secret = env.get("AWS_SECRET_ACCESS_KEY", "").strip()
    if not key_id or not secret:
        raise LakeConfigError(
            f"{DATA_PATH_ENV} is on S3 but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are "
            "not both set",
            advice="export both (and AWS_REGION; AWS_ENDPOINT_URL for a non-AWS store)",
        )
    endpoint_url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
    endpoint, use_ssl = None, True
    if endpoint_url:
        parts = urlsplit(endpoint_url if "://" in endpoint_url else f"https://{endpoint_url}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise LakeConfigError(
                f"AWS_ENDPOINT_URL={endpoint_url!r} is not an http(s) URL",
                advice="set it like http://127.0.0.1:9000 or https://s3.example.com",
            )
        endpoint, use_ssl = parts.netloc, parts.scheme == "https"
    return S3Settings(
        key_id=key_id,
        secret=secret,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint=endpoint,
        use_ssl=use_ssl,
        session_token=env.get("AWS_SESSION_TOKEN") or None,
    )


def _retention(value: str) -> float:
    if not value:
        return DEFAULT_RETENTION_DAYS
    try:
        days = float(value)
    except ValueError:
        days = -1.0
    if not days > 0 or days == float("inf"):
        raise LakeConfigError(
            f"{RETENTION_ENV}={value!r} is not a positive number of days",
            advice="set it like 7 (the default) or 0.5, or unset it",
        )
    return days
