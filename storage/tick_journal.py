"""The ingest-log rows a tick is about to store, written before it archives anything.

A tick commits in two steps: each response's archive record, durable at once (from then on the
key is stored), and at the end one batch of hot files, latest files and ingest-log rows, after
the dirty marks. A writer killed in between would leave responses archived but in no table until
their day is rebuilt, without their ``stored`` log row, and a late tick's day not marked dirty.
So before its first archive write a tick records here the rows it will log for the responses it
archives, and removes the file once its batch is committed. The next tick finds a journal left
behind and completes what it lists (``storage.ingest``).
"""

from __future__ import annotations

import polars as pl

from storage.schemas import INGEST_LOG_SCHEMA
from storage.atomic import atomic_write_parquet
from storage.layout import Layout


class JournalCorruptError(RuntimeError):
    """state/tick-journal.parquet cannot be read."""


def read_journal(layout: Layout) -> pl.DataFrame | None:
    """The rows an interrupted tick was storing, or None when the last tick committed."""
    path = layout.tick_journal
    try:
        rows = pl.read_parquet(path)
    except FileNotFoundError:
        return None
    except (OSError, pl.exceptions.PolarsError) as error:
        raise JournalCorruptError(
            f"the tick journal {path} cannot be read ({type(error).__name__}: {error}). Move it "
            "aside and run `termstore rebuild` for the days of the last ticks: the responses it "
            "listed are archived, and a rebuild makes them visible"
        ) from None
    if rows.schema != INGEST_LOG_SCHEMA:
        raise JournalCorruptError(
            f"the tick journal {path} does not hold ingest-log rows (columns {rows.columns}). "
            "Move it aside and run `termstore rebuild` for the days of the last ticks"
        )
    return rows


def write_journal(layout: Layout, rows: pl.DataFrame) -> None:
    """Durably record ``rows`` (ingest-log rows) before the tick archives their responses."""
    atomic_write_parquet(layout.tick_journal, rows)


def clear_journal(layout: Layout) -> None:
    """The tick is committed. Not made durable: a journal that survives a crash lists only
    responses that are complete, which the next tick checks and leaves as they are."""
    layout.tick_journal.unlink(missing_ok=True)
