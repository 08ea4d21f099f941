"""Bad settings fail before any request, with messages that say what to set and never the key."""

from __future__ import annotations

import asyncio

import pytest

from backquant.client import BackQuantClient
from backquant.config import ApiKey, ClientConfig
from backquant.errors import (
    ConfigError,
    InvalidApiKeyError,
    InvalidBaseURLError,
    MissingApiKeyError,
    UnsupportedSymbolError,
)
from tests.support.fixtures import TEST_KEY, ScriptedAPI


@pytest.mark.parametrize(
    ("secret", "hint"),
    [
        ("", "empty"),
        (" " + TEST_KEY, "whitespace"),
        (TEST_KEY + "\n", "whitespace"),
        ("bq_1", "characters long"),
        ("bq_live_abc def ghi jkl", "characters a BackQuant key never has"),
        ("bq_live_ключ_1234567890", "characters a BackQuant key never has"),
    ],
)
def test_malformed_keys_are_rejected_without_being_repeated(secret: str, hint: str) -> None:
    with pytest.raises(InvalidApiKeyError) as caught:
        ApiKey(secret)
    message = str(caught.value)
    assert "BACKQUANT_API_KEY" in message
    assert hint in message
    if secret.strip():
        assert secret.strip() not in message


def test_key_never_prints_itself() -> None:
    key = ApiKey(TEST_KEY)
    config = ClientConfig(api_key=key)
    for text in (str(key), repr(key), repr(config), str(config), str(config.describe())):
        assert TEST_KEY not in text
    assert "bq_test_" in key.redacted
    assert key.reveal() == TEST_KEY


def test_missing_key_says_what_to_set() -> None:
    config = ClientConfig.from_env({})
    assert config.api_key is None
    with pytest.raises(MissingApiKeyError, match="export BACKQUANT_API_KEY"):
        BackQuantClient(config)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.backquant.com",
        "api.backquant.com",
        "file:///etc/passwd",
        "https://",
        "https://user:pass@api.backquant.com",
        "https://api.backquant.com/?symbol=BTCUSDT",
        "",
    ],
)
def test_base_url_must_be_plain_http_or_https(url: str) -> None:
    with pytest.raises(InvalidBaseURLError, match="BACKQUANT_BASE_URL"):
        ClientConfig(base_url=url)


def test_base_url_from_env_loses_its_trailing_slash() -> None:
    config = ClientConfig.from_env({"BACKQUANT_BASE_URL": "http://127.0.0.1:8787/"})
    assert config.base_url == "http://127.0.0.1:8787"
    assert ClientConfig.from_env({}).base_url == "https://api.backquant.com"


@pytest.mark.parametrize("symbols", [("BTC",), ("BTCUSDT", "DOGEUSDT"), (), ("ETHUSDT", "ETHUSDT")])
def test_unsupported_symbol_lists_are_rejected(symbols: tuple[str, ...]) -> None:
    with pytest.raises(UnsupportedSymbolError):
        ClientConfig(symbols=symbols)


def test_unsupported_symbol_fails_before_any_request(scripted_api: ScriptedAPI) -> None:
    async def run() -> None:
        async with BackQuantClient(scripted_api.config()) as client:
            await client.fetch_expiry_summary("BTC")

    with pytest.raises(UnsupportedSymbolError, match="BTCUSDT, ETHUSDT, SOLUSDT, HYPEUSDT"):
        asyncio.run(run())
    assert scripted_api.fake.requests == []


def test_config_errors_are_value_errors_users_can_catch_together() -> None:
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(ConfigError):
        ClientConfig.from_env({"BACKQUANT_API_KEY": "x"})
