"""Child process for the reader test: query the catalog read-only in a loop.

Run as ``python -m tests.storage.reader_child HOME SECONDS``. It holds one read-only connection
open the whole time and also reopens through ``Warehouse.sql``; prints a JSON summary.
"""

from __future__ import annotations

import sys
import time

import duckdb
import orjson

from storage import Warehouse


def main() -> None:
    home, seconds = sys.argv[1], float(sys.argv[2])
    warehouse = Warehouse.open(home)
    held = duckdb.connect(str(warehouse.layout.catalog), read_only=True)
    print("ready", flush=True)
    queries, errors, max_seen = 0, [], 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            held.execute("SELECT count(*) FROM expiries").fetchall()
            seen = warehouse.sql("SELECT count(*) AS n FROM snapshots").item()
            warehouse.sql("SELECT * FROM latest_term_structure")
            max_seen = max(max_seen, int(seen))
            queries += 1
        except Exception as exc:  # any failure is what the test is looking for
            errors.append(f"{type(exc).__name__}: {exc}")
    held.close()
    print(orjson.dumps({"queries": queries, "errors": errors[:5], "max_seen": max_seen}).decode())


if __name__ == "__main__":
    main()
