"""Bulk ingest: many fetched bodies (a backfill, an import of captured responses) in one pass.

The live path costs a durable file per body and a catalog refresh per tick; this one writes each
symbol-day once. Per symbol-day, in a worker process when the batch is big enough: validate every
body, skip keys the archive already holds (duplicates), merge the rest with the day's archived
records (pack and loose), write the cold files exactly as a rebuild does (storage/rebuild.py,
same functions) and the new archive pack. Then the writer, holding the lock: quarantine the
refused bodies with their reasons, write each day's ingest-log file with one row per imported
body, and commit every day with one state save, then one catalog refresh.

Invariants, as for ingest and rebuild: the archive pack is committed before the state marks the
day cold; the state file is the single commit point (a crash leaves the old visibility or the new
one); importing the same bodies again changes no table (every body is then a duplicate).

Routing: a body belongs to the day of its ``meta.computed_at``, which is only certain after
validation. Bodies are sent to the day their raw bytes name (a cheap look at the last
``"computed_at"``); a body whose validated key says otherwise comes back and is imported in a
second round, so a wrong guess costs time, never correctness.

The ingest log describes fetch attempts, keyed by ``(symbol, fetch started_at)``, in the day of
``started_at``. A body whose key is already archived with this very fetch (an earlier run of the
same import died before its commit) is logged ``stored``: that attempt's body is archived.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import polars as pl

from backquant.errors import InvalidResponseError, SchemaViolationError
from backquant.frames import (
    FetchMeta,
    IngestLogEntry,
    RejectedValueError,
    check_symbol,
    ingest_log_frame,
    parse_instant,
    summary_key,
)
from backquant.validation import ParsedSummary
from storage.archive import Archive, ArchiveRecord
from storage.layout import Layout, utc_day
from storage.parsing import parse_summary, prepare_symbol_day
from storage.quarantine import quarantine_body
from storage.rebuild import (
    DayBuild,
    DayJob,
    _day_log,
    commit_days,
    finish_writes,
    merge_log_rows,
    new_generation,
    remove_stale_temps,
    run_day_jobs,
    write_symbol_day,
)
from storage.reports import DUPLICATE, STORED
from storage.state import TierState, load_state
from storage.warehouse import Warehouse

QUARANTINED: Final[str] = "quarantined"
"""Report status of a refused body; its ingest-log outcome is the refusal's kind."""
Pair = tuple[str, date]


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


@dataclass(frozen=True, slots=True)
class BulkDay:
    """One symbol-day an import wrote, and the bodies that counted in it."""

    symbol: str
    day: date
    stored: int
    duplicates: int
    quarantined: int
    responses: int
    """Archived responses the day holds now."""
    rows_written: dict[str, int]
    rejected: tuple[tuple[str, str], ...]
    """Bodies archived before this import that today's code refuses (they stay archived)."""


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


def import_symbol_day(job: BulkJob) -> BulkDayBuild:
    """Import the bodies routed to one symbol-day (runs in a worker process or in the writer)."""
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
    else:
        added = len(prepared.records) > len(archived)
        build = write_symbol_day(layout, job.day, prepared, rewrite_pack=added)
    return BulkDayBuild(build, tuple(outcomes), tuple(strays))


def _quarantine(
    layout: Layout, items: list[FetchedBody], outcomes: list[BodyOutcome]
) -> list[BodyOutcome]:
    """Keep every refused body with its reason. Refused bodies of one symbol with the same fetch
    end and kind would share a quarantine name, so one with other bytes is filed a microsecond
    later rather than overwrite another."""
    taken: dict[tuple[str, datetime, str], bytes] = {}
    kept: list[BodyOutcome] = []
    for outcome in outcomes:
        if outcome.status != QUARANTINED:
            kept.append(outcome)
            continue
        body = items[outcome.position]
        received_at = body.fetch.finished_at
        while taken.setdefault((body.fetch.symbol, received_at, outcome.logged_as), body.raw) != (
            body.raw
        ):
            received_at += timedelta(microseconds=1)
        path = quarantine_body(
            layout,
            symbol=body.fetch.symbol,
            received_at=received_at,
            raw=body.raw,
            kind=outcome.logged_as,
            reason=outcome.reason or "",
            field_path=outcome.field_path,
            http_status=body.fetch.status,
            request_id=outcome.request_id,
        )
        kept.append(replace(outcome, quarantine_file=str(path)))
    return kept


def _log_rows(items: list[FetchedBody], outcomes: list[BodyOutcome]) -> dict[Pair, pl.DataFrame]:
    """One ingest-log row per body, grouped by the symbol-day of its fetch start."""
    entries: dict[Pair, list[IngestLogEntry]] = defaultdict(list)
    for outcome in outcomes:
        fetch = items[outcome.position].fetch
        entries[(fetch.symbol, utc_day(fetch.started_at))].append(
            IngestLogEntry(
                symbol=fetch.symbol,
                started_at=fetch.started_at,
                finished_at=fetch.finished_at,
                outcome=outcome.logged_as,
                reason=outcome.reason,
                http_status=fetch.status,
                request_id=outcome.request_id,
                attempts=fetch.attempts,
                computed_at=outcome.computed_at,
                quarantine_file=outcome.quarantine_file,
            )
        )
    return {pair: ingest_log_frame(rows) for pair, rows in entries.items()}


