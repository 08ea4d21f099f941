"""Fault injection: the spec language, and the per-request decision (deterministic given the seed).

Syntax (whitespace is ignored; see docs/simulator.md)::

    spec  := rule (";" rule)*
    rule  := [target ":"] body                 target: BTCUSDT | ETHUSDT | SOLUSDT | HYPEUSDT | *
    body  := fault ["@" rate]                  rate: 0.25 or 25%  (default: every request)
           | "seq=" step ("," step)*           the target's next requests, in order, then normal
    step  := fault | "ok"
    fault := name ["(" number ")"]

Examples: ``500@10%`` · ``ETHUSDT:seq=burst(1),burst(1),ok`` ·
``HYPEUSDT:404@0.5; SOLUSDT:stale(900)``.

Rules apply to ``/v2/options/expiry-summary`` only. For each request the rules are tried in order
and the first that fires wins; a ``seq`` rule consumes one step per request of its target symbol,
and a rate rule fires when a uniform draw keyed by (seed, rule, symbol, the symbol's request
number) falls below its rate — so the same request sequence always meets the same faults.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from backquant.simulator.rng import hashed_uniform, key64
from backquant.symbols import SUPPORTED_SYMBOLS

MAX_HANG_S: Final[float] = 120.0
"""Hangs end by themselves after at most this long, so servers always stop cleanly."""


@dataclass(frozen=True, slots=True)
class FaultKind:
    name: str
    summary: str
    default_arg: float | None = None
    """None: the fault takes no argument."""


FAULT_KINDS: Final[dict[str, FaultKind]] = {
    kind.name: kind
    for kind in (
        FaultKind("burst", "429 burst limit with Retry-After: N seconds", 1.0),
        FaultKind(
            "burst-no-header", "429 burst without Retry-After; details.retry_after_seconds N", 1.0
        ),
        FaultKind("burst-bare", "429 burst with no retry hint at all (client backs off)"),
        FaultKind("quota", "429 monthly quota spent: X-Quota-Remaining: 0, Retry-After to the 1st"),
        FaultKind("500", "500 INTERNAL_ERROR"),
        FaultKind("502", "502 UPSTREAM_ERROR"),
        FaultKind("503", "503 UPSTREAM_ERROR"),
        FaultKind("504", "504 UPSTREAM_ERROR"),
        FaultKind("401", "401 UNAUTHORIZED, whatever key was sent"),
        FaultKind("403", "403 FORBIDDEN (plan does not allow the call)"),
        FaultKind("404", "404 NOT_FOUND: no cache for the symbol yet (cold start)"),
        FaultKind("latency", "a normal answer, N seconds late", 0.5),
        FaultKind(
            "hang", f"no answer for N seconds (at most {MAX_HANG_S:g}), then a normal one", 30.0
        ),
        FaultKind("reset", "connection dropped halfway through the body"),
        FaultKind("truncate", "200 whose JSON body is cut in half (complete HTTP message)"),
        FaultKind("nonjson", "200 with an HTML proxy page instead of JSON"),
        FaultKind("drift-unknown", "valid body plus fields the contract does not know"),
        FaultKind("drift-missing-optional", "valid body without optional fields"),
        FaultKind("drift-wrong-type", "body with dte as a string (violates the contract)"),
        FaultKind("drift-missing-required", "body whose rows lack the required 'type' field"),
        FaultKind(
            "stale", "data computed N seconds ago (computed_at lags, freshness in minutes)", 600.0
        ),
        FaultKind("frozen", "computed_at stops advancing at the first frozen answer"),
    )
}


class FaultSpecError(ValueError):
    """The fault spec does not parse; the message points at the bad rule and lists the names."""


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    arg: float | None = None

    def __str__(self) -> str:
        return self.name if self.arg is None else f"{self.name}({self.arg:g})"


@dataclass(frozen=True, slots=True)
class FaultRule:
    target: str
    """A symbol, or ``*`` for every symbol."""
    fault: Fault | None = None
    rate: float = 1.0
    sequence: tuple[Fault | None, ...] = ()
    """Scripted steps; None is ``ok``."""

    def applies_to(self, symbol: str) -> bool:
        return self.target in ("*", symbol)


_FAULT = re.compile(r"^([a-z0-9-]+)(?:\(([^)]*)\))?$")
_RATE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(%?)$")


def _parse_fault(text: str, rule: str) -> Fault:
    match = _FAULT.match(text)
    if match is None or match.group(1) not in FAULT_KINDS:
        names = ", ".join(FAULT_KINDS)
        raise FaultSpecError(f"unknown fault {text!r} in rule {rule!r}; known faults: {names}")
    kind = FAULT_KINDS[match.group(1)]
    raw_arg = match.group(2)
    if raw_arg is None:
        return Fault(kind.name, kind.default_arg)
    if kind.default_arg is None:
        raise FaultSpecError(f"fault {kind.name!r} takes no argument (rule {rule!r})")
    try:
        arg = float(raw_arg)
    except ValueError:
        raise FaultSpecError(
            f"the argument of {kind.name!r} must be a number of seconds, got {raw_arg!r}"
        ) from None
    if not 0 <= arg < 1e7:
        raise FaultSpecError(f"the argument of {kind.name!r} must be ≥ 0 seconds, got {raw_arg!r}")
    if kind.name == "hang":
        arg = min(arg, MAX_HANG_S)
    return Fault(kind.name, arg)


def _parse_rate(text: str, rule: str) -> float:
    match = _RATE.match(text)
    if match is None:
        raise FaultSpecError(f"bad rate {text!r} in rule {rule!r}; write 0.25 or 25%")
    rate = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
    if not 0 <= rate <= 1:
        raise FaultSpecError(f"rate {text!r} in rule {rule!r} is outside 0–1 (0–100%)")
    return rate


def _parse_rule(text: str) -> FaultRule:
    target, body = "*", text
    head, sep, tail = text.partition(":")
    if sep:
        if head != "*" and head not in SUPPORTED_SYMBOLS:
            raise FaultSpecError(
                f"unknown target {head!r} in rule {text!r}; use * or one of "
                f"{', '.join(SUPPORTED_SYMBOLS)}"
            )
        target, body = head, tail
    if body.startswith("seq="):
        steps = body[4:].split(",")
        if not all(steps):
            raise FaultSpecError(f"empty step in sequence {text!r}")
        return FaultRule(
            target=target,
            sequence=tuple(None if step == "ok" else _parse_fault(step, text) for step in steps),
        )
    fault_text, at, rate_text = body.partition("@")
    rate = _parse_rate(rate_text, text) if at else 1.0
    return FaultRule(target=target, fault=_parse_fault(fault_text, text), rate=rate)


@lru_cache(maxsize=64)
def parse_fault_spec(spec: str) -> tuple[FaultRule, ...]:
    """Parse a spec; raises FaultSpecError with a message that says what to fix."""
    compact = re.sub(r"\s+", "", spec)
    return tuple(_parse_rule(rule) for rule in compact.split(";") if rule)


class FaultPlan:
    """Decides, request by request, which fault (if any) each expiry-summary request meets."""

    def __init__(self, seed: int, spec: str) -> None:
        self.seed = seed
        self.rules = parse_fault_spec(spec)
        self._requests: dict[str, int] = {}
        self._cursors: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def next_fault(self, symbol: str) -> Fault | None:
        with self._lock:
            number = self._requests.get(symbol, 0)
            self._requests[symbol] = number + 1
            chosen: Fault | None = None
            for position, rule in enumerate(self.rules):
                if not rule.applies_to(symbol):
                    continue
                fault = self._fire(position, rule, symbol, number)
                if chosen is None and fault is not None:
                    chosen = fault
            return chosen

    def _fire(self, position: int, rule: FaultRule, symbol: str, number: int) -> Fault | None:
        if rule.sequence:
            cursor = self._cursors.get((position, symbol), 0)
            self._cursors[(position, symbol)] = cursor + 1
            return rule.sequence[cursor] if cursor < len(rule.sequence) else None
        if rule.rate >= 1.0:
            return rule.fault
        draw = float(hashed_uniform(key64(self.seed, "fault", position, symbol), [number])[0])
        return rule.fault if draw < rule.rate else None

    def requests_seen(self) -> dict[str, int]:
        with self._lock:
            return dict(self._requests)
