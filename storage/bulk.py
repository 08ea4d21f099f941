"""Bulk ingest: many fetched bodies (a backfill, an import of captured responses) in one pass.

The live path costs a durable file per body and a catalog refresh per tick; this one writes each
symbol-day once, through the rebuild's own functions (storage/rebuild.py). Per symbol-day
(storage/bulk_day.py, in a worker process if asked): validate every body, count keys the archive
already holds as duplicates, merge the rest with the day's archived records, write the cold
files and the new archive pack.
Then the writer, holding the lock: quarantine refused bodies with their reasons, write each day's
ingest-log file (one row per body), commit every day with one state save, refresh the catalog.
As for ingest and rebuild, the archive is committed before the state marks a day cold, the state
file is the single commit point, and importing the same bodies again changes no table.

Routing: a body belongs to the day of its ``meta.computed_at``, certain only after validation.
Bodies go to the day their raw bytes name (the last ``"computed_at"``); one whose validated key
says otherwise is imported in a second round: a wrong guess costs time, never correctness.

The ingest log describes fetch attempts, keyed by ``(symbol, fetch started_at)``, in the day of
``started_at``. A body whose key is already archived with this very fetch (an earlier run of the
same import died before its commit) is logged ``stored``: that attempt's body is archived.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from storage.schemas import IngestLogEntry, check_symbol, ingest_log_frame
from storage.bulk_day import (
    QUARANTINED,
    BodyOutcome,
    BulkJob,
    FetchedBody,
    hinted_day,
    import_symbol_day,
)
from storage.day_jobs import run_day_jobs
from storage.layout import Layout, utc_day
from storage.parsing import gc_paused
from storage.quarantine import quarantine_body
from storage.rebuild import (
    DayBuild,
    DayJob,
    commit_days,
    finish_writes,
    merge_log_rows,
    new_generation,
    remove_stale_temps,
    stored_log_rows,
)
from storage.reports import DUPLICATE, STORED
from storage.state import TierState, load_state
from storage.warehouse import Warehouse

__all__ = ["QUARANTINED", "BodyOutcome", "BulkDay", "BulkReport", "FetchedBody", "bulk_ingest"]
Pair = tuple[str, date]


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
        name = (body.fetch.symbol, body.fetch.finished_at, outcome.logged_as)
        while taken.setdefault(name, body.raw) != body.raw:
            name = (name[0], name[1] + timedelta(microseconds=1), name[2])
        path = quarantine_body(
            layout,
            symbol=body.fetch.symbol,
            received_at=name[1],
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
    logs = {(symbol, day): stored_log_rows(layout, state, symbol, day) for symbol, day in pairs}
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
    archived = [warehouse.archive.day_size(*pair) for pair in pairs]
    results = run_day_jobs(
        import_symbol_day,
        jobs,
        workers,
        sizes=[len(job.bodies) + day.records for job, day in zip(jobs, archived, strict=True)],
        weights=[
            sum(len(body.raw) for _, body in job.bodies) + day.body_bytes
            for job, day in zip(jobs, archived, strict=True)
        ],
    )
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
    warehouse: Warehouse, bodies: Iterable[FetchedBody], *, workers: int | None = None
) -> BulkReport:
    """Validate, archive and store many fetched bodies, each symbol-day written once.

    Refused bodies are quarantined with their reason, keys already archived are counted as
    duplicates, and every body gets an ingest-log row. ``workers`` as ``rebuild.rebuild_day``.
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
    # Without cyclic GC, as in the day jobs (see gc_paused): nothing here builds reference
    # cycles, and each full collection would walk every input body's objects again.
    with warehouse.lock(), gc_paused():
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
