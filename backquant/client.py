"""The async BackQuant v2 client for ``GET /v2/options/expiry-summary``.

One call fetches one symbol; ``fetch_all`` fetches every configured symbol concurrently and returns
a per-symbol outcome, so one symbol's failure never hides the others.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import orjson

from backquant.config import ApiKey, ClientConfig, validate_symbols
from backquant.errors import (
    API_ERRORS_BY_CODE,
    API_ERRORS_BY_STATUS,
    APIError,
    FetchConnectionError,
    FetchError,
    FetchTimeoutError,
    ForbiddenError,
    InternalServerError,
    NotFoundError,
    NotJSONError,
    QuotaExhaustedError,
    RateLimitError,
    RequestValidationError,
    TransportError,
    UnauthorizedError,
    UnexpectedAPIError,
    UnforeseenFetchError,
    UpstreamError,
)
from backquant.headers import ResponseHeaders
from backquant.models import ExpirySummaryResponse
from backquant.retry import RetrySchedule
from backquant.validation import ParsedSummary, parse_error_envelope, parse_expiry_summary

EXPIRY_SUMMARY_PATH: Final[str] = "/v2/options/expiry-summary"
HEALTH_PATH: Final[str] = "/v2/health"
USER_AGENT: Final[str] = "termstore/0.1 (+https://github.com/termstore)"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A validated expiry summary and everything about how it was fetched."""

    symbol: str
    parsed: ParsedSummary
    raw: bytes
    """The body exactly as received, for the archive."""
    status: int
    headers: ResponseHeaders
    started_at: datetime
    finished_at: datetime
    attempts: int

    @property
    def response(self) -> ExpirySummaryResponse:
        return self.parsed.response

    @property
    def latency_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """One symbol's result in a concurrent fetch: exactly one of ``result`` and ``error`` is set."""

    symbol: str
    started_at: datetime
    finished_at: datetime
    result: FetchResult | None = None
    error: FetchError | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def latency_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class _ApiKeyAuth(httpx.Auth):
    """Adds X-API-Key per request, so the key never sits in the client's default headers."""

    def __init__(self, key: ApiKey) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-API-Key"] = self._key.reveal()
        yield request


_ADVICE: Final[dict[type[APIError], str]] = {
    UnauthorizedError: "check BACKQUANT_API_KEY; the key is missing, wrong, "
    "revoked or expired (not retried)",
    ForbiddenError: "the key is valid but the plan does not allow this call; "
    "check the subscription is active (not retried)",
    RequestValidationError: "BackQuant rejected the request parameters (not retried)",
    RateLimitError: "per-minute burst limit hit; retries gave up "
    "within the deadline, the next tick will try again",
    UpstreamError: "BackQuant's stores are unreachable; retried with "
    "backoff, usually clears within ~30 s, check /v2/health if it lasts",
    InternalServerError: "a BackQuant server error; report it with the request id",
}


def error_from_response(
    status: int, raw: bytes, headers: ResponseHeaders, symbol: str, key: ApiKey | None
) -> APIError:
    """The typed error for a non-2xx response, with a message that says what to do."""
    envelope = parse_error_envelope(raw)
    code = envelope.error.code if envelope else None
    cls = (API_ERRORS_BY_CODE.get(code) if code else None) or API_ERRORS_BY_STATUS.get(
        status, UpstreamError if 500 <= status < 600 else UnexpectedAPIError
    )
    details: dict[str, Any] = dict(envelope.error.details or {}) if envelope else {}
    server_message = envelope.error.message if envelope else "no BackQuant error envelope in body"
    request_id = (envelope.meta.request_id if envelope else None) or headers.request_id
    if issubclass(cls, RateLimitError) and headers.quota_spent:
        cls = QuotaExhaustedError
        resets = headers.quota_resets_at()
        advice = (
            f"the monthly quota is spent ({headers.quota_used}/{headers.quota_limit} "
            f"requests in period {headers.quota_period}); it resets at "
            f"{resets.isoformat() if resets else 'the start of next month (00:00 UTC on the 1st)'}."
            " Not retried: upgrade the plan or lower the polling rate"
        )
    elif cls is NotFoundError:
        advice = (
            f"BackQuant has no cached expiry summary for {symbol} right now (cold start); "
            "not a termstore bug, the next tick will try again"
        )
    else:
        advice = _ADVICE.get(cls, f"unexpected HTTP {status} from BackQuant")
    label = code or f"HTTP {status}"
    message = f"{label}: {server_message} — {advice}"
    if key is not None:
        message = key.scrub(message)
    return cls(message, status=status, request_id=request_id, headers=headers, details=details)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's verifying TLS context, built once per process: loading the CA bundle costs more
    than a tick's four requests, and a tick builds a new client."""
    return httpx.create_ssl_context()


