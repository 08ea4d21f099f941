"""Lake settings: defaults under the home, catalog strings, refusals that say what to set, and
no secret in anything meant for people to read."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import StorageError, Warehouse
from storage.connection import extension_path
from storage.errors import CatalogError, LakeConfigError
from storage.lake_config import LakeConfig, redact

PASSWORD = "pw-Secret-4711"
S3_SECRET = "s3-SECRET-key-0815"
TOKEN = "session-TOKEN-42"
S3_ENV = {
    "TERMSTORE_DATA_PATH": "s3://lake-bucket/prefix",
    "AWS_ACCESS_KEY_ID": "AKIATEST",
    "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    "AWS_SESSION_TOKEN": TOKEN,
    "AWS_REGION": "eu-west-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
}


def test_defaults_put_catalog_and_data_under_the_home(tmp_path: Path) -> None:
    config = LakeConfig.from_env(tmp_path / "home", env={})
    home = (tmp_path / "home").resolve()
    assert config.home == home
    assert (config.catalog_kind, config.catalog_file) == ("sqlite", home / "catalog.sqlite")
    assert config.data_path == f"{home / 'data'}/" and not config.data_path_explicit
    assert config.retention_days == 7 and config.is_local and config.s3 is None
    assert config.lock_file == home / "writer.lock"
    assert config.attach_target() == f"ducklake:sqlite:{home / 'catalog.sqlite'}"
    assert config.describe() == {
        "home": str(home),
        "catalog": f"sqlite:{home / 'catalog.sqlite'}",
        "data path": f"{home / 'data'}/",
        "snapshot retention": "7 days",
    }


def test_the_home_comes_from_the_environment_unless_given(tmp_path: Path) -> None:
    env = {"TERMSTORE_HOME": str(tmp_path / "from-env")}
    assert LakeConfig.from_env(env=env).home == (tmp_path / "from-env").resolve()
    assert LakeConfig.from_env(tmp_path / "given", env=env).home == (tmp_path / "given").resolve()


def test_a_default_lake_is_created_where_the_config_says(tmp_path: Path) -> None:
    with Warehouse.open(config=LakeConfig.from_env(tmp_path / "home", env={})) as warehouse:
        warehouse.initialise()
        assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 0
    assert (tmp_path / "home" / "catalog.sqlite").is_file()
    assert (tmp_path / "home" / "data").is_dir()


def test_connections_refuse_unsigned_extensions_once_the_lake_is_loaded(tmp_path: Path) -> None:
    # The wheels' binaries load without the signature check; a query must not load others.
    with Warehouse.open(config=LakeConfig.from_env(tmp_path / "home", env={})) as warehouse:
        warehouse.initialise()
        setting = "SELECT current_setting('allow_unsigned_extensions') AS allowed"
        assert warehouse.sql(setting).item() is False
        with warehouse.writer() as connection:
            assert connection.execute(setting).fetchone() == (False,)
        forged = bytearray(extension_path("httpfs").read_bytes())
        forged[len(forged) // 2] ^= 0xFF
        (tmp_path / "httpfs.duckdb_extension").write_bytes(forged)
        with pytest.raises(StorageError, match="signature is either missing or invalid"):
            warehouse.sql(f"LOAD '{tmp_path / 'httpfs.duckdb_extension'}'")


@pytest.mark.parametrize(
    ("value", "kind", "target"),
    [
        ("sqlite:/srv/lake/catalog.sqlite", "sqlite", "/srv/lake/catalog.sqlite"),
        ("ducklake:sqlite:/srv/lake/catalog.sqlite", "sqlite", "/srv/lake/catalog.sqlite"),
        ("postgres:host=db dbname=lake user=ts", "postgres", "host=db dbname=lake user=ts"),
        ("postgres:  host=db dbname=lake  ", "postgres", "host=db dbname=lake"),
    ],
)
def test_catalog_strings(tmp_path: Path, value: str, kind: str, target: str) -> None:
    config = LakeConfig.from_env(tmp_path, env={"TERMSTORE_CATALOG": value})
    assert (config.catalog_kind, config.catalog_target) == (kind, target)
    assert config.attach_target() == f"ducklake:{kind}:{target}"
    assert config.is_local == (kind == "sqlite")
    assert config.data_path == f"{tmp_path.resolve() / 'data'}/"


def test_a_relative_sqlite_catalog_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = LakeConfig.from_env(tmp_path, env={"TERMSTORE_CATALOG": "sqlite:lakes/c.sqlite"})
    assert config.catalog_file == tmp_path.resolve() / "lakes" / "c.sqlite"


def test_s3_settings_come_from_the_aws_variables(tmp_path: Path) -> None:
    config = LakeConfig.from_env(tmp_path, env=S3_ENV)
    assert config.data_path == "s3://lake-bucket/prefix/" and config.data_path_explicit
    assert config.s3 is not None and not config.is_local
    assert (config.s3.key_id, config.s3.secret, config.s3.region) == (
        "AKIATEST",
        S3_SECRET,
        "eu-west-1",
    )
    assert (config.s3.endpoint, config.s3.use_ssl) == ("127.0.0.1:9000", False)


def _refused(tmp_path: Path, env: dict[str, str]) -> LakeConfigError:
    with pytest.raises(LakeConfigError) as caught:
        LakeConfig.from_env(tmp_path, env=env)
    assert isinstance(caught.value, StorageError) and caught.value.advice
    assert str(caught.value).endswith(caught.value.advice)
    return caught.value


@pytest.mark.parametrize(
    "value",
    ["mysql:host=db", "sqlite:", "postgres:   ", "catalog.sqlite", "ducklake:duckdb:/x.db"],
)
def test_a_catalog_termstore_cannot_use_is_refused_with_advice(tmp_path: Path, value: str) -> None:
    error = _refused(tmp_path, {"TERMSTORE_CATALOG": value})
    assert "TERMSTORE_CATALOG" in error.message
    assert "sqlite:" in error.advice and "postgres:" in error.advice


def test_a_refused_catalog_string_does_not_echo_its_password(tmp_path: Path) -> None:
    error = _refused(tmp_path, {"TERMSTORE_CATALOG": f"mysql:host=db password={PASSWORD}"})
    assert PASSWORD not in str(error) and "password=***" in str(error)


@pytest.mark.parametrize("value", ["gs://bucket/lake", "file:///srv/lake", "s3://ab"])
def test_a_data_path_termstore_cannot_use_is_refused_with_advice(
    tmp_path: Path, value: str
) -> None:
    error = _refused(tmp_path, {"TERMSTORE_DATA_PATH": value})
    assert "TERMSTORE_DATA_PATH" in error.message and "s3://" in error.advice


@pytest.mark.parametrize("missing", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_s3_without_credentials_is_refused_with_advice(tmp_path: Path, missing: str) -> None:
    env = {key: value for key, value in S3_ENV.items() if key != missing}
    error = _refused(tmp_path, env)
    assert "AWS_ACCESS_KEY_ID" in error.message and "AWS_SECRET_ACCESS_KEY" in error.message
    assert "export" in error.advice
    assert S3_SECRET not in str(error)


def test_an_endpoint_that_is_not_http_is_refused(tmp_path: Path) -> None:
    error = _refused(tmp_path, {**S3_ENV, "AWS_ENDPOINT_URL": "ftp://127.0.0.1:9000"})
    assert "AWS_ENDPOINT_URL" in error.message and "http://" in error.advice


@pytest.mark.parametrize("value", ["0", "-1", "seven", "inf", "nan", "1e400"])
def test_a_bad_retention_is_refused_with_advice(tmp_path: Path, value: str) -> None:
    error = _refused(tmp_path, {"TERMSTORE_SNAPSHOT_RETENTION_DAYS": value})
    assert "TERMSTORE_SNAPSHOT_RETENTION_DAYS" in error.message and "unset it" in error.advice


def test_a_fractional_retention_is_kept(tmp_path: Path) -> None:
    config = LakeConfig.from_env(tmp_path, env={"TERMSTORE_SNAPSHOT_RETENTION_DAYS": " 0.5 "})
    assert config.retention_days == 0.5
    assert config.describe()["snapshot retention"] == "0.5 days"


SECRET_SETTINGS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "keyword password": (
        {"TERMSTORE_CATALOG": f"postgres:host=db user=ts password={PASSWORD}"},
        (PASSWORD,),
    ),
    "quoted password": (
        {"TERMSTORE_CATALOG": f"postgres:host=db password='{PASSWORD} x'"},
        (f"{PASSWORD} x",),
    ),
    "URI password": (
        {"TERMSTORE_CATALOG": f"postgres:postgresql://ts:{PASSWORD}@db:5432/lake"},
        (PASSWORD,),
    ),
    "PGPASSWORD": (
        {"TERMSTORE_CATALOG": "postgres:host=db user=ts", "PGPASSWORD": PASSWORD},
        (PASSWORD,),
    ),
    "S3 secret and token": (S3_ENV, (S3_SECRET, TOKEN)),
}
"""Settings holding secrets, and the secrets they hold."""


@pytest.mark.parametrize("case", sorted(SECRET_SETTINGS))
def test_describe_repr_and_redact_never_hold_a_secret(tmp_path: Path, case: str) -> None:
    env, secrets = SECRET_SETTINGS[case]
    config = LakeConfig.from_env(tmp_path, env=env)
    readable = [*config.describe().values(), repr(config), repr(config.s3)]
    assert not [text for text in readable if any(secret in text for secret in secrets)]
    # What a driver may echo back in an error: the catalog string and the bare secrets.
    echoed = config.redact(f"cannot attach {config.attach_target()}: {' '.join(secrets)}")
    assert not any(secret in echoed for secret in secrets), echoed
    assert "***" in echoed


def test_redact_masks_passwords_it_was_not_told_about() -> None:
    text = f"host=db password={PASSWORD} dbname=x; postgresql://ts:{PASSWORD}@db/lake"
    assert PASSWORD not in redact(text)
    assert redact(text).count("***") == 2


def test_an_unreachable_postgres_catalog_is_reported_without_its_password(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    env = {
        "TERMSTORE_CATALOG": f"postgres:host=127.0.0.1 port=9 dbname=lake user=ts "
        f"password={PASSWORD} connect_timeout=2"
    }
    warehouse = Warehouse.open(config=LakeConfig.from_env(tmp_path, env=env))
    with pytest.raises(CatalogError) as caught:
        warehouse.initialise()
    assert PASSWORD not in str(caught.value)
    assert "TERMSTORE_CATALOG" in caught.value.advice
    warehouse.close()
