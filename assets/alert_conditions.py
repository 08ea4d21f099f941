# SQL built from constants and instants formatted here, never from user input.
# ruff: noqa: S608
"""The feed's alert conditions, as plain SQL over the lake: stale feed or symbol, failing
symbol, quota.

Every query reads a bounded window (a lower bound on the table's partition column), so an
evaluation costs the same on a lake of a year as on one of a day. Times come from the lake's own
columns: ``computed_at`` (BackQuant's clock, which its quota period also follows: a snapshot's,
or the summary a logged answer carried) for staleness and the quota rate, ``ingest_log``'s
``started_at`` only for the order of attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from assets.alerts import Check, Finding, duration
from assets.ingest import TICK_ASSET
from backquant.headers import ResponseHeaders
from storage.errors import NotInitialisedError, StorageError
from storage.reports import DUPLICATE, STORED

if TYPE_CHECKING:
    from storage.lake_config import LakeConfig
    from storage.warehouse import Warehouse

STALE_FEED: Final[str] = "stale_feed"
SYMBOL_FAILING: Final[str] = "symbol_failing"
QUOTA: Final[str] = "quota"
LAKE_UNREADABLE: Final[str] = "lake_unreadable"
FEED_SCOPES: Final[tuple[str, ...]] = (LAKE_UNREADABLE, STALE_FEED, SYMBOL_FAILING, QUOTA)
REASON_CHARS: Final[int] = 300
DEFAULT_STALE_MINUTES: Final[int] = 5
"""For a minutely schedule; a slower one gets twice its interval (``pipelines.alerting``)."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a feed condition becomes an alert (defaults: docs/runbook.md, Alerts)."""

    stale_minutes: int = DEFAULT_STALE_MINUTES
    """No snapshot newer than this many minutes: the feed is stale. One symbol's data this
    far behind the newest of the feed: that symbol is stale."""
    failed_attempts: int = 5
    """This many consecutive failed attempts of one symbol: it is failing."""
    quota_window: timedelta = timedelta(hours=1)
    """The current request rate is the slope of ``quota_used`` over this window."""
    quota_min_span: timedelta = timedelta(minutes=10)
    """Fewer minutes of samples than this: the rate is not known yet."""
    lookback: timedelta = timedelta(days=2)
    """How far back the stale and failing-symbol queries read."""
    unreadable_retry_s: float = 2.0
    """A lake read that fails is tried once more after this long before it is an alert: a
    SQLite catalog can refuse a reader for a moment while a writer commits."""


def _at(instant: datetime) -> str:
    return f"TIMESTAMPTZ '{instant.astimezone(UTC).isoformat()}'"