class BackQuantClient:
    """Async client; use ``async with BackQuantClient(config) as client``."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self._key = config.require_key()
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            auth=_ApiKeyAuth(self._key),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s),
            transport=transport,
            verify=_tls_context(),
            follow_redirects=False,
        )

    async def __aenter__(self) -> BackQuantClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"BackQuantClient(base_url={self.config.base_url!r}, api_key={self._key!r})"

    async def fetch_expiry_summary(self, symbol: str) -> FetchResult:
        """Fetch, validate and time one symbol's summary, retrying within the deadline."""
        validate_symbols([symbol])
        schedule = RetrySchedule(self.config.retry)
        started_at = datetime.now(UTC)
        deadline = time.monotonic() + self.config.retry.deadline_s
        attempts = 0
        try:
            async for attempt in schedule.retrying():
                with attempt:
                    attempts += 1
                    status, raw, headers = await self._get_once(symbol, deadline)
                    parsed = parse_expiry_summary(raw, status=status, headers=headers)
        except FetchError as error:
            error.symbol = symbol
            error.attempts = attempts
            # A body's preview (NotJSONError) may echo the request, key included.
            error.message = self._key.scrub(error.message)
            raise
        return FetchResult(
            symbol=symbol,
            parsed=parsed,
            raw=raw,
            status=status,
            headers=headers,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            attempts=attempts,
        )

    async def fetch_all(self, symbols: Iterable[str] | None = None) -> dict[str, FetchOutcome]:
        """Fetch every symbol concurrently; wall time is the slowest symbol's, not the sum."""
        chosen = tuple(symbols) if symbols is not None else self.config.symbols
        outcomes = await asyncio.gather(*(self._outcome(symbol) for symbol in chosen))
        return {outcome.symbol: outcome for outcome in outcomes}

    async def _outcome(self, symbol: str) -> FetchOutcome:
        started_at = datetime.now(UTC)
        try:
            result = await self.fetch_expiry_summary(symbol)
        except FetchError as error:
            return FetchOutcome(symbol, started_at, datetime.now(UTC), error=error)
        except Exception as exc:  # one symbol's failure, whatever it is, never hides the others
            unforeseen = UnforeseenFetchError(
                self._key.scrub(f"the fetch failed unexpectedly ({type(exc).__name__}: {exc})")
            )
            unforeseen.symbol = symbol
            return FetchOutcome(symbol, started_at, datetime.now(UTC), error=unforeseen)
        return FetchOutcome(symbol, started_at, result.finished_at, result=result)

    async def _get_once(self, symbol: str, deadline: float) -> tuple[int, bytes, ResponseHeaders]:
        remaining = max(deadline - time.monotonic(), 0.001)
        timeout = httpx.Timeout(
            min(self.config.read_timeout_s, remaining),
            connect=min(self.config.connect_timeout_s, remaining),
        )
        try:
            # httpx's timeouts bound each read; this bounds the whole attempt, so a body that
            # trickles in cannot outlast the deadline.
            async with asyncio.timeout(remaining):
                response = await self._http.get(
                    EXPIRY_SUMMARY_PATH, params={"symbol": symbol}, timeout=timeout
                )
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise FetchTimeoutError(
                f"no complete response within {remaining:.3g} s ({type(exc).__name__}); "
                "retried up to the deadline, the next tick will try again"
            ) from None
        except httpx.TransportError as exc:
            raise FetchConnectionError(
                self._key.scrub(
                    f"connection to {self.config.base_url} failed ({type(exc).__name__}: {exc}); "
                    "check BACKQUANT_BASE_URL and the network"
                )
            ) from None
        except httpx.RequestError as exc:  # e.g. a body that does not decode as it says
            raise TransportError(
                self._key.scrub(f"the response could not be read ({type(exc).__name__}: {exc})")
            ) from None
        headers = ResponseHeaders.from_mapping(response.headers)
        if not 200 <= response.status_code < 300:
            raise error_from_response(
                response.status_code, response.content, headers, symbol, self._key
            )
        return response.status_code, response.content, headers


async def fetch_health(config: ClientConfig) -> dict[str, Any]:
    """The body of ``GET /v2/health``, which needs no key and always answers HTTP 200."""
    timeout = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s)
    async with httpx.AsyncClient(base_url=config.base_url, timeout=timeout) as http:
        try:
            response = await http.get(HEALTH_PATH, headers={"User-Agent": USER_AGENT})
        except httpx.TimeoutException as exc:
            raise FetchTimeoutError(f"GET {HEALTH_PATH} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise FetchConnectionError(
                f"could not reach {config.base_url}: {type(exc).__name__}: {exc}; "
                "check BACKQUANT_BASE_URL and the network"
            ) from None
    headers = ResponseHeaders.from_mapping(response.headers)
    if response.status_code != 200:
        raise error_from_response(response.status_code, response.content, headers, "health", None)
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise NotJSONError(
            f"{config.base_url}{HEALTH_PATH} did not answer JSON; is this BackQuant?",
            raw=response.content,
            status=response.status_code,
            headers=headers,
        ) from None
    return body if isinstance(body, dict) else {"body": body}


def fetch_all_sync(
    config: ClientConfig, symbols: Iterable[str] | None = None
) -> dict[str, FetchOutcome]:
    """Blocking convenience wrapper for scripts and Dagster ops."""

    async def run() -> dict[str, FetchOutcome]:
        async with BackQuantClient(config) as client:
            return await client.fetch_all(symbols)

    return asyncio.run(run())
