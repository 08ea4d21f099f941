"""One ingest tick: one transaction for everything the tick learned.

Per symbol: the body is checked (unsafe or absurd values are refused and quarantined with the
reason), its key ``(symbol, computed_at)`` is looked up in the archive (a key already archived
is a duplicate: logged, not stored), and an accepted new body contributes its raw response to
``responses`` and its rows to ``snapshots``, ``expiries`` and ``venue_oi``. Every attempt gets
an ``ingest_log`` row. All of it commits in one DuckLake transaction: a reader sees the whole
tick or none of it, and a tick killed before its commit leaves nothing behind (the next tick
fetches afresh; the lost minute shows in ``ingest_gaps``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import polars as pl

from backquant.client import FetchOutcome, FetchResult, fetch_all_sync
from backquant.config import ClientConfig
from backquant.errors import InvalidResponseError, SchemaViolationError
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.archive import RESPONSES, ArchiveRecord, archived_keys, records_frame
from storage.normalise import normalise_each
from storage.quarantine import Refusal, quarantine_frame
from storage.records import (
    FetchMeta,
    IngestLogEntry,
    RejectedValueError,
    SummaryFrames,
    check_symbol,
    ingest_log_frame,
)
from storage.reports import DUPLICATE, STORED, SymbolReport, TickReport
from storage.schemas import SUMMARY_TABLES
from storage.warehouse import Warehouse
from storage.writes import insert, single_threaded, transaction

QUARANTINED_KIND = RejectedValueError.kind


@dataclass
class _TickRows:
    """What the tick will commit, gathered symbol by symbol."""

    records: list[ArchiveRecord] = field(default_factory=list)
    frames: list[SummaryFrames] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    log: list[IngestLogEntry] = field(default_factory=list)


def fetch_meta(symbol: str, result: FetchResult) -> FetchMeta:
    return FetchMeta(
        symbol=symbol,
        status=result.status,
        started_at=result.started_at,
        finished_at=result.finished_at,
        attempts=result.attempts,
        headers=result.headers,
    )


def _normalise_tick(outcomes: list[FetchOutcome]) -> dict[str, SummaryFrames | RejectedValueError]:
    """The frames (or refusal) of every successful fetch, normalised in one batch."""
    fetched = [
        (outcome.symbol, outcome.result) for outcome in outcomes if outcome.result is not None
    ]
    results = normalise_each([(r.parsed, fetch_meta(s, r)) for s, r in fetched])
    return {symbol: result for (symbol, _), result in zip(fetched, results, strict=True)}


def _stored_report(outcome: FetchOutcome, result: FetchResult) -> SymbolReport:
    meta = result.response.meta
    return SymbolReport(
        symbol=outcome.symbol,
        status=STORED,
        started_at=outcome.started_at,
        latency_s=result.latency_s,
        http_status=result.status,
        request_id=meta.request_id or result.headers.request_id,
        attempts=result.attempts,
        drift=result.parsed.drift,
        warnings=result.parsed.warnings,
        freshness_seconds=meta.freshness_seconds,
        expiry_count=len(result.response.data.expiries),
        spot=meta.spot_price,
    )


def _failed(rows: _TickRows, outcome: FetchOutcome) -> SymbolReport:
    error = outcome.error
    assert error is not None
    quarantine_id = None
    if isinstance(error, InvalidResponseError):
        refusal = Refusal(
            symbol=outcome.symbol,
            received_at=outcome.finished_at,
            raw=error.raw,
            kind=error.kind,
            reason=str(error),
            field_path=error.field_path if isinstance(error, SchemaViolationError) else None,
            http_status=error.status,
            request_id=error.request_id,
        )
        rows.refusals.append(refusal)
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


def _succeeded(
    rows: _TickRows,
    outcome: FetchOutcome,
    result: FetchResult,
    normalised: SummaryFrames | RejectedValueError,
    archived: set[tuple[str, datetime]],
) -> SymbolReport:
    symbol = outcome.symbol
    base = _stored_report(outcome, result)
    if isinstance(normalised, RejectedValueError):
        reason = f"rejected before storing: {normalised}"
        refusal = Refusal(
            symbol=symbol,
            received_at=result.finished_at,
            raw=result.raw,
            kind=normalised.kind,
            reason=reason,
            field_path=normalised.field_path,
            http_status=result.status,
            request_id=base.request_id,
        )
        rows.refusals.append(refusal)
        return replace(
            base, status=normalised.kind, reason=reason, quarantine_id=refusal.quarantine_id
        )
    computed_at = normalised.snapshots.item(0, "computed_at")
    if (symbol, computed_at) in archived:
        return replace(
            base,
            status=DUPLICATE,
            computed_at=computed_at,
            reason=f"computed_at {computed_at.isoformat()} is already archived; "
            "BackQuant had not refreshed the summary yet",
        )
    archived.add((symbol, computed_at))
    rows.records.append(ArchiveRecord(symbol, computed_at, fetch_meta(symbol, result), result.raw))
    rows.frames.append(normalised)
    return replace(base, computed_at=computed_at)


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


def _report(
    rows: _TickRows,
    outcome: FetchOutcome,
    normalised: Mapping[str, SummaryFrames | RejectedValueError],
    archived: set[tuple[str, datetime]],
) -> SymbolReport:
    if outcome.result is None:
        return _failed(rows, outcome)
    return _succeeded(rows, outcome, outcome.result, normalised[outcome.symbol], archived)


def _keys(
    outcomes: list[FetchOutcome], normalised: Mapping[str, SummaryFrames | RejectedValueError]
) -> list[tuple[str, datetime]]:
    return [
        (outcome.symbol, frames.snapshots.item(0, "computed_at"))
        for outcome in outcomes
        if isinstance(frames := normalised.get(outcome.symbol), SummaryFrames)
    ]


def ingest_outcomes(warehouse: Warehouse, outcomes: Mapping[str, FetchOutcome]) -> TickReport:
    """Store one tick's fetch outcomes in one transaction; returns what happened to each
    symbol. Raises a ``StorageError`` (nothing committed) when the lake cannot be written."""
    started_at = datetime.now(UTC)
    ordered = [outcome for _, outcome in sorted(outcomes.items())]
    unsupported = [o for o in ordered if o.symbol not in SUPPORTED_SYMBOLS]
    ordered = [o for o in ordered if o.symbol in SUPPORTED_SYMBOLS]
    normalised = _normalise_tick(ordered)
    rows = _TickRows()
    written = dict.fromkeys((*SUMMARY_TABLES, "ingest_log"), 0)
    # The duplicate check reads in the tick's own transaction: one catalog snapshot for the
    # read and the writes, and no other writer can slip a key in between.
    with (
        warehouse.writer() as connection,
        single_threaded(connection),
        transaction(connection, warehouse.config, "the tick") as lake,
    ):
        archived = archived_keys(lake, _keys(ordered, normalised))
        reports = [_report(rows, outcome, normalised, archived) for outcome in ordered]
        rows.log = [_log_entry(o, r) for o, r in zip(ordered, reports, strict=True)]
        if rows.records:
            insert(lake, RESPONSES, records_frame(rows.records))
            for table in SUMMARY_TABLES:
                frame = pl.concat([getattr(frames, table) for frames in rows.frames])
                written[table] = insert(lake, table, frame)
        if rows.refusals:
            insert(lake, "quarantine", quarantine_frame(rows.refusals))
        if rows.log:
            written["ingest_log"] = insert(lake, "ingest_log", ingest_log_frame(rows.log))
    reports.extend(_unsupported(outcome) for outcome in unsupported)
    return TickReport(
        started_at=started_at,
        finished_at=datetime.now(UTC),
        symbols=tuple(reports),
        rows_written=written,
        duplicates_skipped=sum(1 for report in reports if report.status == DUPLICATE),
        quarantined=len(rows.refusals),
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
        status=QUARANTINED_KIND,
        reason=reason,
        started_at=outcome.started_at,
        latency_s=outcome.latency_s,
    )


def ingest_once(warehouse: Warehouse, config: ClientConfig) -> TickReport:
    """Fetch every configured symbol concurrently, then store the outcomes. The lake is opened
    first, so a lake that cannot be written costs no request."""
    with warehouse.writer():
        pass
    return ingest_outcomes(warehouse, fetch_all_sync(config))
