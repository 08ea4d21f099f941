"""When and how long to wait before retrying a failed fetch (tenacity policy).

429 burst → Retry-After, else ``details.retry_after_seconds``, else exponential backoff with jitter.
429 with the monthly quota spent → never retried. 5xx / UPSTREAM_ERROR → the advised 2 s, 4 s, 8 s.
Timeouts and connection errors → a few quick retries. Anything else → no retry. Every wait is
bounded by the per-call deadline: a retry that could not start before it is not attempted.
"""

from __future__ import annotations

import random
from collections import Counter

from tenacity import AsyncRetrying, RetryCallState, stop_before_delay

from backquant.config import RetryPolicy
from backquant.errors import (
    APIError,
    FetchError,
    InternalServerError,
    RateLimitError,
    TransportError,
    UpstreamError,
)


def _failure_class(error: BaseException) -> str:
    if isinstance(error, RateLimitError):
        return "rate_limit"
    if isinstance(error, UpstreamError | InternalServerError):
        return "upstream"
    if isinstance(error, TransportError):
        return "transport"
    return "other"


class RetrySchedule:
    """Stateful retry decisions for one fetch; each call builds a fresh one."""

    def __init__(self, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._failures: Counter[str] = Counter()

    def _allowed(self, failure_class: str) -> int:
        policy = self.policy
        return {
            "rate_limit": policy.rate_limit_retries,
            "upstream": len(policy.upstream_backoff_s),
            "transport": policy.transport_retries,
        }.get(failure_class, 0)

    def should_retry(self, error: BaseException) -> bool:
        if not isinstance(error, FetchError) or not error.retryable:
            return False
        failure_class = _failure_class(error)
        self._failures[failure_class] += 1
        return self._failures[failure_class] <= self._allowed(failure_class)

    def wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        failure_class = _failure_class(error) if error else "other"
        count = max(self._failures[failure_class], 1)
        jitter = self._rng.uniform(0, self.policy.jitter_s)
        if isinstance(error, RateLimitError):
            if error.retry_after is not None:
                return error.retry_after + jitter
            return self.policy.rate_limit_backoff_s * 2.0 ** (count - 1) + jitter
        if isinstance(error, APIError):
            backoff = self.policy.upstream_backoff_s
            return backoff[min(count, len(backoff)) - 1]
        return self.policy.transport_backoff_s * 2.0 ** (count - 1) + jitter

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=_RetryIf(self),
            wait=self.wait,
            stop=stop_before_delay(self.policy.deadline_s),
            reraise=True,
        )


class _RetryIf:
    """tenacity ``retry=`` strategy: retry only the failures the schedule allows."""

    def __init__(self, schedule: RetrySchedule) -> None:
        self._schedule = schedule

    def __call__(self, state: RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        error = state.outcome.exception()
        return error is not None and self._schedule.should_retry(error)
