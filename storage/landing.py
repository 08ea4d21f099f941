"""What one write transaction lands: a tick's bodies, or one UTC day of an import's.

``land`` decides each keyed body's fate against the keys already archived: a body whose key is
archived, or taken by an earlier body, is a duplicate and is never normalised; the others are
normalised, a batch at a time, and stored or refused. ``Landing.write`` then inserts the
archived responses, their summary rows, the refused bodies and the ingest-log rows inside the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import duckdb

from backquant.errors import InvalidResponseError
from backquant.validation import ParsedSummary
from storage.archive import RESPONSES, ArchiveRecord, fetch_json, records_frame
from storage.normalise import normalise_batch
from storage.parsing import ParseOutcome
from storage.quarantine import Refusal, quarantine_frame
from storage.records import (
    FetchMeta,
    IngestLogEntry,
    RejectedValueError,
    SummaryFrames,
    ingest_log_frame,
    summary_key,
)
from storage.reports import DUPLICATE, STORED
from storage.schemas import SUMMARY_TABLES
from storage.writes import insert

QUARANTINED: Final[str] = "quarantined"
"""Report status of a refused body; its ingest-log outcome is the refusal's kind."""

Key = tuple[str, datetime]


@dataclass(frozen=True, slots=True)
class BodyOutcome:
    """What happened to one body."""

    position: int
    """Index in the input (of the import; of the tick's symbols)."""
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


Fate = tuple[BodyOutcome, Refusal | None]
"""A body's outcome, and its refusal when it is refused."""


@dataclass(frozen=True, slots=True)
class Body:
    """A validated body and its archive key's time (``meta.computed_at``)."""

    position: int
    fetch: FetchMeta
    raw: bytes
    parsed: ParsedSummary
    computed_at: datetime

    @property
    def key(self) -> Key:
        return self.fetch.symbol, self.computed_at


def _request_id(parsed: ParseOutcome, fetch: FetchMeta) -> str | None:
    if isinstance(parsed, InvalidResponseError):
        return parsed.request_id or fetch.headers.request_id
    return parsed.response.meta.request_id or fetch.headers.request_id


def _refused(
    position: int,
    fetch: FetchMeta,
    raw: bytes,
    error: InvalidResponseError | RejectedValueError,
    parsed: ParseOutcome,
) -> Fate:
    request_id = _request_id(parsed, fetch)
    r = Refusal.of(fetch.symbol, fetch.finished_at, raw, error, fetch.status, request_id)
    return BodyOutcome(
        position, QUARANTINED, r.kind, None, r.request_id, r.reason, r.field_path, r.quarantine_id
    ), r


def keyed(position: int, fetch: FetchMeta, raw: bytes, parsed: ParseOutcome) -> Body | Fate:
    """The body with its key, or its refusal (invalid, or not keyable for ``fetch.symbol``)."""
    if isinstance(parsed, InvalidResponseError):
        return _refused(position, fetch, raw, parsed, parsed)
    try:
        return Body(position, fetch, raw, parsed, summary_key(parsed.response, fetch.symbol))
    except RejectedValueError as error:
        return _refused(position, fetch, raw, error, parsed)


@dataclass
class Landing:
    """The rows one transaction writes."""

    records: list[ArchiveRecord] = field(default_factory=list)
    frames: list[SummaryFrames] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    log: list[IngestLogEntry] = field(default_factory=list)
    as_published: bool = False
    """Store derived values as they came (a tick: ``storage.derived.stored_arrow``)."""

    def write(self, lake: duckdb.DuckDBPyConnection) -> dict[str, int]:
        """Insert everything, inside the caller's transaction; returns the rows written to each
        summary table and the ingest log."""
        written = dict.fromkeys((*SUMMARY_TABLES, "ingest_log"), 0)
        if self.records:
            insert(lake, RESPONSES, records_frame(self.records))
            for table, frame in SummaryFrames.concat(self.frames).as_tables().items():
                written[table] = insert(lake, table, frame, as_published=self.as_published)
        if self.refusals:
            insert(lake, "quarantine", quarantine_frame(self.refusals))
        if self.log:
            written["ingest_log"] = insert(lake, "ingest_log", ingest_log_frame(self.log))
        return written


def land(
    bodies: Sequence[Body | Fate], archived: dict[Key, str | None], landing: Landing
) -> list[Fate]:
    """Each body's fate, in input order (a refusal passes through); stored bodies join
    ``landing`` and ``archived``.

    ``archived`` maps each key already archived to its fetch (``fetch_json``; None when not
    read, and then never the same attempt). A duplicate whose fetch is the archived one (an
    earlier run of the same import) is logged ``stored``."""
    new = [body for body in bodies if isinstance(body, Body) and body.key not in archived]
    errors = _normalise_new(new, landing)
    fates: list[Fate] = []
    for body in bodies:
        if not isinstance(body, Body):
            fates.append(body)
        elif body.position in errors:
            error = errors[body.position]
            fates.append(_refused(body.position, body.fetch, body.raw, error, body.parsed))
        else:
            fates.append((_kept(body, archived, landing), None))
    return fates


def _kept(body: Body, archived: dict[Key, str | None], landing: Landing) -> BodyOutcome:
    """An accepted body: stored under a new key, or a duplicate."""
    at, request_id = body.computed_at, _request_id(body.parsed, body.fetch)
    if body.key not in archived:
        archived[body.key] = fetch_json(body.fetch)
        landing.records.append(ArchiveRecord(*body.key, body.fetch, body.raw))
        return BodyOutcome(body.position, STORED, STORED, at, request_id)
    if archived[body.key] == fetch_json(body.fetch):
        return BodyOutcome(body.position, DUPLICATE, STORED, at, request_id)
    reason = f"computed_at {at.isoformat()} is already archived"
    return BodyOutcome(body.position, DUPLICATE, DUPLICATE, at, request_id, reason)


def _normalise_new(
    bodies: list[Body], landing: Landing
) -> dict[int, InvalidResponseError | RejectedValueError]:
    """Add to ``landing`` the rows of the first accepted body of each key; returns the refusal
    of each body tried before it, by position. Each batch holds the first untried body of each
    key: usually one batch; a refused body hands its key to the next body of that key."""
    errors: dict[int, InvalidResponseError | RejectedValueError] = {}
    while bodies:
        firsts: dict[Key, Body] = {}
        for body in bodies:
            firsts.setdefault(body.key, body)
        tried = list(firsts.values())
        frames, refused = normalise_batch([(body.parsed, body.fetch) for body in tried])
        landing.frames.append(frames)
        errors.update({tried[index].position: error for index, error in refused.items()})
        bodies = [
            b for b in bodies if b.position not in errors and firsts[b.key].position in errors
        ]
    return errors
