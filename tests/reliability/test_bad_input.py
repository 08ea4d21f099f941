"""Bad input corpus: each case gets a clear error or a quarantine; other symbols are unaffected.

Configuration cases fail when the settings are built, with a message naming the setting and never
the key. Response cases are served over loopback HTTP to BTCUSDT while the other three symbols get
valid bodies in the same tick: BTCUSDT must end up rejected (logged with its reason, the body
quarantined when one arrived) or, for contract drift, stored with the drift recorded; the others
are stored either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.errors import ConfigError
from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_once
from tests.support.bodies import error_body, summary_document
from tests.support.scripted_server import Reply, ScriptedBackQuant
from tests.support.simulator import SIM_START, running_simulator

KEY = "bq_live_CANARYbadinput0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
NO_RETRIES = RetryPolicy(
    deadline_s=3.0, upstream_backoff_s=(), rate_limit_retries=0, transport_retries=0
)
STORED = "stored"
REJECTED = "rejected"


# --- configuration ----------------------------------------------------------------------------

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


def test_warehouse_home_that_is_a_file_says_so(tmp_path: Path) -> None:
    home = tmp_path / "not-a-dir"
    home.write_text("oops")
    with pytest.raises(NotADirectoryError, match="TERMSTORE_HOME"):
        Warehouse.open(home)


def test_cli_ingest_without_a_key_explains_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKQUANT_")}
    env["TERMSTORE_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "termstore"), "ingest", "--once"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "BACKQUANT_API_KEY" in output
    assert "Traceback" not in output


def test_cli_ingest_with_an_unreadable_tick_journal_says_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Warehouse.open(home).close()
    (home / "state" / "tick-journal.parquet").write_bytes(b"not parquet")
    with running_simulator(frozen_at=SIM_START) as sim:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "termstore"), "ingest", "--once"],
            env={
                **os.environ,
                "BACKQUANT_API_KEY": sim.api_key,
                "BACKQUANT_BASE_URL": sim.base_url,
                "TERMSTORE_HOME": str(home),
            },
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    output = "".join((done.stdout + done.stderr).split())  # rich wraps long paths anywhere
    assert "tick-journal.parquetcannotberead" in output
    assert "Moveitaside" in output
    assert "Traceback" not in output


def test_cli_rebuild_with_a_damaged_state_file_says_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Warehouse.open(home).close()
    (home / "state" / "tiers.json").write_text("{not json")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "termstore"), "rebuild", "--date", "2026-03-02"],
        env={**os.environ, "TERMSTORE_HOME": str(home)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    output = "".join((done.stdout + done.stderr).split())
    assert "tiers.jsonisunreadable" in output and "restoreitfromabackup" in output
    assert "Traceback" not in output


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
    "nan-literal": BodyCase(ok(_raw_number("atm_iv", b"NaN")), REJECTED),
    "infinity-literal": BodyCase(ok(_raw_number("net_gex", b"Infinity")), REJECTED),
    "overflowing-number": BodyCase(ok(_raw_number("total_oi", b"1e400")), REJECTED),
    "nan-as-string": BodyCase(ok(_mutated(lambda d: _row(d).update(atm_iv="NaN"))), REJECTED),
    "iv-absurd": BodyCase(ok(_mutated(lambda d: _row(d).update(atm_iv=1e6))), REJECTED),
    "oi-negative": BodyCase(ok(_mutated(lambda d: _row(d).update(call_oi=-5.0))), REJECTED),
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


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScriptedBackQuant, str]]:
    scripted = ScriptedBackQuant()
    with scripted.running() as running:
        yield scripted, running.base_url


def test_corpus_has_at_least_thirty_cases() -> None:
    assert len(BODY_CASES) + len(CONFIG_CASES) + 2 >= 30
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
    warehouse = Warehouse.open(tmp_path / "home", hot_grace=timedelta(hours=1))
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
        recorded = list(drift) or btc.warnings or unknown_tokens == ["31FEB26"]
        assert recorded or case == "drift-missing-optional", btc
    else:
        assert btc.status != STORED, btc
        assert btc.reason and len(btc.reason) > 20, btc
        assert log[0]["reason"] == btc.reason
        if body_case.reply.status == 200 and body_case.reply.delay_s == 0:
            assert btc.quarantine_file, f"a 200 body that was refused is quarantined: {btc}"
            assert Path(btc.quarantine_file).exists()
        stored = warehouse.sql("SELECT count(*) FROM snapshots WHERE symbol = 'BTCUSDT'").item()
        assert stored == 0
    assert KEY not in (btc.reason or "")
    warehouse.close()
