"""One ingest tick: one transaction for everything the tick learned.

The fetched bodies land as an import's do (``storage.landing``): a key already archived is a
duplicate (logged, not stored), unsafe or absurd values are quarantined with the reason, and a
new body goes to ``responses`` and its rows to the summary tables. A failed fetch is logged,
and its body, if it had one, quarantined. Every attempt gets an ``ingest_log`` row. All of it
commits in one DuckLake transaction: a reader sees the whole tick or none of it, and a tick
killed before its commit leaves nothing behind (the next tick fetches afresh; the lost minute
shows in ``ingest_gaps``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from backquant.client import FetchOutcome, FetchResult, fetch_all_sync
from backquant.config import ClientConfig
from backquant.errors import InvalidResponseError
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.archive import archived_keys
from storage.landing import Body, Fate, Landing, keyed, land
from storage.quarantine import Refusal
from storage.records import FetchMeta, IngestLogEntry, RejectedValueError, check_symbol
from storage.reports import DUPLICATE, SymbolReport, TickReport
from storage.research.hourly_tier import resample_late_rows
from storage.warehouse import Warehouse
from storage.writes import transaction


def fetch_meta(symbol: str, result: FetchResult) -> FetchMeta:
    return FetchMeta(
        symbol=symbol,
        status=result.status,
        started_at=result.started_at,
        finished_at=result.finished_at,
        attempts=result.attempts,
        headers=result.headers,
    )


def _fetched(
    landing: Landing, outcome: FetchOutcome, result: FetchResult, fate: Fate
) -> SymbolReport:
    body, refusal = fate
    if refusal is not None:
        landing.refusals.append(refusal)
    meta = result.response.meta
    reason = body.reason
    if body.status == DUPLICATE:
        reason = f"{reason}; BackQuant had not refreshed the summary yet"
    return SymbolReport(
        symbol=outcome.symbol,
        status=body.logged_as,
        started_at=outcome.started_at,
        latency_s=result.latency_s,
        computed_at=body.computed_at,
        freshness_seconds=meta.freshness_seconds,
        expiry_count=len(result.response.data.expiries),
        spot=meta.spot_price,
        http_status=result.status,
        request_id=body.request_id,
        attempts=result.attempts,
        reason=reason,
        drift=result.parsed.drift,
        warnings=result.parsed.warnings,
        quarantine_id=body.quarantine_id,
    )


def _failed(landing: Landing, outcome: FetchOutcome) -> SymbolReport:
    error = outcome.error
    assert error is not None
    quarantine_id = None
    if isinstance(error, InvalidResponseError):
        refusal = Refusal.of(
            outcome.symbol, outcome.finished_at, error.raw, error, error.status, error.request_id
        )
        landing.refusals.append(refusal)
        quarantine_id = refusal.quarantine_id
    return SymbolReport(
        symbol=outcome.symbol,
        status=error.kind,
        started_at=outcome.started_at,
        latency_s=outcome.latency_s,
        http_status=error.status,
        request_id=error.request_id,
        attempts=error.attempts,
        reason=str(error),
        quarantine_id=quarantine_id,
    )


def _log_entry(outcome: FetchOutcome, report: SymbolReport) -> IngestLogEntry:
    return IngestLogEntry(
        symbol=outcome.symbol,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
        outcome=report.status,
        reason=report.reason,
        http_status=report.http_status,
        request_id=report.request_id,
        attempts=report.attempts,
        computed_at=report.computed_at,
        quarantine_id=report.quarantine_id,
    )


def ingest_outcomes(warehouse: Warehouse, outcomes: Mapping[str, FetchOutcome]) -> TickReport:
    """Store one tick's fetch outcomes in one transaction; returns what happened to each
    symbol. Raises a ``StorageError`` (nothing committed) when the lake cannot be written."""
    started_at = datetime.now(UTC)
    ordered = [outcome for _, outcome in sorted(outcomes.items())]
    supported = [outcome for outcome in ordered if outcome.symbol in SUPPORTED_SYMBOLS]
    fetched = [
        keyed(position, fetch_meta(outcome.symbol, result), result.raw, result.parsed)
        for position, outcome in enumerate(supported)
        if (result := outcome.result) is not None
    ]
    landing = Landing(as_published=True)
    # The duplicate check reads in the tick's own transaction: one catalog snapshot for the
    # read and the writes, and no other writer can slip a key in between.
    with (
        warehouse.writer(threads=1) as connection,
        transaction(connection, warehouse.config, "the tick") as lake,
    ):
        keys = [body.key for body in fetched if isinstance(body, Body)]
        archived = dict.fromkeys(archived_keys(lake, keys))
        fates = {fate[0].position: fate for fate in land(fetched, archived, landing)}
        reports = [
            _failed(landing, outcome)
            if outcome.result is None
            else _fetched(landing, outcome, outcome.result, fates[position])
            for position, outcome in enumerate(supported)
        ]
        landing.log = [_log_entry(o, r) for o, r in zip(supported, reports, strict=True)]
        written = landing.write(lake)
        # A body computed on a day before its fetch's (a stale summary served just after
        # midnight) may land in a day already sampled: that day is re-sampled. The usual body,
        # of its fetch's day, costs no query.
        late = [
            (record.symbol, record.computed_at)
            for record in landing.records
            if record.computed_at.astimezone(UTC).date()
            < record.fetch.started_at.astimezone(UTC).date()
        ]
        resample_late_rows(lake, late, started_at)
    reports += [_unsupported(o) for o in ordered if o.symbol not in SUPPORTED_SYMBOLS]
    return TickReport(
        started_at=started_at,
        finished_at=datetime.now(UTC),
        symbols=tuple(reports),
        rows_written=written,
        duplicates_skipped=sum(1 for report in reports if report.status == DUPLICATE),
        quarantined=len(landing.refusals),
    )


def _unsupported(outcome: FetchOutcome) -> SymbolReport:
    """A symbol outside the four never reaches a table; the report says why."""
    try:
        check_symbol(outcome.symbol)
        reason = "not stored"
    except RejectedValueError as error:
        reason = str(error)
    return SymbolReport(
        symbol=outcome.symbol[:40],
        status=RejectedValueError.kind,
        reason=reason,
        started_at=outcome.started_at,
        latency_s=outcome.latency_s,
    )


def ingest_once(warehouse: Warehouse, config: ClientConfig) -> TickReport:
    """Fetch every configured symbol concurrently, then store the outcomes. The lake is opened
    first, so a lake that cannot be written costs no request."""
    with warehouse.writer(threads=1):
        pass
    return ingest_outcomes(warehouse, fetch_all_sync(config))
