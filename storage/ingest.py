"""One ingest tick: archive first, then normalise into hot files, then log every attempt.

Per symbol, in this order: check the body (unsafe or absurd values → quarantine), archive it
(the commit point: an archived key is never stored again), write the hot files with snapshots
last, point the symbol's latest file at it, then write the attempt's ingest-log row. Every
symbol is handled on its own, so one symbol's failure never touches the others. The whole tick
holds the writer lock and ends with a catalog refresh. Before its first archive write a tick
journals the log rows of what it archives (``storage.tick_journal``), so a tick killed before
its commit is completed by the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl

from backquant.client import FetchOutcome, FetchResult, fetch_all_sync
from backquant.config import ClientConfig
from backquant.errors import InvalidResponseError, SchemaViolationError
from backquant.frames import (
    FetchMeta,
    IngestLogEntry,
    RejectedValueError,
    SummaryFrames,
    check_symbol,
    ingest_log_frame,
)
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.archive import ArchiveCorruptError, ArchiveRecord
from storage.catalog import refresh_catalog
from storage.normalise import normalise_each
from storage.reports import DUPLICATE, STORED, SymbolReport, TickReport
from storage.rollup import RolledHour, delete_rolled_ticks, roll_up
from storage.state import TierState, load_state, save_state
from storage.tick_journal import clear_journal, read_journal, write_journal
from storage.tick_writes import TickWrites, archived_rows, complete_interrupted
from storage.tiers import (
    delete_expired_hot,
    update_latest,
    write_hot_tick,
)
from storage.warehouse import Warehouse

STORAGE_ERROR = "storage_error"


class TickStorageError(OSError):
    """The tick's hot files could not be committed; the archive still holds every response."""


QUARANTINED_KIND = RejectedValueError.kind


def _failed(tick: TickWrites, outcome: FetchOutcome) -> SymbolReport:
    error = outcome.error
    assert error is not None
    quarantine_file = None
    if isinstance(error, InvalidResponseError):
        field_path = error.field_path if isinstance(error, SchemaViolationError) else None
        quarantine_file = tick.quarantine(
            outcome.symbol,
            outcome.finished_at,
            error.raw,
            error.kind,
            str(error),
            field_path,
            error.status,
            error.request_id,
        )
    return SymbolReport(
        symbol=outcome.symbol,
        status=error.kind,
        started_at=outcome.started_at,
        latency_s=outcome.latency_s,
        http_status=error.status,
        request_id=error.request_id,
        attempts=error.attempts,
        reason=str(error),
        quarantine_file=quarantine_file,
    )


def _fetch_meta(symbol: str, result: FetchResult) -> FetchMeta:
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
    results = normalise_each([(r.parsed, _fetch_meta(s, r)) for s, r in fetched])
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


def _to_archive(
    tick: TickWrites,
    outcomes: list[FetchOutcome],
    normalised: Mapping[str, SummaryFrames | RejectedValueError],
) -> dict[str, IngestLogEntry]:
    """By symbol, the log row of each response this tick will archive (accepted, its key not
    archived yet): what the journal records before the first archive write."""
    planned = {}
    for outcome in outcomes:
        frames = normalised.get(outcome.symbol)
        if outcome.result is None or not isinstance(frames, SummaryFrames):
            continue
        if outcome.symbol not in SUPPORTED_SYMBOLS:
            continue
        computed_at = frames.snapshots.item(0, "computed_at")
        if not tick.warehouse.archive.contains(outcome.symbol, computed_at):
            report = replace(_stored_report(outcome, outcome.result), computed_at=computed_at)
            planned[outcome.symbol] = _log_entry(outcome, report)
    return planned


def _succeeded(
    tick: TickWrites,
    outcome: FetchOutcome,
    result: FetchResult,
    normalised: SummaryFrames | RejectedValueError,
    archiving: bool,
) -> SymbolReport:
    symbol = outcome.symbol
    fetch = _fetch_meta(symbol, result)
    base = _stored_report(outcome, result)
    if isinstance(normalised, RejectedValueError):
        error = normalised
        reason = f"rejected before storing: {error}"
        path = tick.quarantine(
            symbol,
            result.finished_at,
            result.raw,
            error.kind,
            reason,
            error.field_path,
            result.status,
            base.request_id,
        )
        return replace(base, status=error.kind, reason=reason, quarantine_file=path)
    frames = normalised
    computed_at = frames.snapshots.item(0, "computed_at")
    if not archiving:
        tick.duplicates += 1
        tick.complete_snapshot(symbol, computed_at)
        return replace(
            base,
            status=DUPLICATE,
            computed_at=computed_at,
            reason=f"computed_at {computed_at.isoformat()} is already archived; "
            "BackQuant had not refreshed the summary yet",
        )
    tick.warehouse.archive.write(ArchiveRecord(symbol, computed_at, fetch, result.raw))
    tick.note_write(symbol, "summary", computed_at)
    write_hot_tick(tick.layout, symbol, computed_at, frames, tick.batch)
    for table, frame in frames.as_tables().items():
        tick.rows[table] += frame.height
    update_latest(tick.layout, symbol, computed_at, frames.expiries, tick.batch)
    return replace(base, computed_at=computed_at)


