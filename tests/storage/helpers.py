"""Builders for fetch outcomes and checks on a warehouse, shared by the storage tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from backquant.client import FetchOutcome, FetchResult
from backquant.headers import ResponseHeaders
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import parse_expiry_summary
from storage import LakeConfig, Warehouse
from storage.bulk import FetchedBody
from storage.ingest import fetch_meta
from tests.support.bodies import summary_document

BASE_TIME = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)

KEY_COLUMNS = {
    "snapshots": ("symbol", "computed_at"),
    "expiries": ("symbol", "computed_at", "expiry"),
    "venue_oi": ("symbol", "computed_at", "expiry", "venue"),
    "ingest_log": ("symbol", "started_at"),
}
SUMMARY_TABLES = ("snapshots", "expiries", "venue_oi")
ORDER = {
    **KEY_COLUMNS,
    "responses": ("symbol", "computed_at"),
    "quarantine": ("quarantine_id",),
    "hourly_sample": ("symbol", "computed_at", "expiry"),
}
"""How ``table`` orders each table, so two lakes' tables compare row for row."""


def open_local(home: Path, **env: str) -> Warehouse:
    """A lake with its catalog file and data directory under ``home``, whatever the process
    environment says; ``env`` adds settings (e.g. TERMSTORE_SNAPSHOT_RETENTION_DAYS)."""
    return Warehouse.open(config=LakeConfig.from_env(home, env=env))


def body(symbol: str, computed_at: datetime, **changes: Any) -> bytes:
    document = summary_document(symbol, computed_at=computed_at, request_id=f"req_{symbol}")
    for path, value in changes.items():
        target = document
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[parts[-1]] = value
    return orjson.dumps(document)


def outcome(
    symbol: str,
    computed_at: datetime,
    raw: bytes | None = None,
    *,
    started_at: datetime | None = None,
) -> FetchOutcome:
    raw = raw if raw is not None else body(symbol, computed_at)
    started = started_at or computed_at + timedelta(seconds=5)
    finished = started + timedelta(milliseconds=120)
    headers = ResponseHeaders(
        ratelimit_limit=60, ratelimit_remaining=59, request_id=f"req_{symbol}"
    )
    result = FetchResult(symbol, parse_expiry_summary(raw), raw, 200, headers, started, finished, 1)
    return FetchOutcome(symbol, started, finished, result=result)


def tick(
    computed_at: datetime,
    symbols: tuple[str, ...] = SUPPORTED_SYMBOLS,
    *,
    started_at: datetime | None = None,
) -> dict[str, FetchOutcome]:
    return {symbol: outcome(symbol, computed_at, started_at=started_at) for symbol in symbols}


def fetched(symbol: str, computed_at: datetime, raw: bytes | None = None) -> FetchedBody:
    """The body and fetch metadata a live tick of ``outcome(symbol, computed_at)`` archives."""
    result = outcome(symbol, computed_at, raw).result
    assert result is not None
    return FetchedBody(fetch_meta(symbol, result), result.raw)


def duplicate_keys(warehouse: Warehouse) -> dict[str, int]:
    """Number of keys seen more than once, per table (all zero when exactly-once holds)."""
    found = {}
    for table_name, keys in KEY_COLUMNS.items():
        columns = ", ".join(keys)
        frame = warehouse.sql(
            f"SELECT count(*) AS n FROM (SELECT {columns} FROM {table_name} "
            f"GROUP BY {columns} HAVING count(*) > 1)"
        )
        found[table_name] = int(frame.item())
    return found


def table(warehouse: Warehouse, name: str) -> pl.DataFrame:
    keys = ", ".join(ORDER[name])
    return warehouse.sql(f"SELECT * FROM {name} ORDER BY {keys}")


def tables(warehouse: Warehouse, names: tuple[str, ...] = tuple(ORDER)) -> dict[str, pl.DataFrame]:
    return {name: table(warehouse, name) for name in names}


def rows_per_day(warehouse: Warehouse, name: str) -> dict[date, int]:
    """A table's rows per UTC day of ``computed_at``."""
    return dict(
        warehouse.sql(
            "SELECT CAST(computed_at AT TIME ZONE 'UTC' AS DATE) AS day, count(*) "
            f"FROM {name} GROUP BY ALL"
        ).rows()
    )


def count(warehouse: Warehouse, query: str) -> int:
    """The single integer a ``SELECT count(*) …`` returns."""
    return int(warehouse.sql(query).item())


def partial_snapshots(warehouse: Warehouse) -> list[dict[str, object]]:
    """Snapshots whose expiry rows are not all visible, and rows with no parent: each described."""
    frame = warehouse.sql(
        """
        WITH per_key AS (
            SELECT symbol, computed_at, count(*) AS n FROM expiries GROUP BY ALL
        )
        SELECT 'expiry rows != expiry_count' AS problem, s.symbol, s.computed_at,
               s.expiry_count AS expected, coalesce(p.n, 0) AS found
        FROM snapshots s LEFT JOIN per_key p USING (symbol, computed_at)
        WHERE coalesce(p.n, 0) <> s.expiry_count
        UNION ALL
        SELECT 'expiry rows without snapshot', p.symbol, p.computed_at, 0, p.n
        FROM per_key p ANTI JOIN snapshots s USING (symbol, computed_at)
        UNION ALL
        SELECT 'venue rows without expiry', v.symbol, v.computed_at, 0, count(*)
        FROM venue_oi v ANTI JOIN expiries e USING (symbol, computed_at, expiry)
        GROUP BY ALL
        """
    )
    return frame.to_dicts()
