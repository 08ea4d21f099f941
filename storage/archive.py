# SQL built from table and view names that are constants of this package, never user input.
# ruff: noqa: S608
"""The raw archive: every stored response verbatim, with the fetch metadata a rebuild needs.

It is the ``responses`` table of the lake, committed in the same transaction as the rows
normalised from it, so it lives wherever the lake's data lives (a local directory or S3) and
survives the loss of any one machine. ``(symbol, computed_at)`` is its key: a key already
archived is a duplicate and is never stored twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import duckdb
import orjson
import polars as pl

from storage.errors import ArchiveCorruptError
from storage.records import FetchMeta
from storage.schemas import RESPONSES_SCHEMA, utc_series

RESPONSES: Final[str] = "responses"


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One archived response: its key, how it was fetched and the body as received."""

    symbol: str
    computed_at: datetime
    fetch: FetchMeta
    raw: bytes


def fetch_json(fetch: FetchMeta) -> str:
    """The fetch metadata as stored in ``responses.fetch_meta`` (no ``dataclasses.asdict``: it
    deep-copies every header value)."""
    document = {
        "symbol": fetch.symbol,
        "status": fetch.status,
        "started_at": fetch.started_at,
        "finished_at": fetch.finished_at,
        "attempts": fetch.attempts,
        "headers": fetch.headers,
    }
    return orjson.dumps(document).decode()


def records_frame(records: Sequence[ArchiveRecord]) -> pl.DataFrame:
    """Records as rows of ``responses``."""
    return pl.DataFrame(
        [
            pl.Series("symbol", [record.symbol for record in records], dtype=pl.String()),
            utc_series("computed_at", [record.computed_at for record in records]),
            pl.Series("fetch_meta", [fetch_json(record.fetch) for record in records]),
            pl.Series("body", [record.raw for record in records], dtype=pl.Binary()),
        ],
        schema=RESPONSES_SCHEMA,
    )


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def archived_keys(
    connection: duckdb.DuckDBPyConnection, keys: Iterable[tuple[str, datetime]]
) -> set[tuple[str, datetime]]:
    """Which of ``keys`` are already archived (reads only the days they fall in)."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    instants = [at for _, at in wanted]
    lowest, highest = min(instants), max(instants)
    rows = connection.execute(
        f"SELECT symbol, computed_at FROM {RESPONSES} "
        "WHERE computed_at BETWEEN ? AND ? AND symbol IN (SELECT unnest(?))",
        [lowest, highest, sorted({symbol for symbol, _ in wanted})],
    ).fetchall()
    found = {(symbol, at.astimezone(UTC)) for symbol, at in rows}
    return found & set(wanted)


def read_day(
    connection: duckdb.DuckDBPyConnection, day: date, symbols: Sequence[str]
) -> dict[str, list[ArchiveRecord]]:
    """Every archived record of the day for each symbol, in key order."""
    start, end = day_bounds(day)
    frame = connection.execute(
        f"SELECT symbol, computed_at, fetch_meta, body FROM {RESPONSES} "
        "WHERE computed_at >= ? AND computed_at < ? AND symbol IN (SELECT unnest(?)) "
        "ORDER BY symbol, computed_at",
        [start, end, list(symbols)],
    ).pl()
    by_symbol: dict[str, list[ArchiveRecord]] = {symbol: [] for symbol in symbols}
    for symbol, computed_at, fetch, body in frame.iter_rows():
        by_symbol[symbol].append(
            ArchiveRecord(symbol, computed_at, decode_fetch(fetch, symbol, computed_at), body)
        )
    return by_symbol


def decode_fetch(text: str, symbol: str, computed_at: datetime) -> FetchMeta:
    try:
        return FetchMeta.from_json_dict(orjson.loads(text))
    except (ValueError, KeyError, TypeError) as error:
        raise ArchiveCorruptError(
            f"the fetch metadata archived for {symbol} at {computed_at.isoformat()} cannot be "
            f"read ({type(error).__name__}: {error})",
            advice="the body is intact; report this with the key so the record can be repaired",
        ) from None


def archived_days(connection: duckdb.DuckDBPyConnection, symbol: str) -> list[date]:
    """The UTC days for which ``symbol`` has any archived response."""
    rows = connection.execute(
        f"SELECT DISTINCT CAST(computed_at AT TIME ZONE 'UTC' AS DATE) AS day "
        f"FROM {RESPONSES} WHERE symbol = ? ORDER BY day",
        [symbol],
    ).fetchall()
    return [row[0] for row in rows]
