"""Bad input corpus: each case gets a clear error or a quarantine, and nothing half-done.

Client configuration cases fail when the settings are built, with a message naming the setting
and never the key. Lake settings that cannot work (a catalog of another kind, an unreachable
PostgreSQL, a missing bucket, refused S3 credentials, a catalog file that is no catalog) are run
through the real CLI, ``termstore ingest --once`` against a loopback BackQuant and ``termstore
sql``: each must exit 2 with one ``error:`` line naming what to fix, fetch nothing, and write
nothing (no catalog created or changed, no object stored, no file left under the home but the
writer lock). Response cases are served over loopback HTTP to BTCUSDT while the other three
symbols get valid bodies in the same tick: BTCUSDT must end up rejected (logged with its reason,
the body quarantined when one arrived) or, for contract drift, stored with the drift recorded;
the others are stored either way.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from moto.core.authorization import enable_iam_authentication

from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.errors import ConfigError
from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_once
from storage.errors import LakeConfigError
from tests.reliability.team_lake import TeamLake
from tests.storage.helpers import open_local
from tests.support.bodies import error_body, summary_document
from tests.support.scripted_server import Reply, ScriptedBackQuant
from tests.support.services import free_port

KEY = "bq_live_CANARYbadinput0123456789abcdef"
SECRET = "CANARYlakesecret0123456789abcdef"
"""A password or S3 secret key in a bad setting: it must show in no output."""
ROOT = Path(__file__).resolve().parents[2]
TERMSTORE = Path(sys.executable).parent / "termstore"
NO_RETRIES = RetryPolicy(
    deadline_s=3.0, upstream_backoff_s=(), rate_limit_retries=0, transport_retries=0
)
STORED = "stored"
REJECTED = "rejected"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScriptedBackQuant, str]]:
    scripted = ScriptedBackQuant()
    with scripted.running() as running:
        yield scripted, running.base_url


# --- client configuration ---------------------------------------------------------------------

CONFIG_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "key-empty": ({"BACKQUANT_API_KEY": ""}, "empty"),
    "key-whitespace": ({"BACKQUANT_API_KEY": f" {KEY} "}, "whitespace"),
    "key-too-short": ({"BACKQUANT_API_KEY": "bq_1"}, "characters long"),
    "key-bad-characters": ({"BACKQUANT_API_KEY": KEY + "é/;"}, "characters"),
    "url-ftp": ({"BACKQUANT_BASE_URL": "ftp://api.backquant.com"}, "http(s)"),
    "url-not-a-url": ({"BACKQUANT_BASE_URL": "http://[::1"}, "BACKQUANT_BASE_URL"),
    "url-credentials": (
        {"BACKQUANT_BASE_URL": f"https://user:{KEY}@api.backquant.com"},
        "credentials",
    ),
    "url-query": ({"BACKQUANT_BASE_URL": f"https://api.backquant.com/?key={KEY}"}, "query"),
    "symbol-unsupported": ({"symbols": ("BTCUSDT", "DOGEUSDT")}, "DOGEUSDT"),
    "symbol-repeated": ({"symbols": ("BTCUSDT", "BTCUSDT")}, "repeated"),
    "symbol-none": ({"symbols": ()}, "no symbols"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_configuration_fails_early_with_a_clear_message(case: str) -> None:
    settings, expected = CONFIG_CASES[case]
    env = {"BACKQUANT_API_KEY": KEY, "BACKQUANT_BASE_URL": "https://api.backquant.com"}
    overrides = {k: v for k, v in settings.items() if not k.startswith("BACKQUANT_")}
    env.update({k: v for k, v in settings.items() if k.startswith("BACKQUANT_")})
    with pytest.raises(ConfigError) as caught:
        ClientConfig.from_env(env, **overrides)
    message = str(caught.value)
    assert expected in message
    assert KEY not in message and KEY.strip() not in repr(caught.value)


def _termstore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TERMSTORE), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def _cli_env(tmp_path: Path, home: Path, base_url: str, **settings: str) -> dict[str, str]:
    """A clean environment: the BackQuant settings, the home and ``settings``, nothing else."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "user"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "BACKQUANT_API_KEY": KEY,
        "BACKQUANT_BASE_URL": base_url,
        "TERMSTORE_HOME": str(home),
        **settings,
    }


def test_warehouse_home_that_is_a_file_says_so(tmp_path: Path) -> None:
    home = tmp_path / "not-a-dir"
    home.write_text("oops")
    with pytest.raises(LakeConfigError, match="TERMSTORE_HOME"):
        Warehouse.open(home)


