# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""Bulk ingest: many fetched bodies (an import of captured responses, a legacy warehouse) at once.

Bodies are validated together, grouped by the UTC day of their key, and each day is one
transaction that lands them as a tick lands its own (``storage.landing``): its new raw
responses, their rows in the summary tables, the refused bodies in the quarantine and one
ingest-log row per fetch attempt. Keys the archive already holds are duplicates (a body whose
key is archived with this very fetch, e.g. by an earlier run of the same import, is logged
``stored``), so importing the same bodies again changes no table, and an import killed part-way
keeps every day it committed: run it again to finish.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from storage.archive import RESPONSES, day_bounds
from storage.landing import QUARANTINED, Body, BodyOutcome, Fate, Landing, keyed, land
from storage.parsing import gc_paused, parse_summaries
from storage.quarantine import Refusal
from storage.records import FetchMeta, IngestLogEntry, check_symbol
from storage.reports import DUPLICATE, STORED
from storage.research.hourly_tier import resample_late_rows
from storage.warehouse import Warehouse
from storage.writes import transaction


@dataclass(frozen=True, slots=True)
class FetchedBody:
    """One response body as fetched or captured, with how it was fetched."""

    fetch: FetchMeta
    raw: bytes


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


def _sort_by_day(items: Sequence[FetchedBody]) -> dict[date, list[Body | Fate]]:
    """Validate every body and file it under the day of its key (refusals: of its fetch)."""
    days: dict[date, list[Body | Fate]] = defaultdict(list)
    parsed_all = parse_summaries([item.raw for item in items])
    for position, (item, parsed) in enumerate(zip(items, parsed_all, strict=True)):
        body = keyed(position, item.fetch, item.raw, parsed)
        at = body.computed_at if isinstance(body, Body) else item.fetch.started_at
        days[at.astimezone(UTC).date()].append(body)
    return days


def _archived_fetches(
    connection: duckdb.DuckDBPyConnection, day: date
) -> dict[tuple[str, datetime], str | None]:
    start, end = day_bounds(day)
    rows = connection.execute(
        f"SELECT symbol, computed_at, fetch_meta FROM {RESPONSES} "
        "WHERE computed_at >= ? AND computed_at < ?",
        [start, end],
    ).fetchall()
    return {(symbol, at.astimezone(UTC)): fetch for symbol, at, fetch in rows}


def _kept_bodies(
    connection: duckdb.DuckDBPyConnection, refusals: list[Refusal]
) -> dict[str, bytes]:
    """Bodies already quarantined at these refusals' instants (an earlier run of the same
    import, or another body refused for the same attempt), by quarantine id."""
    if not refusals:
        return {}
    received = [refusal.received_at for refusal in refusals]
    rows = connection.execute(
        "SELECT quarantine_id, body FROM quarantine WHERE received_at BETWEEN ? AND ? "
        "AND symbol IN (SELECT unnest(?))",
        [min(received), max(received), sorted({refusal.symbol for refusal in refusals})],
    ).fetchall()
    return {quarantine_id: body for quarantine_id, body in rows}


def _import_day(
    warehouse: Warehouse,
    connection: duckdb.DuckDBPyConnection,
    items: Sequence[FetchedBody],
    day: date,
    bodies: list[Body | Fate],
) -> list[BodyOutcome]:
    landing = Landing()
    fates = land(bodies, _archived_fetches(connection, day), landing)
    kept = _kept_bodies(connection, [refusal for _, refusal in fates if refusal is not None])
    outcomes = _quarantine(landing, fates, kept)
    landing.log, superseded = _new_attempts(
        connection, [_log_entry(items[o.position].fetch, o) for o in outcomes]
    )
    with transaction(connection, warehouse.config, f"the import of {day}"):
        for symbol, started_at in superseded:
            connection.execute(
                "DELETE FROM ingest_log WHERE symbol = ? AND started_at = ?", [symbol, started_at]
            )
        landing.write(connection)
        # Rows landing in a day that already has its hourly sample re-sample it.
        keys = [(record.symbol, record.computed_at) for record in landing.records]
        resample_late_rows(connection, keys, datetime.now(UTC))
    return outcomes


def _quarantine(landing: Landing, fates: list[Fate], stored: dict[str, bytes]) -> list[BodyOutcome]:
    """The outcomes, each refusal added to ``landing``: refusals sharing an id are numbered, and
    a body already ``stored`` under its id is not added again (another body is never taken for
    it)."""
    outcomes: list[BodyOutcome] = []
    taken: set[str] = set()
    for outcome, refusal in fates:
        if refusal is not None:
            number = 1
            while (
                refusal.quarantine_id in taken
                or stored.get(refusal.quarantine_id, refusal.raw) != refusal.raw
            ):
                number += 1
                refusal = replace(refusal, suffix=f"-{number}")
            taken.add(refusal.quarantine_id)
            if refusal.quarantine_id not in stored:
                landing.refusals.append(refusal)
            outcome = replace(outcome, quarantine_id=refusal.quarantine_id)
        outcomes.append(outcome)
    return outcomes


def _new_attempts(
    connection: duckdb.DuckDBPyConnection, entries: list[IngestLogEntry]
) -> tuple[list[IngestLogEntry], list[tuple[str, datetime]]]:
    """One log row per fetch attempt ``(symbol, started_at)`` not logged yet (its first body's),
    and the attempts whose logged refusal a stored body now supersedes (a captured body fixed
    and imported again): their rows are replaced, so the minute is no longer a gap."""
    first: dict[tuple[str, datetime], IngestLogEntry] = {}
    for entry in entries:
        first.setdefault((entry.symbol, entry.started_at), entry)
    if not first:
        return [], []
    starts = [started_at for _, started_at in first]
    rows = connection.execute(
        "SELECT symbol, started_at, outcome FROM ingest_log WHERE started_at BETWEEN ? AND ?",
        [min(starts), max(starts)],
    ).fetchall()
    logged = {(symbol, at.astimezone(UTC)): outcome for symbol, at, outcome in rows}
    superseded = [
        attempt
        for attempt, entry in first.items()
        if entry.outcome == STORED and logged.get(attempt, STORED) != STORED
    ]
    fresh = [entry for attempt, entry in first.items() if attempt not in logged]
    return fresh + [first[attempt] for attempt in superseded], superseded


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
