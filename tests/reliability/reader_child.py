"""Child for the readers test: one connection, attached once, queried about every 100 ms.

Run as ``python -m tests.reliability.reader_child HOME STOP_FILE`` with the lake's settings in
the environment. It attaches before printing ``ready`` and never again; once STOP_FILE exists it
runs one last query and prints a JSON summary: every query's start and end times and counts, and the
errors met. Each query is one statement, so its counts come from one catalog snapshot.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Final

import duckdb
import orjson

from storage import LakeConfig, Warehouse

INTERVAL_S: Final[float] = 0.1
QUERY: Final[str] = """
WITH per_snapshot AS (
    SELECT symbol, computed_at, count(*) AS n FROM expiries GROUP BY ALL
),
per_tick AS (
    SELECT computed_at, count(*) AS n FROM snapshots GROUP BY computed_at
)
SELECT
    (SELECT count(*) FROM snapshots) AS snapshots,
    (SELECT count(*) FROM expiries) AS expiries,
    (SELECT count(*) FROM snapshots AS s LEFT JOIN per_snapshot AS p USING (symbol, computed_at)
     WHERE coalesce(p.n, 0) <> s.expiry_count) AS partial_snapshots,
    (SELECT count(*) FROM per_tick WHERE n <> ?) AS partial_ticks,
    (SELECT count(*) FROM ingest_log WHERE outcome = 'stored') AS stored_log_rows
"""
COLUMNS: Final[tuple[str, ...]] = (
    "snapshots",
    "expiries",
    "partial_snapshots",
    "partial_ticks",
    "stored_log_rows",
)


def query(connection: duckdb.DuckDBPyConnection, symbols: int) -> dict[str, Any]:
    started = time.time()
    row = connection.execute(QUERY, [symbols]).fetchone()
    assert row is not None
    return {"at": started, "ended": time.time(), **dict(zip(COLUMNS, row, strict=True))}


def main() -> None:
    home, stop_file = Path(sys.argv[1]), Path(sys.argv[2])
    symbols = int(sys.argv[3])
    warehouse = Warehouse.open(config=LakeConfig.from_env(home))
    connection = warehouse.connect()
    print("ready", flush=True)
    seen: list[dict[str, Any]] = []
    errors: list[str] = []
    stopping = False
    while not stopping:
        stopping = stop_file.exists()
        began = time.monotonic()
        try:
            seen.append(query(connection, symbols))
        except Exception as error:  # any failure is what the test looks for
            errors.append(f"{time.time():.3f} {type(error).__name__}: {error}")
        time.sleep(max(0.0, INTERVAL_S - (time.monotonic() - began)))
    connection.close()
    warehouse.close()
    print(orjson.dumps({"seen": seen, "errors": errors}).decode(), flush=True)


if __name__ == "__main__":
    main()
