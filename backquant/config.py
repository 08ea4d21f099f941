"""Client settings: where BackQuant is, which key to send, how long to wait and retry.

Everything is checked when the settings are built, before any request, and every message says
which setting to change. The key lives in ``ApiKey``, which never prints itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from backquant.errors import (
    InvalidApiKeyError,
    InvalidBaseURLError,
    MissingApiKeyError,
    UnsupportedSymbolError,
)
from backquant.symbols import SUPPORTED_SYMBOLS

DEFAULT_BASE_URL: Final[str] = "https://api.backquant.com"
API_KEY_ENV: Final[str] = "BACKQUANT_API_KEY"
BASE_URL_ENV: Final[str] = "BACKQUANT_BASE_URL"

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-.]{8,256}$")
_SCRUB_HEAD = 12
"""How much of the key, at least, marks a cut-off copy of it (past the public bq_live_ prefix)."""


class ApiKey:
    """The BackQuant API key. ``str()`` and ``repr()`` are redacted; ``reveal()`` is explicit."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        problem = describe_key_problem(secret)
        if problem is not None:
            raise InvalidApiKeyError(f"{API_KEY_ENV} is malformed: {problem}")
        self._secret = secret

    def reveal(self) -> str:
        return self._secret

    @property
    def redacted(self) -> str:
        prefix = self._secret[:8] if self._secret.startswith(("bq_live_", "bq_test_")) else ""
        return f"{prefix}****… ({len(self._secret)} chars)"

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced, cut-off ones too (a preview of a
        body that echoes the request may end inside the key)."""
        text = text.replace(self._secret, "***") if self._secret in text else text
        head = self._secret[:_SCRUB_HEAD]
        if len(self._secret) > _SCRUB_HEAD and head in text:
            text = re.sub(re.escape(head) + r"[A-Za-z0-9_\-.]*", "***", text)
        return text

    def __repr__(self) -> str:
        return f"ApiKey({self.redacted})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._secret == self._secret

    def __hash__(self) -> int:
        return hash(self._secret)


def describe_key_problem(secret: str) -> str | None:
    """What is wrong with a key, in words that never repeat it; None when it looks usable."""
    if not secret:
        return "it is empty; set it to the key from your BackQuant dashboard"
    if secret != secret.strip():
        return "it has leading or trailing whitespace; copy the key again without spaces"
    if not _KEY_PATTERN.match(secret):
        if len(secret) < 8:
            return (
                f"it is {len(secret)} characters long; BackQuant keys look like bq_live_<32 chars>"
            )
        return (
            "it contains characters a BackQuant key never has (allowed: letters, digits, _ - .); "
            "copy the key again"
        )
    return None


def validate_base_url(url: str) -> str:
    """The base URL without a trailing slash; raises InvalidBaseURLError unless it is http(s)."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidBaseURLError(f"{BASE_URL_ENV}={url!r} is not a URL ({exc})") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise InvalidBaseURLError(
            f"{BASE_URL_ENV}={url!r} must be an http(s) URL such as {DEFAULT_BASE_URL} "
            "or http://127.0.0.1:8787 for the simulator"
        )
    if parsed.userinfo or parsed.query or parsed.fragment:
        raise InvalidBaseURLError(
            f"{BASE_URL_ENV} must not carry credentials, a query or a fragment; "
            "give only scheme, host, port and path prefix"
        )
    return str(parsed).rstrip("/")


def validate_symbols(symbols: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(symbols)
    unsupported = [symbol for symbol in chosen if symbol not in SUPPORTED_SYMBOLS]
    if unsupported:
        raise UnsupportedSymbolError(
            f"unsupported symbol(s) {', '.join(map(repr, unsupported))}: BackQuant's expiry "
            f"summary serves only {', '.join(SUPPORTED_SYMBOLS)}"
        )
    if not chosen:
        raise UnsupportedSymbolError(f"no symbols chosen; pick from {', '.join(SUPPORTED_SYMBOLS)}")
    if len(set(chosen)) != len(chosen):
        raise UnsupportedSymbolError(f"symbols are repeated in {chosen}; give each once")
    return chosen


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one fetch retries, all bounded by ``deadline_s`` from its first attempt."""

    deadline_s: float = 45.0
    upstream_backoff_s: tuple[float, ...] = (2.0, 4.0, 8.0)
    """Waits after 5xx / UPSTREAM_ERROR, as BackQuant advises; one retry per entry."""
    rate_limit_retries: int = 3
    rate_limit_backoff_s: float = 1.0
    """Base of the exponential backoff when a burst 429 gives no Retry-After hint."""
    transport_retries: int = 2
    transport_backoff_s: float = 0.5
    jitter_s: float = 0.25

    def __post_init__(self) -> None:
        if self.deadline_s <= 0:
            raise ValueError("retry deadline_s must be positive")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the BackQuant client needs. Build it with ``from_env`` or directly."""

    base_url: str = DEFAULT_BASE_URL
    api_key: ApiKey | None = None
    symbols: tuple[str, ...] = SUPPORTED_SYMBOLS
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", validate_base_url(self.base_url))
        object.__setattr__(self, "symbols", validate_symbols(self.symbols))
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("timeouts must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> ClientConfig:
        """Settings from ``BACKQUANT_BASE_URL`` and ``BACKQUANT_API_KEY`` (key may be absent)."""
        source = os.environ if env is None else env
        raw_key = source.get(API_KEY_ENV)
        values: dict[str, object] = {
            "base_url": source.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
            "api_key": None if raw_key is None else ApiKey(raw_key),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def require_key(self) -> ApiKey:
        if self.api_key is None:
            raise MissingApiKeyError(
                f"{API_KEY_ENV} is not set. Export your BackQuant key "
                f"(export {API_KEY_ENV}=bq_live_...) or run against the simulator "
                "(termstore simulator, or make demo / make dev, which need no key)."
            )
        return self.api_key

    def describe(self) -> dict[str, str]:
        """The effective settings for people to read, with the key redacted."""
        return {
            "base_url": self.base_url,
            "api_key": self.api_key.redacted if self.api_key else "(not set)",
            "symbols": ", ".join(self.symbols),
            "timeouts": f"connect {self.connect_timeout_s:g} s, read {self.read_timeout_s:g} s",
            "retry_deadline": f"{self.retry.deadline_s:g} s per symbol",
        }