def test_cli_ingest_without_a_key_explains_what_to_set(tmp_path: Path) -> None:
    env = _cli_env(tmp_path, tmp_path / "home", "https://api.backquant.com")
    del env["BACKQUANT_API_KEY"]
    done = _termstore(env, "ingest", "--once")
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert "BACKQUANT_API_KEY" in output
    assert "Traceback" not in output
    assert not (tmp_path / "home").exists(), "nothing is created before the key is checked"


# --- lake settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LakeCase:
    settings: dict[str, str]
    """TERMSTORE_* and AWS_* variables for the CLI."""
    names: tuple[str, ...]
    """What the error line must name: the variable to fix, the path or the bucket."""
    state: Callable[[], object]
    """Whatever the case could wrongly write to (a catalog file, a database, a bucket)."""
    secrets: tuple[str, ...] = (SECRET,)
    checks_credentials: bool = False
    """moto checks S3 credentials while the CLI runs (it accepts any key otherwise)."""
    reader_names: tuple[str, ...] | None = None
    """What a reader's error line must name, when not ``names``."""


def _nothing() -> object:
    return None


def _team_lake(request: pytest.FixtureRequest) -> TeamLake:
    lake: TeamLake = request.getfixturevalue("team_lake")
    return lake


def _database_tables(lake: TeamLake) -> list[str]:
    with psycopg.connect(lake.postgres.dsn()) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY tablename"
        ).fetchall()
    return [row[0] for row in rows]


def _buckets(lake: TeamLake) -> list[str]:
    return sorted(bucket["Name"] for bucket in lake.s3.client().list_buckets()["Buckets"])


def _catalog_of_another_kind(tmp_path: Path, request: pytest.FixtureRequest) -> LakeCase:
    return LakeCase(
        {"TERMSTORE_CATALOG": f"mysql:host=db user=termstore password={SECRET}"},
        ("TERMSTORE_CATALOG",),
        _nothing,
    )


def _postgres_unreachable(tmp_path: Path, request: pytest.FixtureRequest) -> LakeCase:
    closed = free_port()  # bound and released: nothing listens there
    catalog = f"postgres:host=127.0.0.1 port={closed} dbname=lake user=termstore password={SECRET}"
    return LakeCase({"TERMSTORE_CATALOG": catalog}, ("TERMSTORE_CATALOG",), _nothing)


def _postgres_new_lake_without_data_path(
    tmp_path: Path, request: pytest.FixtureRequest
) -> LakeCase:
    # The lake's database is new: creating a lake there needs to know where its files go. A
    # reader creates no lake, so it says there is none.
    lake = _team_lake(request)
    return LakeCase(
        {"TERMSTORE_CATALOG": lake.catalog},
        ("TERMSTORE_DATA_PATH",),
        lambda: _database_tables(lake),
        reader_names=("holds no lake yet", "TERMSTORE_CATALOG"),
    )


def _bucket_missing(tmp_path: Path, request: pytest.FixtureRequest) -> LakeCase:
    lake = _team_lake(request)
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    return LakeCase(
        {**lake.env(), "TERMSTORE_DATA_PATH": f"s3://{bucket}/lake"},
        ("TERMSTORE_DATA_PATH", bucket),
        lambda: (_database_tables(lake), _buckets(lake)),
        secrets=(lake.s3.secret_key,),
    )


def _s3_credentials_wrong(tmp_path: Path, request: pytest.FixtureRequest) -> LakeCase:
    lake = _team_lake(request)
    wrong = {"AWS_ACCESS_KEY_ID": f"AKIA{uuid.uuid4().hex[:16].upper()}"}
    return LakeCase(
        {**lake.env(), **wrong, "AWS_SECRET_ACCESS_KEY": SECRET},
        ("TERMSTORE_DATA_PATH", lake.bucket),
        lambda: (_database_tables(lake), lake.keys()),
        checks_credentials=True,
    )


def _catalog_of_random_bytes(tmp_path: Path, request: pytest.FixtureRequest) -> LakeCase:
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(random.Random(3).randbytes(8192))
    return LakeCase(
        {"TERMSTORE_CATALOG": f"sqlite:{path}"},
        (str(path), "TERMSTORE_CATALOG"),
        path.read_bytes,
        secrets=(),
    )


