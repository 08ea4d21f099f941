# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""Bulk ingest: many fetched bodies (an import of captured responses, a legacy warehouse) at once.

Bodies are validated together, grouped by the UTC day of their key, and each day is one
transaction: its new raw responses, their rows in the summary tables, the refused bodies in the
quarantine and one ingest-log row per body. Keys the archive already holds are duplicates (a body
whose key is archived with this very fetch, e.g. by an earlier run of the same import, is logged
``stored``), so importing the same bodies again changes no table, and an import killed part-way
keeps every day it committed: run it again to finish.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Final

import duckdb
import polars as pl

from backquant.errors import InvalidResponseError, SchemaViolationError
from backquant.validation import ParsedSummary
from storage.archive import RESPONSES, ArchiveRecord, day_bounds, fetch_json, records_frame
from storage.normalise import normalise_each, normalise_many
from storage.parsing import gc_paused, parse_summaries
from storage.quarantine import Refusal, quarantine_frame
from storage.records import (
    FetchMeta,
    IngestLogEntry,
    RejectedValueError,
    SummaryFrames,
    check_symbol,
    ingest_log_frame,
    summary_key,
)
from storage.reports import DUPLICATE, STORED
from storage.research.hourly_tier import resample_late_rows
from storage.schemas import SUMMARY_TABLES
from storage.warehouse import Warehouse
from storage.writes import insert, transaction

QUARANTINED: Final[str] = "quarantined"
"""Report status of a refused body; its ingest-log outcome is the refusal's kind."""


@dataclass(frozen=True, slots=True)
class FetchedBody:
    """One response body as fetched or captured, with how it was fetched."""

    fetch: FetchMeta
    raw: bytes


@dataclass(frozen=True, slots=True)
class BodyOutcome:
    """What happened to one imported body."""

    position: int
    """Index in the import's input."""
    status: str
    """``stored``, ``duplicate`` (its key was already archived, or came earlier in the input)
    or ``quarantined``."""
    logged_as: str
    """Ingest-log outcome: the status; ``stored`` for a body an earlier run of the same import
    archived; the refusal's kind for a quarantined body."""
    computed_at: datetime | None
    request_id: str | None
    reason: str | None = None
    field_path: str | None = None
    quarantine_id: str | None = None


@dataclass(frozen=True, slots=True)
class BulkDay:
    """One symbol-day an import touched, and the bodies that counted in it."""

    symbol: str
    day: date
    stored: int
    duplicates: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class BulkReport:
    days: tuple[BulkDay, ...]
    outcomes: tuple[BodyOutcome, ...]
    """One per input body, in input order."""
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    def as_dict(self) -> dict[str, Any]:
        days = [{**asdict(day), "day": day.day.isoformat()} for day in self.days]
        totals = {status: self.count(status) for status in (STORED, DUPLICATE, QUARANTINED)}
        return {"bodies": len(self.outcomes), **totals, "seconds": self.seconds, "days": days}


@dataclass
class _Day:
    """The bodies of one UTC day (by key; refused bodies by fetch start) and their fate."""

    accepted: list[tuple[int, datetime, ParsedSummary]]
    outcomes: list[BodyOutcome]


def _request_id(parsed: ParsedSummary | None, fetch: FetchMeta) -> str | None:
    from_body = parsed.response.meta.request_id if parsed is not None else None
    return from_body or fetch.headers.request_id


def _refused(
    position: int,
    fetch: FetchMeta,
    error: InvalidResponseError | RejectedValueError,
    parsed: ParsedSummary | None,
) -> BodyOutcome:
    """A refusal, recorded as a tick records it (storage/ingest.py)."""
    path: str | None
    if isinstance(error, RejectedValueError):
        reason, path = f"rejected before storing: {error}", error.field_path
        request_id = _request_id(parsed, fetch)
    else:
        reason = str(error)
        path = error.field_path if isinstance(error, SchemaViolationError) else None
        request_id = error.request_id or fetch.headers.request_id
    return BodyOutcome(position, QUARANTINED, error.kind, None, request_id, reason, path)


def _sort_by_day(items: Sequence[FetchedBody]) -> dict[date, _Day]:
    """Validate every body and file it under the day of its key (refusals: of its fetch)."""
    days: dict[date, _Day] = defaultdict(lambda: _Day([], []))
    parsed_all = parse_summaries([item.raw for item in items])
    for position, (item, parsed) in enumerate(zip(items, parsed_all, strict=True)):
        fallback = item.fetch.started_at.astimezone(UTC).date()
        if isinstance(parsed, InvalidResponseError):
            days[fallback].outcomes.append(_refused(position, item.fetch, parsed, None))
            continue
        try:
            key = summary_key(parsed.response, item.fetch.symbol)
        except RejectedValueError as error:
            days[fallback].outcomes.append(_refused(position, item.fetch, error, parsed))
            continue
        days[key.astimezone(UTC).date()].accepted.append((position, key, parsed))
    return days


