"""What a tick writes besides the archive, staged for one commit; and what it completes of a
tick that was killed before its commit (see ``storage.tick_journal``)."""

from __future__ import annotations

import contextlib
from datetime import date, datetime

import polars as pl

from backquant.errors import InvalidResponseError
from storage.schemas import RejectedValueError
from backquant.validation import parse_expiry_summary
from storage.archive import ArchiveCorruptError
from storage.atomic import WriteBatch
from storage.layout import SUMMARY_TABLES, utc_day, utc_hour
from storage.normalise import normalise
from storage.quarantine import quarantine_body
from storage.state import TierState
from storage.tiers import (
    attempt_logged,
    hot_tick_complete,
    update_latest,
    write_hot_log,
    write_hot_tick,
)
from storage.warehouse import Warehouse


class TickWrites:
    """Counters, tier state and staged files shared by the symbols of one tick."""

    def __init__(self, warehouse: Warehouse, state: TierState) -> None:
        self.warehouse = warehouse
        self.layout = warehouse.layout
        self.state = state
        self.rows = dict.fromkeys((*SUMMARY_TABLES, "ingest_log"), 0)
        self.duplicates = 0
        self.quarantined = 0
        self.dirty: list[tuple[str, date]] = []
        self.state_changed = False
        self.batch = WriteBatch()
        """Hot, latest and ingest-log files of the whole tick, committed together at its end."""

    def note_write(self, symbol: str, stream: str, key: datetime) -> None:
        """A write into a cold day makes it dirty: its cold files no longer hold everything.
        A write into a rolled hour makes that hour dirty: its roll-up no longer does."""
        day = utc_day(key)
        if self.state.is_cold(symbol, day) and self.state.mark_dirty(symbol, day):
            self.dirty.append((symbol, day))
            self.state_changed = True
        if self.state.mark_hour_dirty(symbol, (stream, utc_hour(key))):
            self.state_changed = True

    def quarantine(
        self,
        symbol: str,
        at: datetime,
        raw: bytes,
        kind: str,
        reason: str,
        field_path: str | None,
        status: int | None,
        request_id: str | None,
    ) -> str:
        self.quarantined += 1
        path = quarantine_body(
            self.layout,
            symbol=symbol,
            received_at=at,
            raw=raw,
            kind=kind,
            reason=reason,
            field_path=field_path,
            http_status=status,
            request_id=request_id,
        )
        return str(path)

    def stage_log_row(self, symbol: str, row: pl.DataFrame) -> None:
        """One attempt's ingest-log row (a one-row frame)."""
        started_at = row.item(0, "started_at")
        self.note_write(symbol, "log", started_at)
        write_hot_log(self.layout, symbol, started_at, row, self.batch)
        self.rows["ingest_log"] += 1

    def complete_snapshot(self, symbol: str, computed_at: datetime) -> None:
        """An archived key without its hot snapshot file means a writer died mid-tick: redo the
        hot files from the archived record, which yields the same bytes the first attempt
        would have. A cold day needs nothing here: it is rebuilt from the archive."""
        if self.state.is_cold(symbol, utc_day(computed_at)):
            return
        if hot_tick_complete(self.layout, self.state, symbol, computed_at):
            return
        record = self.warehouse.archive.read(symbol, computed_at)
        if record is None:
            return
        frames = normalise(parse_expiry_summary(record.raw), record.fetch)
        self.note_write(symbol, "summary", computed_at)
        write_hot_tick(self.layout, symbol, computed_at, frames, self.batch)
        update_latest(self.layout, symbol, computed_at, frames.expiries, self.batch)


def archived_rows(tick: TickWrites, journal: pl.DataFrame) -> pl.DataFrame:
    """The journal's rows whose response reached the archive. The others were never stored:
    their next fetch is a new attempt, which must not inherit their log row."""
    archive = tick.warehouse.archive
    keys = journal.select("symbol", "computed_at").iter_rows()
    archived = [archive.contains(symbol, at) for symbol, at in keys]
    return journal.filter(pl.Series(archived, dtype=pl.Boolean()))


def complete_interrupted(
    tick: TickWrites, journal: pl.DataFrame
) -> tuple[tuple[str, datetime], ...]:
    """Finish what a killed tick left, for each archived response its journal lists (see
    ``archived_rows``): the hot files, a cold day's dirty mark (its rebuild reads the archive),
    and the log row exactly as that tick would have written it. Returns (symbol, computed_at)
    of each response that needed anything (a tick killed after its commit left a journal of
    complete ones)."""
    completed = []
    for index, (symbol, computed_at, started_at) in enumerate(
        journal.select("symbol", "computed_at", "started_at").iter_rows()
    ):
        staged, dirty = len(tick.batch), len(tick.dirty)
        if tick.state.is_cold(symbol, utc_day(computed_at)):
            tick.note_write(symbol, "summary", computed_at)
        else:
            # Today's code may refuse the archived record or fail to read it: it stays in the
            # archive and the day's rebuild reports it; the ticks go on, and the attempt is
            # still logged below.
            with contextlib.suppress(InvalidResponseError, RejectedValueError, ArchiveCorruptError):
                tick.complete_snapshot(symbol, computed_at)
        if not attempt_logged(tick.layout, tick.state, symbol, started_at):
            tick.stage_log_row(symbol, journal.slice(index, 1))
        if len(tick.batch) > staged or len(tick.dirty) > dirty:
            completed.append((symbol, computed_at))
    return tuple(completed)