def _catalog_of_another_application(tmp_path: Path, request: pytest.FixtureRequest) -> LakeCase:
    path = tmp_path / "accounts.sqlite"
    with closing(sqlite3.connect(path)) as database:
        database.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
        database.execute("INSERT INTO accounts (name) VALUES ('ada')")
        database.commit()
    return LakeCase(
        {"TERMSTORE_CATALOG": f"sqlite:{path}"},
        (str(path), "TERMSTORE_CATALOG"),
        path.read_bytes,
        secrets=(),
    )


LAKE_CASES: dict[str, Callable[[Path, pytest.FixtureRequest], LakeCase]] = {
    "catalog-of-another-kind": _catalog_of_another_kind,
    "postgres-unreachable": _postgres_unreachable,
    "postgres-new-lake-without-data-path": _postgres_new_lake_without_data_path,
    "bucket-missing": _bucket_missing,
    "s3-credentials-wrong": _s3_credentials_wrong,
    "catalog-file-of-random-bytes": _catalog_of_random_bytes,
    "catalog-file-of-another-application": _catalog_of_another_application,
}
COMMANDS = {"ingest": ("ingest", "--once"), "sql": ("sql", "select 1")}


def _script_valid_bodies(scripted: ScriptedBackQuant) -> None:
    for symbol in SUPPORTED_SYMBOLS:
        scripted.script(symbol, Reply(200, orjson.dumps(summary_document(symbol))))