def _archived_fetches(
    connection: duckdb.DuckDBPyConnection, day: date
) -> dict[tuple[str, datetime], str]:
    start, end = day_bounds(day)
    rows = connection.execute(
        f"SELECT symbol, computed_at, fetch_meta FROM {RESPONSES} "
        "WHERE computed_at >= ? AND computed_at < ?",
        [start, end],
    ).fetchall()
    return {(symbol, at.astimezone(UTC)): fetch for symbol, at, fetch in rows}


def _logged_attempts(
    connection: duckdb.DuckDBPyConnection, entries: list[IngestLogEntry]
) -> set[tuple[str, datetime]]:
    if not entries:
        return set()
    starts = [entry.started_at for entry in entries]
    rows = connection.execute(
        "SELECT symbol, started_at FROM ingest_log WHERE started_at BETWEEN ? AND ?",
        [min(starts), max(starts)],
    ).fetchall()
    return {(symbol, at.astimezone(UTC)) for symbol, at in rows}


_ACCEPTED: Final = True


def _normalise(
    items: Sequence[FetchedBody], new: list[tuple[int, datetime, ParsedSummary]]
) -> tuple[SummaryFrames | None, dict[int, SummaryFrames | RejectedValueError | bool]]:
    """The rows of the new bodies. Usually all are accepted: the first body of each key is
    normalised in one batch, whose frames are stored as they are (``_ACCEPTED`` marks its
    bodies). When any body is refused, each is normalised on its own, so a refused body never
    claims its key from a valid one later in the input."""
    first: dict[tuple[str, datetime], tuple[int, ParsedSummary]] = {}
    for position, key, parsed in new:
        first.setdefault((items[position].fetch.symbol, key), (position, parsed))
    try:
        batch = normalise_many(
            (parsed, items[position].fetch) for position, parsed in first.values()
        )
    except RejectedValueError:
        results = normalise_each([(parsed, items[position].fetch) for position, _, parsed in new])
        return None, dict(zip([position for position, _, _ in new], results, strict=True))
    return batch, {position: _ACCEPTED for position, _ in first.values()}


def _kept_bodies(
    connection: duckdb.DuckDBPyConnection, fetches: list[FetchMeta]
) -> dict[str, bytes]:
    """Bodies already quarantined at these fetches' instants (an earlier run of the same
    import, or another body refused for the same attempt), by quarantine id."""
    if not fetches:
        return {}
    received = [fetch.finished_at for fetch in fetches]
    rows = connection.execute(
        "SELECT quarantine_id, body FROM quarantine WHERE received_at BETWEEN ? AND ? "
        "AND symbol IN (SELECT unnest(?))",
        [min(received), max(received), sorted({fetch.symbol for fetch in fetches})],
    ).fetchall()
    return {quarantine_id: body for quarantine_id, body in rows}


def _import_day(
    warehouse: Warehouse,
    connection: duckdb.DuckDBPyConnection,
    items: Sequence[FetchedBody],
    day: date,
    filed: _Day,
) -> list[BodyOutcome]:
    archived = _archived_fetches(connection, day)
    outcomes = list(filed.outcomes)
    # Normalised before the in-input duplicate check: a refused body must not claim its key,
    # or a valid body of the same key later in the input would be dropped as its duplicate.
    new = [
        (position, key, parsed)
        for position, key, parsed in filed.accepted
        if (items[position].fetch.symbol, key) not in archived
    ]
    batch, normalised = _normalise(items, new)
    records: list[ArchiveRecord] = []
    frames: list[SummaryFrames] = []
    for position, key, parsed in filed.accepted:
        fetch = items[position].fetch
        result = normalised.get(position)
        if isinstance(result, RejectedValueError):
            outcomes.append(_refused(position, fetch, result, parsed))
            continue
        known = archived.get((fetch.symbol, key))
        if known is not None or result is None:
            same_attempt = known == fetch_json(fetch)
            reason = None if same_attempt else f"computed_at {key.isoformat()} is already archived"
            logged_as = STORED if same_attempt else DUPLICATE
            outcomes.append(
                BodyOutcome(position, DUPLICATE, logged_as, key, _request_id(parsed, fetch), reason)
            )
            continue
        archived[(fetch.symbol, key)] = fetch_json(fetch)
        records.append(ArchiveRecord(fetch.symbol, key, fetch, items[position].raw))
        if isinstance(result, SummaryFrames):
            frames.append(result)
        outcomes.append(BodyOutcome(position, STORED, STORED, key, _request_id(parsed, fetch)))
    refused = [items[o.position].fetch for o in outcomes if o.status == QUARANTINED]
    outcomes, refusals = _quarantine(items, outcomes, _kept_bodies(connection, refused))
    entries = [_log_entry(items[outcome.position].fetch, outcome) for outcome in outcomes]
    logged = _logged_attempts(connection, entries)
    entries = [entry for entry in entries if (entry.symbol, entry.started_at) not in logged]
    with transaction(connection, warehouse.config, f"the import of {day}"):
        if records:
            insert(connection, RESPONSES, records_frame(records))
            for table in SUMMARY_TABLES:
                rows = (
                    getattr(batch, table)
                    if batch
                    else pl.concat([getattr(f, table) for f in frames])
                )
                insert(connection, table, rows)
            # Rows landing in a day that already has its hourly sample re-sample it.
            keys = [(record.symbol, record.computed_at) for record in records]
            resample_late_rows(connection, keys, datetime.now(UTC))
        if refusals:
            insert(connection, "quarantine", quarantine_frame(refusals))
        if entries:
            insert(connection, "ingest_log", ingest_log_frame(_first_per_attempt(entries)))
    return outcomes