def _clock(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(instant: datetime) -> str:
    utc = instant.astimezone(UTC)
    return f"{utc:%A} {utc.day} {utc:%B %Y}"


def _short(text: str | None) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= REASON_CHARS else f"{one_line[: REASON_CHARS - 1]}…"


def lake_ready(config: LakeConfig) -> bool:
    """True when the lake exists with termstore's current tables. Attaches read-only and, unlike
    ``Warehouse.connect``, never upgrades an older lake (that is a writer's job). Raises
    ``StorageError`` when the catalog cannot be reached."""
    # The lake's modules load DuckDB: imported when a sensor evaluates, not when the code
    # location loads.
    from storage.lake import open_lake
    from storage.lake_schema import SCHEMA_VERSION, schema_version

    try:
        connection = open_lake(config, read_only=True)
    except NotInitialisedError:
        return False
    try:
        return schema_version(connection) == SCHEMA_VERSION
    finally:
        connection.close()


def feed_checks(config: LakeConfig, now: datetime, thresholds: Thresholds) -> list[Check]:
    """Every feed condition at ``now``. A lake that cannot be read (twice) is itself an alert;
    the other conditions then cannot tell."""
    try:
        return _read_checks(config, now, thresholds)
    except StorageError:
        time.sleep(thresholds.unreadable_retry_s)
    try:
        return _read_checks(config, now, thresholds)
    except StorageError as error:
        finding = Finding(
            key=LAKE_UNREADABLE,
            title="lake unreadable",
            summary=f"the alert sensor cannot read the lake: {_short(str(error))}",
            recovery="the lake can be read again",
            asset=TICK_ASSET,
        )
        unknown = (Check(scope, None, "the lake could not be read") for scope in FEED_SCOPES[1:])
        return [Check(LAKE_UNREADABLE, (finding,)), *unknown]


def _read_checks(config: LakeConfig, now: datetime, thresholds: Thresholds) -> list[Check]:
    from storage.warehouse import Warehouse

    if not lake_ready(config):
        note = "no lake with termstore's current tables yet (the next ingest makes it)"
        return [Check(LAKE_UNREADABLE, ()), *(Check(s, None, note) for s in FEED_SCOPES[1:])]
    with Warehouse(config) as warehouse:
        return [
            Check(LAKE_UNREADABLE, ()),
            _guarded(STALE_FEED, lambda: stale_feed(warehouse, now, thresholds)),
            _guarded(SYMBOL_FAILING, lambda: failing_symbols(warehouse, now, thresholds)),
            _guarded(QUOTA, lambda: quota_outlook(warehouse, now, thresholds)),
        ]


def _guarded(scope: str, condition: Callable[[], Check]) -> Check:
    """The condition's check; if it raises anything but a lake error, a check that cannot tell
    (so one broken condition never silences the others or the queued messages)."""
    try:
        return condition()
    except StorageError:
        raise
    except Exception as error:
        note = f"the check failed: {type(error).__name__}: {_short(str(error))}"
        return Check(scope, None, note, failed=True)


def stale_feed(warehouse: Warehouse, now: datetime, thresholds: Thresholds) -> Check:
    """The feed, when no snapshot was computed in the last ``stale_minutes`` (the daemon or
    schedule is off, every fetch fails, or BackQuant's data stopped advancing), and each symbol
    whose data stopped advancing while the rest of the feed's did (``frozen_symbols``)."""
    since = now - thresholds.lookback
    frozen = frozen_symbols(warehouse, since, thresholds)
    newest = warehouse.sql(
        f"SELECT symbol, max(computed_at) AS newest FROM snapshots "
        f"WHERE computed_at >= {_at(since)} GROUP BY symbol ORDER BY symbol"
    )
    if newest.is_empty():
        ever = warehouse.sql("SELECT max(computed_at) AS newest FROM snapshots").item()
        if ever is None:
            return Check(STALE_FEED, frozen, "no snapshot stored yet")
        last, per_symbol = ever, ""
    else:
        last = newest["newest"].max()
        per_symbol = ", ".join(
            f"{symbol} {at:%H:%M}" for symbol, at in newest.iter_rows() if at is not None
        )
    assert isinstance(last, datetime)
    age = now - last
    if age <= timedelta(minutes=thresholds.stale_minutes):
        return Check(STALE_FEED, frozen)
    detail = f" ({per_symbol})" if per_symbol else ""
    summary = (
        f"no tick stored for {duration(age.total_seconds())}: the newest snapshot was computed at "
        f"{_clock(last)}{detail}; {_latest_attempt(warehouse, now, since, thresholds)}"
    )
    finding = Finding(
        key=STALE_FEED,
        title="feed stale",
        summary=summary,
        recovery="ticks are being stored again",
        asset=TICK_ASSET,
    )
    return Check(STALE_FEED, (finding, *frozen))


def frozen_symbols(
    warehouse: Warehouse, since: datetime, thresholds: Thresholds
) -> tuple[Finding, ...]:
    """Symbols whose latest answer with data repeated a summary computed over ``stale_minutes``
    before the newest any symbol was served: BackQuant stopped refreshing them, not the rest.

    Measured against the feed's newest summary, not the clock, so a frozen symbol stays open
    (rather than "recovering") when the whole feed then stops too. Read from ``ingest_log``,
    whose ``computed_at`` is the summary each answer carried: a symbol frozen for longer than
    the lookback still counts, and one that never had data or now only fails is left to
    ``symbol_failing``."""
    frame = warehouse.sql(
        f"""
        WITH served AS (
            SELECT symbol, max(computed_at) AS newest, max(started_at) AS latest_at,
                   arg_max(outcome, started_at) AS latest
            FROM ingest_log
            WHERE started_at >= {_at(since)} AND outcome IN ('{STORED}', '{DUPLICATE}')
              AND computed_at IS NOT NULL
            GROUP BY symbol
        ),
        feed AS (SELECT max(newest) AS newest FROM served)
        SELECT s.symbol, s.newest, s.latest_at, f.newest AS feed_newest
        FROM served AS s, feed AS f
        WHERE s.latest = '{DUPLICATE}'
          AND s.newest < f.newest - INTERVAL {int(thresholds.stale_minutes)} MINUTE
        ORDER BY s.symbol
        """
    )
    return tuple(_frozen(row) for row in frame.iter_rows(named=True))


def _frozen(row: dict[str, object]) -> Finding:
    symbol = str(row["symbol"])
    newest, feed_newest, latest_at = row["newest"], row["feed_newest"], row["latest_at"]
    assert isinstance(newest, datetime) and isinstance(feed_newest, datetime)
    assert isinstance(latest_at, datetime)
    behind = duration((feed_newest - newest).total_seconds())
    return Finding(
        key=f"{STALE_FEED}:{symbol}",
        title=f"{symbol} stale",
        summary=(
            f"BackQuant keeps serving {symbol}'s summary computed at {_clock(newest)}, {behind} "
            f"behind the rest of the feed (newest {_clock(feed_newest)}); its latest answer, at "
            f"{_clock(latest_at)}, was that summary again (duplicate): check /v2/status"
        ),
        recovery=f"{symbol}'s data is advancing again",
        asset=TICK_ASSET,
    )


def _latest_attempt(
    warehouse: Warehouse, now: datetime, since: datetime, thresholds: Thresholds
) -> str:
    latest = warehouse.sql(
        f"SELECT started_at, symbol, outcome, reason FROM ingest_log "
        f"WHERE started_at >= {_at(since)} ORDER BY started_at DESC LIMIT 1"
    )
    if latest.is_empty():
        return (
            "no fetch attempt logged in the last "
            f"{int(thresholds.lookback.total_seconds() // 86400)} days: is the Dagster daemon "
            "running and ingest_every_minute on?"
        )
    started_at, symbol, outcome, reason = latest.row(0)
    text = f"latest fetch attempt {_clock(started_at)} ({symbol}): {outcome}"
    if reason:
        text += f": {_short(reason)}"
    if now - started_at > timedelta(minutes=thresholds.stale_minutes):
        text += "; nothing was fetched since: is the Dagster daemon running and the schedule on?"
    return text


def failing_symbols(warehouse: Warehouse, now: datetime, thresholds: Thresholds) -> Check:
    """Symbols whose last ``failed_attempts`` attempts or more all failed (a duplicate is not a
    failure), with the latest attempt's outcome and reason."""
    ok = f"('{STORED}', '{DUPLICATE}')"
    streaks = warehouse.sql(
        f"""
        WITH recent AS (
            SELECT symbol, started_at, outcome, reason FROM ingest_log
            WHERE started_at >= {_at(now - thresholds.lookback)}
        ),
        last_ok AS (
            SELECT symbol, max(started_at) AS at FROM recent WHERE outcome IN {ok} GROUP BY symbol
        )
        SELECT r.symbol, count(*) AS failures, min(r.started_at) AS since,
               arg_max(r.outcome, r.started_at) AS outcome,
               arg_max(r.reason, r.started_at) AS reason,
               bool_or(o.at IS NULL) AS no_success_in_window
        FROM recent AS r LEFT JOIN last_ok AS o USING (symbol)
        WHERE r.outcome NOT IN {ok} AND (o.at IS NULL OR r.started_at > o.at)
        GROUP BY r.symbol
        HAVING count(*) >= {int(thresholds.failed_attempts)}
        ORDER BY r.symbol
        """
    )
    findings = tuple(_failing(row) for row in streaks.iter_rows(named=True))
    return Check(SYMBOL_FAILING, findings)


def _failing(row: dict[str, object]) -> Finding:
    symbol = str(row["symbol"])
    since = row["since"]
    assert isinstance(since, datetime)
    reason = _short(str(row["reason"])) if row["reason"] else "no reason logged"
    window = " (none succeeded in the window read)" if row["no_success_in_window"] else ""
    return Finding(
        key=f"{SYMBOL_FAILING}:{symbol}",
        title=f"{symbol} failing",
        summary=(
            f"{symbol} failed {row['failures']} fetch attempts in a row since "
            f"{_clock(since)}{window}; latest: {row['outcome']}: {reason}"
        ),
        recovery=f"{symbol} is being fetched and stored again",
        asset=TICK_ASSET,
    )


@dataclass(frozen=True, slots=True)
class QuotaUse:
    period: str
    limit: int | None
    used: int
    remaining: int
    newest: datetime
    span: timedelta
    per_second: float | None

    @property
    def resets_at(self) -> datetime | None:
        return ResponseHeaders(quota_period=self.period).quota_resets_at()

    def runs_out_at(self) -> datetime | None:
        """When ``remaining`` is spent at the current rate; None when nothing is being used."""
        if self.per_second is None or self.per_second <= 0:
            return None
        return self.newest + timedelta(seconds=self.remaining / self.per_second)


def quota_use(warehouse: Warehouse, now: datetime, thresholds: Thresholds) -> QuotaUse | None:
    """The newest quota period seen in the window: used, remaining and the rate of use."""
    frame = warehouse.sql(
        f"""
        WITH recent AS (
            SELECT computed_at, quota_limit, quota_used, quota_remaining, quota_period
            FROM snapshots
            WHERE computed_at >= {_at(now - thresholds.quota_window)}
              AND quota_used IS NOT NULL AND quota_remaining IS NOT NULL
              AND quota_period IS NOT NULL
        ),
        period AS (SELECT arg_max(quota_period, computed_at) AS quota_period FROM recent)
        SELECT r.quota_period AS period,
               arg_max(r.quota_limit, r.quota_used) AS quota_limit,
               max(r.quota_used) AS used,
               arg_max(r.quota_remaining, r.quota_used) AS remaining,
               min(r.computed_at) AS oldest, max(r.computed_at) AS newest,
               regr_slope(r.quota_used, epoch(r.computed_at)) AS per_second
        FROM recent AS r JOIN period AS p USING (quota_period)
        GROUP BY r.quota_period
        """
    )
    if frame.is_empty():
        return None
    row = frame.row(0, named=True)
    slope = row["per_second"]
    return QuotaUse(
        period=str(row["period"]),
        limit=row["quota_limit"],
        used=int(row["used"]),
        remaining=int(row["remaining"]),
        newest=row["newest"],
        span=row["newest"] - row["oldest"],
        per_second=None if slope is None or slope != slope else float(slope),
    )


def quota_outlook(warehouse: Warehouse, now: datetime, thresholds: Thresholds) -> Check:
    """The monthly quota, at the current rate, runs out before it resets (or is spent)."""
    use = quota_use(warehouse, now, thresholds)
    if use is None or use.resets_at is None:
        return Check(QUOTA, None, "no quota headers in the window")
    resets_at = use.resets_at
    of_limit = f"{use.used:,} of {use.limit:,}" if use.limit is not None else f"{use.used:,}"
    if use.remaining <= 0:
        summary = (
            f"BackQuant's monthly quota is spent ({of_limit} requests used); every fetch is "
            f"refused until it resets on {_day(resets_at)} 00:00 UTC"
        )
        return Check(QUOTA, (_quota_finding(summary),))
    if use.span < thresholds.quota_min_span:
        return Check(QUOTA, None, "too few minutes of samples for a rate")
    runs_out = use.runs_out_at()
    if runs_out is None or runs_out >= resets_at:
        return Check(QUOTA, ())
    assert use.per_second is not None
    per_day = use.per_second * 86400
    summary = (
        f"BackQuant's monthly quota is projected to run out on {_day(runs_out)} around "
        f"{runs_out:%H:%M} UTC, before it resets on {_day(resets_at)}: {of_limit} requests "
        f"used, {use.remaining:,} left, about {per_day:,.0f} a day at the current rate"
    )
    return Check(QUOTA, (_quota_finding(summary),))


def _quota_finding(summary: str) -> Finding:
    return Finding(
        key=QUOTA,
        title="quota running out",
        summary=summary,
        recovery="the monthly quota is no longer projected to run out before it resets",
        asset=TICK_ASSET,
    )