def _import_round(
    warehouse: Warehouse,
    state: TierState,
    items: list[FetchedBody],
    routes: dict[Pair, list[int]],
    workers: int | None,
) -> tuple[list[BodyOutcome], list[DayBuild], dict[Pair, list[int]]]:
    """Import the routed bodies and commit them: their outcomes, the day builds (with the
    ingest-log row count) and the strays, routed to their validated days for another round."""
    layout = warehouse.layout
    committed_at = datetime.now(UTC)
    log_days = {
        (items[position].fetch.symbol, utc_day(items[position].fetch.started_at))
        for positions in routes.values()
        for position in positions
    }
    pairs = sorted(set(routes) | log_days)
    logs = {(symbol, day): _day_log(layout, state, symbol, day) for symbol, day in pairs}
    jobs = [
        BulkJob(
            DayJob(
                home=layout.home,
                symbol=symbol,
                day=day,
                generation=new_generation(state, symbol, day, committed_at),
                has_log=logs[(symbol, day)].height > 0 or (symbol, day) in log_days,
            ),
            tuple((position, items[position]) for position in routes.get((symbol, day), ())),
        )
        for symbol, day in pairs
    ]
    remove_stale_temps(layout, pairs)
    work = sum(
        len(job.bodies) + warehouse.archive.count_day(*job_pair)
        for job, job_pair in zip(jobs, pairs, strict=True)
    )
    results = run_day_jobs(import_symbol_day, jobs, workers, work=work)
    # Input order: of two bodies claiming one fetch attempt, the first one's log row counts.
    done = sorted((o for result in results for o in result.outcomes), key=lambda o: o.position)
    outcomes = _quarantine(layout, items, done)
    added = _log_rows(items, outcomes)
    for pair, rows in added.items():
        logs[pair] = merge_log_rows([logs[pair], rows])
    builds = [
        replace(
            result.build,
            rows_written={**result.build.rows_written, "ingest_log": logs[pair].height},
        )
        for result, pair in zip(results, pairs, strict=True)
    ]
    commit_days(warehouse, state, builds, logs, committed_at)
    strays: dict[Pair, list[int]] = defaultdict(list)
    for result in results:
        for position, day in result.strays:
            strays[(items[position].fetch.symbol, day)].append(position)
    return outcomes, builds, strays


def _report_days(
    items: list[FetchedBody], outcomes: list[BodyOutcome], builds: dict[Pair, DayBuild]
) -> tuple[BulkDay, ...]:
    """Each written day once (its last round), with the bodies that count in it: by key, or
    by fetch start for a body without a readable key."""
    counts: dict[Pair, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for outcome in outcomes:
        fetch = items[outcome.position].fetch
        day = utc_day(outcome.computed_at or fetch.started_at)
        counts[(fetch.symbol, day)][outcome.status] += 1
    return tuple(
        BulkDay(
            symbol=symbol,
            day=day,
            stored=counts[(symbol, day)][STORED],
            duplicates=counts[(symbol, day)][DUPLICATE],
            quarantined=counts[(symbol, day)][QUARANTINED],
            responses=build.responses,
            rows_written=build.rows_written,
            rejected=build.rejected,
        )
        for (symbol, day), build in sorted(builds.items())
        if build.written
    )


def bulk_ingest(
    warehouse: Warehouse, bodies: Iterable[FetchedBody], *, workers: int | None = 1
) -> BulkReport:
    """Validate, archive and store many fetched bodies, each symbol-day written once.

    Refused bodies are quarantined with their reason, keys already archived are counted as
    duplicates, and every body gets an ingest-log row. ``workers`` as ``rebuild.rebuild_day``
    (more than one needs an ``if __name__ == "__main__":`` guard in a calling script).
    Raises RejectedValueError for a body fetched for an unsupported symbol (nothing is written).
    """
    started = time.perf_counter()
    items = list(bodies)
    for symbol in sorted({item.fetch.symbol for item in items}):
        check_symbol(symbol)
    routes: dict[Pair, list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        day = hinted_day(item.raw) or utc_day(item.fetch.started_at)
        routes[(item.fetch.symbol, day)].append(position)
    outcomes: list[BodyOutcome] = []
    builds: dict[Pair, DayBuild] = {}
    with warehouse.lock():
        state = load_state(warehouse.layout)
        while routes:
            done, written, routes = _import_round(warehouse, state, items, routes, workers)
            outcomes += done
            builds.update(((build.symbol, build.day), build) for build in written)
        finish_writes(warehouse, state)
    return BulkReport(
        days=_report_days(items, outcomes, builds),
        outcomes=tuple(sorted(outcomes, key=lambda outcome: outcome.position)),
        seconds=time.perf_counter() - started,
    )