def _quarantine(
    items: Sequence[FetchedBody], outcomes: list[BodyOutcome], stored: dict[str, bytes]
) -> tuple[list[BodyOutcome], list[Refusal]]:
    """The quarantine rows to add for the refused bodies: refusals sharing an id are numbered,
    and a body already ``stored`` under its id is not added again (another body is never
    taken for it)."""
    kept: list[BodyOutcome] = []
    refusals: list[Refusal] = []
    taken: set[str] = set()
    for outcome in outcomes:
        if outcome.status != QUARANTINED:
            kept.append(outcome)
            continue
        fetch = items[outcome.position].fetch
        refusal = Refusal(
            symbol=fetch.symbol,
            received_at=fetch.finished_at,
            raw=items[outcome.position].raw,
            kind=outcome.logged_as,
            reason=outcome.reason or "",
            field_path=outcome.field_path,
            http_status=fetch.status,
            request_id=outcome.request_id,
        )
        number = 1
        while (
            refusal.quarantine_id in taken
            or stored.get(refusal.quarantine_id, refusal.raw) != refusal.raw
        ):
            number += 1
            refusal = replace(refusal, suffix=f"-{number}")
        taken.add(refusal.quarantine_id)
        if refusal.quarantine_id not in stored:
            refusals.append(refusal)
        kept.append(replace(outcome, quarantine_id=refusal.quarantine_id))
    return kept, refusals


def _log_entry(fetch: FetchMeta, outcome: BodyOutcome) -> IngestLogEntry:
    return IngestLogEntry(
        symbol=fetch.symbol,
        started_at=fetch.started_at,
        finished_at=fetch.finished_at,
        outcome=outcome.logged_as,
        reason=outcome.reason,
        http_status=fetch.status,
        request_id=outcome.request_id,
        attempts=fetch.attempts,
        computed_at=outcome.computed_at,
        quarantine_id=outcome.quarantine_id,
    )


def _first_per_attempt(entries: list[IngestLogEntry]) -> list[IngestLogEntry]:
    """One log row per fetch attempt ``(symbol, started_at)``: the first body's."""
    seen: dict[tuple[str, datetime], IngestLogEntry] = {}
    for entry in entries:
        seen.setdefault((entry.symbol, entry.started_at), entry)
    return list(seen.values())


def _report_days(items: Sequence[FetchedBody], outcomes: list[BodyOutcome]) -> tuple[BulkDay, ...]:
    counts: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for outcome in outcomes:
        fetch = items[outcome.position].fetch
        day = (outcome.computed_at or fetch.started_at).astimezone(UTC).date()
        counts[(fetch.symbol, day)][outcome.status] += 1
    return tuple(
        BulkDay(symbol, day, found[STORED], found[DUPLICATE], found[QUARANTINED])
        for (symbol, day), found in sorted(counts.items())
    )


def bulk_ingest(warehouse: Warehouse, bodies: Iterable[FetchedBody]) -> BulkReport:
    """Validate, archive and store many fetched bodies, one transaction per UTC day.

    Refused bodies are quarantined with their reason, keys already archived are counted as
    duplicates, and every body gets an ingest-log row. Raises RejectedValueError for a body
    fetched for an unsupported symbol (nothing is written)."""
    started = time.perf_counter()
    items = list(bodies)
    for symbol in sorted({item.fetch.symbol for item in items}):
        check_symbol(symbol)
    outcomes: list[BodyOutcome] = []
    # Without cyclic GC (see gc_paused): a batch of validated bodies is many small objects.
    with gc_paused():
        days = _sort_by_day(items)
        with warehouse.writer() as connection:
            for day in sorted(days):
                outcomes += _import_day(warehouse, connection, items, day, days[day])
    outcomes.sort(key=lambda outcome: outcome.position)
    return BulkReport(_report_days(items, outcomes), tuple(outcomes), time.perf_counter() - started)