def _ingest_symbol(
    tick: TickWrites,
    outcome: FetchOutcome,
    normalised: Mapping[str, SummaryFrames | RejectedValueError],
    planned: Mapping[str, IngestLogEntry],
) -> SymbolReport:
    try:
        check_symbol(outcome.symbol)
    except RejectedValueError as error:
        return SymbolReport(
            symbol=outcome.symbol[:40],
            status=error.kind,
            reason=str(error),
            started_at=outcome.started_at,
            latency_s=outcome.latency_s,
        )
    staged = len(tick.batch)
    try:
        if outcome.result is None:
            report = _failed(tick, outcome)
        else:
            report = _succeeded(
                tick,
                outcome,
                outcome.result,
                normalised[outcome.symbol],
                archiving=outcome.symbol in planned,
            )
    except (OSError, ArchiveCorruptError) as error:
        tick.batch.discard(since=staged)
        report = SymbolReport(
            symbol=outcome.symbol,
            status=STORAGE_ERROR,
            started_at=outcome.started_at,
            latency_s=outcome.latency_s,
            reason=f"could not store the response: {error}; check disk space and permissions "
            f"under {tick.layout.home}",
        )
    _log_attempt(tick, outcome, report)
    return report


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
        quarantine_file=report.quarantine_file,
    )


def _log_attempt(tick: TickWrites, outcome: FetchOutcome, report: SymbolReport) -> None:
    tick.stage_log_row(outcome.symbol, ingest_log_frame([_log_entry(outcome, report)]))


def ingest_outcomes(warehouse: Warehouse, outcomes: Mapping[str, FetchOutcome]) -> TickReport:
    """Store one tick's fetch outcomes; returns what happened to each symbol."""
    started_at = datetime.now(UTC)
    with warehouse.lock():
        layout = warehouse.layout
        tick = TickWrites(warehouse, load_state(layout))
        try:
            # Only the archived rows stay journaled until this tick commits.
            journal = read_journal(layout)
            if journal is not None:
                journal = archived_rows(tick, journal)
            recovered = () if journal is None else complete_interrupted(tick, journal)
            ordered = [outcome for _, outcome in sorted(outcomes.items())]
            normalised = _normalise_tick(ordered)
            planned = _to_archive(tick, ordered, normalised)
            if planned:
                rows = ingest_log_frame(planned.values())
                write_journal(layout, rows if journal is None else pl.concat([journal, rows]))
            reports = tuple(
                _ingest_symbol(tick, outcome, normalised, planned) for outcome in ordered
            )
            # Dirty marks go first: a crash after the commit must leave them in place.
            if tick.state_changed:
                save_state(layout, tick.state)
            tick.batch.commit()
            if journal is not None or planned:
                clear_journal(layout)
        except OSError as error:
            tick.batch.discard()
            raise TickStorageError(
                f"could not write this tick's hot files under {warehouse.home} ({error}). "
                "Every stored response is already in the archive: free disk space or fix "
                "permissions, and the next tick makes them visible and logs them (its report "
                "lists them as recovered)"
            ) from error
        rolled, rollup_error = _roll_up(warehouse, tick.state)
        refresh_catalog(warehouse.layout, tick.state)
        now, grace_s = datetime.now(UTC), warehouse.hot_grace.total_seconds()
        delete_expired_hot(warehouse.layout, tick.state, now, grace_s)
        delete_rolled_ticks(warehouse.layout, tick.state, now, grace_s)
    return TickReport(
        started_at=started_at,
        finished_at=datetime.now(UTC),
        symbols=reports,
        rows_written=tick.rows,
        duplicates_skipped=tick.duplicates,
        quarantined=tick.quarantined,
        dirty_marked=tuple(tick.dirty),
        hours_rolled=len(rolled),
        rollup_error=rollup_error,
        recovered=recovered,
    )


def _roll_up(warehouse: Warehouse, state: TierState) -> tuple[list[RolledHour], str | None]:
    """Roll up finished hours; a failure here costs no data (the tick is committed, the hour
    keeps being read from its tick files) and is retried by the next tick."""
    try:
        rolled = roll_up(warehouse.layout, state)
    except (OSError, pl.exceptions.PolarsError) as error:
        return [], (
            f"the hourly roll-up failed ({type(error).__name__}: {error}); the tick is stored "
            f"and the next tick retries. If it keeps failing, check disk space under "
            f"{warehouse.home}, or rebuild the affected day (`termstore rebuild`)"
        )
    if rolled:
        save_state(warehouse.layout, state)
    return rolled, None


def ingest_once(warehouse: Warehouse, config: ClientConfig) -> TickReport:
    """Fetch every configured symbol concurrently, then store the outcomes."""
    return ingest_outcomes(warehouse, fetch_all_sync(config))
