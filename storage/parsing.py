"""Validate and normalise many bodies at once (a rebuilt day, a bulk import), keeping each
refusal as a value.

A rebuild must go on past a body that today's code refuses (it stays archived and is reported),
so each body becomes either its ``ParsedSummary`` or the exact error ingest would have raised,
and ``prepare_symbol_day`` turns a symbol-day's records into its sorted tables plus the list of
what it refused.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl

from backquant.errors import InvalidResponseError
from backquant.validation import ParsedSummary, parse_expiry_summary
from storage.archive import ArchiveRecord
from storage.normalise import normalise_many
from storage.records import RejectedValueError
from storage.schemas import key_stamp, sort_by_key

ParseOutcome = ParsedSummary | InvalidResponseError


def parse_summary(raw: bytes) -> ParseOutcome:
    """The validated summary of an archived body, or the error ingest would have raised."""
    try:
        return parse_expiry_summary(raw)
    except InvalidResponseError as error:
        return error


def parse_summaries(raws: Sequence[bytes]) -> list[ParseOutcome]:
    """``parse_summary`` of each body, in order."""
    with gc_paused():
        return [parse_summary(raw) for raw in raws]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block.

    A day of validated bodies is ~250,000 live objects (one pydantic model per venue row).
    While they accumulate, every young-generation collection walks the survivors again: that
    tripled the cost of parsing a day (0.85 ms instead of 0.27 ms per body). Nothing here builds
    reference cycles, so reference counting frees everything; collection resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class PreparedDay:
    """A symbol-day ready to write: what its pack holds and its summary tables."""

    records: list[ArchiveRecord]
    """Every archived record (refused ones included: they stay archived) plus the accepted new
    ones, in key order."""
    tables: dict[str, pl.DataFrame]
    """snapshots, expiries and venue_oi, each sorted by its key columns."""
    rejected: list[tuple[str, str]]
    """(archive key, reason) for archived bodies today's code refuses."""
    refused: dict[int, RejectedValueError]
    """Position in ``new`` → why today's code refuses that new body (it must not be archived)."""


def _refusal(parsed: ParsedSummary, record: ArchiveRecord) -> RejectedValueError | None:
    try:
        normalise_many([(parsed, record.fetch)])
    except RejectedValueError as error:
        return error
    return None


def prepare_symbol_day(
    archived: Sequence[ArchiveRecord], new: Sequence[tuple[ArchiveRecord, ParsedSummary]] = ()
) -> PreparedDay:
    """Validate and normalise a symbol-day's records in memory: the ``archived`` ones (parsed
    here) and ``new`` ones already parsed by the caller (keys distinct from the archived ones).

    Archived bodies that today's code refuses are reported in ``rejected`` and stay archived;
    refused new bodies are reported in ``refused`` and left out of ``records``.
    """
    rejected: list[tuple[str, str]] = []
    entries: list[tuple[ArchiveRecord, ParsedSummary, int | None]] = []
    for record, outcome in zip(archived, parse_summaries([r.raw for r in archived]), strict=True):
        if isinstance(outcome, InvalidResponseError):
            rejected.append((key_stamp(record.computed_at), f"{outcome.kind}: {outcome}"))
        else:
            entries.append((record, outcome, None))
    entries.extend((record, parsed, index) for index, (record, parsed) in enumerate(new))
    entries.sort(key=lambda entry: entry[0].computed_at)
    items = [(parsed, record.fetch) for record, parsed, _ in entries]
    refusals: dict[int, RejectedValueError] = {}
    try:
        frames = normalise_many(items)
    except RejectedValueError:
        # Rare path: find the bodies today's code refuses, keep the rest.
        for position, (record, parsed, _) in enumerate(entries):
            if (error := _refusal(parsed, record)) is not None:
                refusals[position] = error
        frames = normalise_many(
            [item for position, item in enumerate(items) if position not in refusals]
        )
    refused: dict[int, RejectedValueError] = {}
    for position, error in refusals.items():
        record, _, index = entries[position]
        if index is None:
            rejected.append((key_stamp(record.computed_at), f"{error.kind}: {error}"))
        else:
            refused[index] = error
    accepted = [record for index, (record, _) in enumerate(new) if index not in refused]
    return PreparedDay(
        records=sorted([*archived, *accepted], key=lambda record: record.computed_at),
        tables={table: sort_by_key(frame, table) for table, frame in frames.as_tables().items()},
        rejected=rejected,
        refused=refused,
    )
