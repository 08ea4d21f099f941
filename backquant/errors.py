"""The exceptions termstore's BackQuant client raises, arranged so callers can catch precisely.

    BackQuantError
    ├── ConfigError                    bad settings, caught before any request
    │   ├── MissingApiKeyError
    │   ├── InvalidApiKeyError
    │   ├── UnsupportedSymbolError
    │   └── InvalidBaseURLError
    └── FetchError                     one symbol's fetch failed
        ├── APIError                   BackQuant answered with its error envelope
        │   ├── UnauthorizedError          401 UNAUTHORIZED
        │   ├── ForbiddenError             403 FORBIDDEN
        │   ├── NotFoundError              404 NOT_FOUND (cold cache, not a bug)
        │   ├── RequestValidationError     400/422 VALIDATION_ERROR
        │   ├── RateLimitError             429 RATE_LIMIT_EXCEEDED (per-minute burst)
        │   │   └── QuotaExhaustedError        429 with X-Quota-Remaining: 0
        │   ├── UpstreamError              502/503/504 UPSTREAM_ERROR
        │   ├── InternalServerError        500 INTERNAL_ERROR
        │   └── UnexpectedAPIError         any other code or status
        ├── TransportError             no usable HTTP response
        │   ├── FetchTimeoutError
        │   └── FetchConnectionError
        └── InvalidResponseError       a 2xx whose body cannot be trusted (quarantine it)
            ├── NotJSONError
            ├── EnvelopeError
            └── SchemaViolationError

Every ``FetchError`` has a stable ``kind`` (the ingest log's reason code) and, once the client
has finished with it, ``symbol`` and ``attempts``. Messages never contain the API key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from backquant.headers import ResponseHeaders


class BackQuantError(Exception):
    """Base class of every error termstore's BackQuant client raises."""


class ConfigError(BackQuantError, ValueError):
    """The client's settings are unusable; nothing was sent."""


class MissingApiKeyError(ConfigError):
    """No API key is configured."""


class InvalidApiKeyError(ConfigError):
    """The configured API key is malformed (the message never repeats it)."""


class UnsupportedSymbolError(ConfigError):
    """A symbol outside the four BackQuant serves."""


class InvalidBaseURLError(ConfigError):
    """The base URL is not an http(s) URL."""


class FetchError(BackQuantError):
    """One symbol's fetch failed; carries what the ingest log needs."""

    kind: ClassVar[str] = "fetch_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        headers: ResponseHeaders | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.headers = headers if headers is not None else ResponseHeaders()
        self.symbol: str | None = None
        self.attempts = 1

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        prefix = f"{self.symbol}: " if self.symbol else ""
        return prefix + " | ".join(parts)


class APIError(FetchError):
    """BackQuant answered with an error envelope (or an error status without one)."""

    kind: ClassVar[str] = "api_error"
    code: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        headers: ResponseHeaders | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id, headers=headers)
        self.details = details if details is not None else {}


class UnauthorizedError(APIError):
    """401: the key is missing, malformed, revoked or expired. Fix the credentials."""

    kind = "unauthorized"
    code = "UNAUTHORIZED"


class ForbiddenError(APIError):
    """403: the key is valid but the plan does not allow this call."""

    kind = "forbidden"
    code = "FORBIDDEN"


class NotFoundError(APIError):
    """404: BackQuant has no cached summary for this symbol right now (cold start)."""

    kind = "not_found"
    code = "NOT_FOUND"


class RequestValidationError(APIError):
    """400/422: BackQuant rejected a parameter."""

    kind = "validation_error"
    code = "VALIDATION_ERROR"


class RateLimitError(APIError):
    """429 burst: the per-minute limit was hit; waiting ``retry_after`` seconds clears it."""

    kind = "rate_limited"
    code = "RATE_LIMIT_EXCEEDED"
    retryable = True

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait: the Retry-After header, else ``details.retry_after_seconds``."""
        if self.headers.retry_after is not None:
            return self.headers.retry_after
        hint = self.details.get("retry_after_seconds")
        if isinstance(hint, int | float) and not isinstance(hint, bool) and hint >= 0:
            return float(hint)
        return None


class QuotaExhaustedError(RateLimitError):
    """429 with ``X-Quota-Remaining: 0``: the monthly quota is spent. Never slept on."""

    kind = "quota_exhausted"
    retryable = False


class UpstreamError(APIError):
    """502/503/504 (and any other 5xx a proxy may answer): BackQuant or what stands before it
    is unavailable; usually clears within ~30 s."""

    kind = "upstream_error"
    code = "UPSTREAM_ERROR"
    retryable = True


class InternalServerError(APIError):
    """500: a BackQuant bug; report it with the request id."""

    kind = "internal_error"
    code = "INTERNAL_ERROR"
    retryable = True


class UnexpectedAPIError(APIError):
    """An error status or code this client does not know."""

    kind = "unexpected_error"


class TransportError(FetchError):
    """No usable HTTP response: the request timed out, the connection failed, or the response
    could not be read."""

    kind = "transport_error"
    retryable = True


class UnforeseenFetchError(FetchError):
    """A failure of one symbol's fetch this client does not know; the message names it. The
    other symbols' fetches are unaffected."""

    kind = "unexpected_error"


class FetchTimeoutError(TransportError):
    kind = "timeout"


class FetchConnectionError(TransportError):
    kind = "connection_error"


class InvalidResponseError(FetchError):
    """A 2xx response whose body cannot be trusted. ``raw`` keeps it for quarantine."""

    kind = "invalid_response"

    def __init__(
        self,
        message: str,
        *,
        raw: bytes,
        status: int | None = None,
        request_id: str | None = None,
        headers: ResponseHeaders | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id, headers=headers)
        self.raw = raw


class NotJSONError(InvalidResponseError):
    kind = "not_json"


class EnvelopeError(InvalidResponseError):
    """Valid JSON, but not BackQuant's ``{success, data, meta}`` envelope."""

    kind = "bad_envelope"


class SchemaViolationError(InvalidResponseError):
    """The envelope is there, but a required field is missing or has the wrong type."""

    kind = "schema_violation"

    def __init__(
        self,
        message: str,
        *,
        raw: bytes,
        field_path: str,
        status: int | None = None,
        request_id: str | None = None,
        headers: ResponseHeaders | None = None,
    ) -> None:
        super().__init__(message, raw=raw, status=status, request_id=request_id, headers=headers)
        self.field_path = field_path


API_ERRORS_BY_CODE: dict[str, type[APIError]] = {
    cls.code: cls
    for cls in (
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        RequestValidationError,
        RateLimitError,
        UpstreamError,
        InternalServerError,
    )
}

API_ERRORS_BY_STATUS: dict[int, type[APIError]] = {
    400: RequestValidationError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    422: RequestValidationError,
    429: RateLimitError,
    500: InternalServerError,
    502: UpstreamError,
    503: UpstreamError,
    504: UpstreamError,
}