def _home_files(home: Path) -> list[str]:
    """What the run left under the home, but the writer lock (taken before the lake opens)."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.name != "writer.lock")


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(LAKE_CASES))
def test_unusable_lake_settings_fail_on_one_line_and_write_nothing(
    case: str,
    command: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    server: tuple[ScriptedBackQuant, str],
) -> None:
    scripted, base_url = server
    _script_valid_bodies(scripted)
    setup = LAKE_CASES[case](tmp_path, request)
    home = tmp_path / "home"
    before = setup.state()
    fetched = len(scripted.requests)
    checking: AbstractContextManager[object] = (
        enable_iam_authentication() if setup.checks_credentials else nullcontext()
    )
    with checking:
        done = _termstore(_cli_env(tmp_path, home, base_url, **setup.settings), *COMMANDS[command])

    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    names = setup.reader_names if command == "sql" and setup.reader_names else setup.names
    for name in names:
        assert name in lines[0], f"the error does not name {name}: {lines[0]}"
    for secret in (*setup.secrets, KEY):
        assert secret not in output
    assert len(scripted.requests) == fetched, "ingest fetched although the lake is unusable"
    assert not home.exists() or _home_files(home) == []
    assert setup.state() == before, "the failed command changed the catalog or the bucket"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_same_commands_work_on_a_usable_lake(
    command: str, tmp_path: Path, server: tuple[ScriptedBackQuant, str]
) -> None:
    """The control for the cases above: with usable settings the same run succeeds (a reader
    on a lake that exists: it never creates one)."""
    scripted, base_url = server
    _script_valid_bodies(scripted)
    home = tmp_path / "home"
    if command == "sql":
        with open_local(home) as warehouse:
            warehouse.initialise()
    fetched = len(scripted.requests)
    done = _termstore(_cli_env(tmp_path, home, base_url), *COMMANDS[command])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.strip() == ""
    if command == "ingest":
        assert len(scripted.requests) == fetched + len(SUPPORTED_SYMBOLS)
    assert "catalog.sqlite" in _home_files(home)


# --- responses --------------------------------------------------------------------------------


def _document() -> dict[str, Any]:
    return summary_document("BTCUSDT")


def _mutated(change: Callable[[dict[str, Any]], object]) -> bytes:
    document = _document()
    change(document)
    return orjson.dumps(document)


def _row(document: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = document["data"]["expiries"][0]
    return row


def _raw_number(field: str, literal: bytes) -> bytes:
    """A body whose ``field`` in the first row holds a literal orjson would never write."""
    document = _document()
    _row(document)[field] = 123456.789
    return orjson.dumps(document).replace(b"123456.789", literal, 1)


def _deep(levels: int) -> bytes:
    document = _document()
    document["data"]["nested"] = "X"
    text = orjson.dumps(document)
    return text.replace(b'"X"', b"[" * levels + b"]" * levels, 1)


@dataclass(frozen=True)
class BodyCase:
    reply: Reply
    expected: str
    """``stored`` (drift tolerated and recorded) or ``rejected``."""


def ok(body: bytes) -> Reply:
    return Reply(200, body)


BODY_CASES: dict[str, BodyCase] = {
    "empty-body": BodyCase(ok(b""), REJECTED),
    "html-proxy-page": BodyCase(ok(b"<html><body>502 Bad Gateway</body></html>"), REJECTED),
    "truncated-json": BodyCase(ok(orjson.dumps(_document())[:700]), REJECTED),
    "json-array": BodyCase(ok(b"[]"), REJECTED),
    "json-null": BodyCase(ok(b"null"), REJECTED),
    "invalid-utf8": BodyCase(ok(b'{"success": true, "data": "\xff\xfe"}'), REJECTED),
    "no-data": BodyCase(ok(_mutated(lambda d: d.pop("data"))), REJECTED),
    "no-meta": BodyCase(ok(_mutated(lambda d: d.pop("meta"))), REJECTED),
    "success-false-on-200": BodyCase(ok(error_body("INTERNAL_ERROR", "boom")), REJECTED),
    "expiries-not-a-list": BodyCase(
        ok(_mutated(lambda d: d["data"].update(expiries={"a": 1}))), REJECTED
    ),
    "dte-as-string": BodyCase(ok(_mutated(lambda d: _row(d).update(dte="4"))), REJECTED),
    "dte-beyond-32-bits": BodyCase(ok(_mutated(lambda d: _row(d).update(dte=2**40))), REJECTED),
    "row-without-type": BodyCase(ok(_mutated(lambda d: _row(d).pop("type"))), REJECTED),
    "type-count-beyond-32-bits": BodyCase(
        ok(_mutated(lambda d: d["data"]["type_counts"].update(daily=2**31))), REJECTED
    ),
    "anchor-count-beyond-32-bits": BodyCase(
        ok(_mutated(lambda d: d["data"].update(anchor_count=2**40))), REJECTED
    ),
    # A header no 64-bit column holds is no count: stored as absent, the body kept.
    "rate-limit-header-beyond-64-bits": BodyCase(
        Reply(200, orjson.dumps(_document()), {"X-RateLimit-Remaining": "1" + "0" * 20}), STORED
    ),
    "nan-literal": BodyCase(ok(_raw_number("atm_iv", b"NaN")), REJECTED),
    "infinity-literal": BodyCase(ok(_raw_number("net_gex", b"Infinity")), REJECTED),
    "overflowing-number": BodyCase(ok(_raw_number("total_oi", b"1e400")), REJECTED),
    "nan-as-string": BodyCase(ok(_mutated(lambda d: _row(d).update(atm_iv="NaN"))), REJECTED),
    "iv-absurd": BodyCase(ok(_mutated(lambda d: _row(d).update(atm_iv=1e6))), REJECTED),
    "oi-negative": BodyCase(ok(_mutated(lambda d: _row(d).update(call_oi=-5.0))), REJECTED),
    "token-with-a-trailing-newline": BodyCase(
        ok(_mutated(lambda d: _row(d).update(expiry="28MAR26\n"))), REJECTED
    ),
    "venue-with-a-trailing-newline": BodyCase(
        ok(_mutated(lambda d: _row(d)["by_venue"].update({"okx\n": _row(d)["by_venue"]["okx"]}))),
        REJECTED,
    ),
    "token-path-traversal": BodyCase(
        ok(_mutated(lambda d: _row(d).update(expiry="../../etc/passwd"))), REJECTED
    ),
    # A token that does not parse is kept (calendar_type "unknown"), never dropped.
    "token-impossible-date": BodyCase(
        ok(_mutated(lambda d: _row(d).update(expiry="31FEB26"))), STORED
    ),
    "venue-path-traversal": BodyCase(
        ok(_mutated(lambda d: _row(d)["by_venue"].update({"../evil": _row(d)["by_venue"]["okx"]}))),
        REJECTED,
    ),
    "other-symbol-body": BodyCase(ok(orjson.dumps(summary_document("ETHUSDT"))), REJECTED),
    "computed-at-missing": BodyCase(ok(_mutated(lambda d: d["meta"].pop("computed_at"))), REJECTED),
    "computed-at-garbage": BodyCase(
        ok(_mutated(lambda d: d["meta"].update(computed_at="yesterday"))), REJECTED
    ),
    "deeply-nested": BodyCase(ok(_deep(100_000)), REJECTED),
    "huge-body-30mb": BodyCase(
        ok(_mutated(lambda d: d["data"].update(padding="x" * 30_000_000))), STORED
    ),
    "drift-unknown-fields": BodyCase(
        ok(_mutated(lambda d: (d["data"].update(generated_by="v3"), _row(d).update(vanna=1.0)))),
        STORED,
    ),
    "drift-missing-optional": BodyCase(
        ok(_mutated(lambda d: (d["meta"].pop("source"), d["meta"].pop("freshness_seconds")))),
        STORED,
    ),
    "http-500-html": BodyCase(Reply(500, b"<html>oops</html>"), REJECTED),
    "http-429-bad-retry-after": BodyCase(
        Reply(429, error_body("RATE_LIMIT_EXCEEDED", "slow down"), {"Retry-After": "soon"}),
        REJECTED,
    ),
    "http-401": BodyCase(Reply(401, error_body("UNAUTHORIZED", "Invalid API key")), REJECTED),
    "http-200-slow-past-timeout": BodyCase(
        Reply(200, orjson.dumps(_document()), delay_s=1.5), REJECTED
    ),
}


def test_corpus_has_at_least_thirty_cases() -> None:
    assert len(BODY_CASES) + len(CONFIG_CASES) + len(LAKE_CASES) >= 30
    assert len(BODY_CASES) >= 30


KNOWN_GAPS: dict[str, str] = {}


def _body_params() -> list[Any]:
    return [
        pytest.param(
            case,
            marks=[pytest.mark.xfail(reason=KNOWN_GAPS[case], strict=True)]
            if case in KNOWN_GAPS
            else [],
        )
        for case in sorted(BODY_CASES)
    ]


@pytest.mark.parametrize("case", _body_params())
def test_bad_response_is_rejected_or_recorded_and_others_stored(
    case: str, server: tuple[ScriptedBackQuant, str], tmp_path: Path
) -> None:
    scripted, base_url = server
    body_case = BODY_CASES[case]
    scripted.script("BTCUSDT", body_case.reply)
    for symbol in SUPPORTED_SYMBOLS[1:]:
        scripted.script(symbol, Reply(200, orjson.dumps(summary_document(symbol))))
    config = ClientConfig(
        base_url=base_url,
        api_key=ApiKey(KEY),
        retry=NO_RETRIES,
        read_timeout_s=0.5,
        connect_timeout_s=1.0,
    )
    warehouse = open_local(tmp_path / "home")
    report = ingest_once(warehouse, config)

    for symbol in SUPPORTED_SYMBOLS[1:]:
        assert report.symbol(symbol).status == STORED, report.symbol(symbol)
    btc = report.symbol("BTCUSDT")
    log = warehouse.sql("SELECT * FROM ingest_log WHERE symbol = 'BTCUSDT'").to_dicts()
    assert len(log) == 1 and log[0]["outcome"] == btc.status
    if body_case.expected == STORED:
        assert btc.status == STORED, btc
        drift = warehouse.sql("SELECT drift FROM snapshots WHERE symbol = 'BTCUSDT'").item()
        unknown_tokens = warehouse.sql(
            "SELECT expiry FROM expiries WHERE symbol = 'BTCUSDT' AND calendar_type = 'unknown'"
        )["expiry"].to_list()
        remaining = warehouse.sql(
            "SELECT ratelimit_remaining FROM snapshots WHERE symbol = 'BTCUSDT'"
        ).item()
        dropped_header = case == "rate-limit-header-beyond-64-bits" and remaining is None
        recorded = list(drift) or btc.warnings or unknown_tokens == ["31FEB26"] or dropped_header
        assert recorded or case == "drift-missing-optional", btc
    else:
        assert btc.status != STORED, btc
        assert btc.reason and len(btc.reason) > 20, btc
        assert log[0]["reason"] == btc.reason
        if body_case.reply.status == 200 and body_case.reply.delay_s == 0:
            assert btc.quarantine_id, f"a 200 body that was refused is quarantined: {btc}"
            assert log[0]["quarantine_id"] == btc.quarantine_id
            kept = warehouse.sql(
                f"SELECT body FROM quarantine WHERE quarantine_id = '{btc.quarantine_id}'"
            )
            assert kept["body"].to_list() == [body_case.reply.body], "kept byte for byte"
        stored = warehouse.sql("SELECT count(*) FROM snapshots WHERE symbol = 'BTCUSDT'").item()
        assert stored == 0
    assert KEY not in (btc.reason or "")
    warehouse.close()
