"""One symbol-day of a bulk import (storage/bulk.py), as the writer or a worker process runs it.

Validate the bodies routed to the day, sort them into refusals, duplicates of archived keys,
strays (their validated key lies in another day) and new keys, then write the day through the
rebuild's functions: the archived records and the new ones together, the pack rewritten when
something was added. Nothing here is visible before the writer commits the state.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from backquant.errors import InvalidResponseError, SchemaViolationError
from storage.schemas import FetchMeta, RejectedValueError, parse_instant, summary_key
from backquant.validation import ParsedSummary
from storage.archive import Archive, ArchiveRecord
from storage.day_jobs import DayWrites
from storage.layout import Layout, utc_day
from storage.parsing import parse_summary, prepare_symbol_day
from storage.rebuild import DayBuild, DayJob, write_symbol_day
from storage.reports import DUPLICATE, STORED

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
    """``stored`` (archived by this import), ``duplicate`` (its key was already archived, or
    came earlier in the input) or ``quarantined``."""
    logged_as: str
    """Ingest-log outcome: the status; ``stored`` for a body an interrupted run of the same
    import archived; the refusal's kind for a quarantined body."""
    computed_at: datetime | None
    request_id: str | None
    reason: str | None = None
    field_path: str | None = None
    quarantine_file: str | None = None


@dataclass(frozen=True, slots=True)
class BulkJob:
    """One symbol-day of an import: the day's job and the bodies routed to it."""

    day: DayJob
    bodies: tuple[tuple[int, FetchedBody], ...]


@dataclass(frozen=True, slots=True)
class BulkDayBuild:
    build: DayBuild
    outcomes: tuple[BodyOutcome, ...]
    strays: tuple[tuple[int, date], ...]
    """Bodies whose validated key lies in another day: (position, that day)."""


_COMPUTED_AT: Final = re.compile(rb'"computed_at"\s*:\s*"([^"]{1,64})"')


def hinted_day(raw: bytes) -> date | None:
    """The UTC day of the last ``"computed_at"`` string in the raw bytes: where the body most
    likely belongs (``meta`` comes last in BackQuant bodies). Only a routing guess."""
    at = raw.rfind(b'"computed_at"')
    match = _COMPUTED_AT.match(raw, at) if at >= 0 else None
    if match is None:
        return None
    try:
        return utc_day(parse_instant(match.group(1).decode(), "meta.computed_at"))
    except (RejectedValueError, UnicodeDecodeError):
        return None


def _request_id(parsed: ParsedSummary | None, fetch: FetchMeta) -> str | None:
    from_body = parsed.response.meta.request_id if parsed is not None else None
    return from_body or fetch.headers.request_id


def _refused(
    position: int,
    fetch: FetchMeta,
    error: InvalidResponseError | RejectedValueError,
    parsed: ParsedSummary | None,
) -> BodyOutcome:
    """A refusal, recorded as ingest records it (storage/ingest.py)."""
    path: str | None
    if isinstance(error, RejectedValueError):
        reason, path = f"rejected before storing: {error}", error.field_path
        request_id = _request_id(parsed, fetch)
    else:
        reason = str(error)
        path = error.field_path if isinstance(error, SchemaViolationError) else None
        request_id = error.request_id or fetch.headers.request_id
    return BodyOutcome(position, QUARANTINED, error.kind, None, request_id, reason, path)


def _duplicate(
    position: int, key: datetime, parsed: ParsedSummary, fetch: FetchMeta, same_attempt: bool
) -> BodyOutcome:
    reason = None if same_attempt else f"computed_at {key.isoformat()} is already archived"
    logged_as = STORED if same_attempt else DUPLICATE
    return BodyOutcome(position, DUPLICATE, logged_as, key, _request_id(parsed, fetch), reason)


Candidates = dict[datetime, list[tuple[int, FetchedBody, ParsedSummary]]]


def _sort_bodies(
    job: BulkJob, archived: list[ArchiveRecord], outcomes: list[BodyOutcome]
) -> tuple[Candidates, list[tuple[int, date]]]:
    """Validate the job's bodies: refusals and duplicates of archived keys go to ``outcomes``;
    returns the bodies of new keys (per key, in input order) and the strays."""
    symbol, day = job.day.symbol, job.day.day
    archived_fetch = {record.computed_at: record.fetch for record in archived}
    candidates: Candidates = defaultdict(list)
    strays: list[tuple[int, date]] = []
    for position, body in job.bodies:
        parsed = parse_summary(body.raw)
        if isinstance(parsed, InvalidResponseError):
            outcomes.append(_refused(position, body.fetch, parsed, None))
            continue
        try:
            key = summary_key(parsed.response, symbol)
        except RejectedValueError as error:
            outcomes.append(_refused(position, body.fetch, error, parsed))
            continue
        if utc_day(key) != day:
            strays.append((position, utc_day(key)))
        elif key in archived_fetch:
            same = archived_fetch[key] == body.fetch
            outcomes.append(_duplicate(position, key, parsed, body.fetch, same))
        else:
            candidates[key].append((position, body, parsed))
    return candidates, strays


def import_symbol_day(job: BulkJob) -> BulkDayBuild | DayWrites[BulkDayBuild]:
    """Import the bodies routed to one symbol-day (runs in a worker process or in the writer);
    the day's file writes come back as ``DayWrites`` when there are any."""
    layout = Layout(job.day.home)
    archived = Archive(layout).read_day(job.day.symbol, job.day.day)
    outcomes: list[BodyOutcome] = []
    candidates, strays = _sort_bodies(job, archived, outcomes)
    while True:
        chosen = [(key, options[0]) for key, options in sorted(candidates.items())]
        new = [
            (ArchiveRecord(job.day.symbol, key, body.fetch, body.raw), parsed)
            for key, (_, body, parsed) in chosen
        ]
        prepared = prepare_symbol_day(archived, new)
        for index, refusal in prepared.refused.items():
            key, (position, body, parsed) = chosen[index]
            outcomes.append(_refused(position, body.fetch, refusal, parsed))
            candidates[key].pop(0)
        # A refused body's key is free again: the next body with that key gets its turn.
        if not any(candidates[chosen[index][0]] for index in prepared.refused):
            break
    for key, options in candidates.items():
        for rank, (position, body, parsed) in enumerate(options):
            if rank == 0:
                request_id = _request_id(parsed, body.fetch)
                outcomes.append(BodyOutcome(position, STORED, STORED, key, request_id))
            else:
                outcomes.append(_duplicate(position, key, parsed, body.fetch, False))
    if not prepared.records and not job.day.has_log:
        build = DayBuild(job.day.symbol, job.day.day, job.day.generation, written=False)
        return BulkDayBuild(build, tuple(outcomes), tuple(strays))
    added = len(prepared.records) > len(archived)

    def write() -> BulkDayBuild:
        build = write_symbol_day(layout, job.day, prepared, rewrite_pack=added)
        return BulkDayBuild(build, tuple(outcomes), tuple(strays))

    return DayWrites(write)
